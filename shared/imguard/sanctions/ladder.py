"""The sanctions ladder: how many definite blocks in how long earn which mute.

    sanctions:
      - {blocks: 3, within: 10m, mute: 1h}                   # IM's global mute: C2C and groups
      - {blocks: 10, within: 1d, mute: 7d, scope: group}     # a mute in the group of the last block
      - {blocks: 30, within: 7d, mute: forever, record_only: true}

The highest step reached applies, once per its window. ``record_only`` writes the sanction to the audit
trail without calling IM, for a ladder being tried out. A ``group`` step reached by a C2C block has no
group to mute in and is recorded only.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence, Tuple

from imguard.rules.errors import RulesError
from imguard.sanctions.spec import only, positive, seconds

MAX_STEPS = 10


@dataclass(frozen=True)
class Step:
    index: int  # 1-based, as the operator counts them
    blocks: int
    within_s: int
    mute_s: int
    scope: str = "global"  # or group
    record_only: bool = False


@dataclass(frozen=True)
class Ladder:
    steps: Tuple[Step, ...] = ()

    @property
    def windows(self) -> Tuple[int, ...]:
        return tuple(step.within_s for step in self.steps)

    @property
    def cap(self) -> int:
        return max((step.blocks for step in self.steps), default=0)

    def reached(self, counts: Sequence[int]) -> Optional[Step]:
        """The highest step whose count of blocks in its window has reached its threshold."""
        for step, count in reversed(list(zip(self.steps, counts))):
            if count >= step.blocks:
                return step
        return None


def parse_ladder(data: Any) -> Ladder:
    if data is None:
        return Ladder()
    if not isinstance(data, list) or len(data) > MAX_STEPS:
        raise RulesError(f"sanctions: expected a list of at most {MAX_STEPS} steps")
    steps = []
    for index, item in enumerate(data, 1):
        where = f"sanctions[{index}]"
        only(item, where, {"blocks", "within", "mute", "scope", "record_only"})
        if item.get("scope", "global") not in ("global", "group"):
            raise RulesError(f"{where}.scope: expected global or group")
        if not isinstance(item.get("record_only", False), bool):
            raise RulesError(f"{where}.record_only: expected true or false")
        steps.append(Step(index, positive(item.get("blocks"), f"{where}.blocks", 10_000),
                          seconds(item.get("within"), f"{where}.within"),
                          seconds(item.get("mute"), f"{where}.mute", forever=True, most=366 * 86400),
                          item.get("scope", "global"), item.get("record_only", False)))
    return Ladder(tuple(steps))
