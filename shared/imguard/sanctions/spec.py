"""What the rules file says about floods and sanctions, read strictly: durations, counts, known keys."""
from __future__ import annotations

import re
from typing import Any

from imguard.rules.errors import RulesError

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
FOREVER = 4294967295  # IM's "permanent" for setnospeaking (im-callback-protocol.md §5.4a)
MAX_WINDOW_S = 30 * 86400  # counting windows: what a counter keeps is bounded by this


def seconds(value: Any, where: str, forever: bool = False, most: int = MAX_WINDOW_S) -> int:
    """``value`` in seconds, or RulesError naming ``where``. ``forever`` admits ``forever`` (a permanent mute)."""
    if forever and value == "forever":
        return FOREVER
    if isinstance(value, int) and not isinstance(value, bool):
        amount = value
    else:
        match = re.fullmatch(r"\s*(\d{1,7})\s*([smhd])\s*", value) if isinstance(value, str) else None
        if match is None:
            raise RulesError(f"{where}: expected a duration such as 30s, 10m, 1h or 7d"
                             f"{' (or forever)' if forever else ''}, got {value!r}")
        amount = int(match.group(1)) * _UNITS[match.group(2)]
    if not 1 <= amount <= most:
        raise RulesError(f"{where}: {amount} s is outside 1 s .. {most // 86400} days")
    return amount


def positive(value: Any, where: str, most: int = 100_000) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
        raise RulesError(f"{where}: expected a whole number from 1 to {most}, got {value!r}")
    return value


def only(mapping: Any, where: str, keys: set) -> dict:
    if not isinstance(mapping, dict):
        raise RulesError(f"{where}: expected a mapping")
    unknown = set(mapping) - keys
    if unknown:
        raise RulesError(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
    return mapping
