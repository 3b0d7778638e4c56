"""Flood and spam control: a sender's message rate, one text sent again and again, @-mention spam.

Configured in the rules file, each check with its own action::

    flood:
      rate:     {messages: 20, per: 10s, action: block}           # one sender, any messages
      repeat:   {times: 5, within: 10m, action: silent}           # the same text (sha256) from one sender
      mentions: {max: 10, at_all: true, action: block}            # group messages: @ accounts, and @all

``block`` refuses the message as BLOCK_ACTION says, ``silent`` drops it while the sender thinks it went
out, ``count`` delivers it. Every hit counts toward the sanctions ladder, but for ``repeat`` with ``by: anyone``,
whose count is shared by everybody who sent the text. ``repeat`` takes ``by: anyone``
to count a text whoever sends it (a bot farm), and ignores texts shorter than ``min_chars`` (default 4).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, List, Optional, Tuple

from imguard.rules.errors import RulesError
from imguard.sanctions.counters import Counters, Window
from imguard.sanctions.spec import only, positive, seconds

ACTIONS = ("block", "silent", "count")


@dataclass(frozen=True)
class Limit:
    count: int  # more than this is a flood
    window_s: int
    action: str


@dataclass(frozen=True)
class FloodPolicy:
    rate: Optional[Limit] = None
    repeat: Optional[Limit] = None
    repeat_by_anyone: bool = False
    repeat_min_chars: int = 4
    mentions: Optional[Limit] = None  # count: most @ accounts in one message; window unused
    at_all: bool = False  # @all is a hit by itself

    @property
    def empty(self) -> bool:
        return self.rate is None and self.repeat is None and self.mentions is None


@dataclass(frozen=True)
class FloodHit:
    check: str  # rate, repeat or mentions
    action: str  # block, silent or count
    limit: int
    window_s: int = 0
    # Whether it counts toward the sender's sanctions: not a text counted across all senders (by: anyone),
    # where an innocent sender of a common phrase would share a bot farm's count.
    counts_against_sender: bool = True

    def as_reason(self) -> dict:
        within = f" in {self.window_s} s" if self.window_s else ""
        return {"source": "flood", "check": self.check, "outcome": "block" if self.action != "count" else "count",
                "label": self.check, "detail": f"more than {self.limit}{within}; action {self.action}"}


def parse_flood(data: Any) -> FloodPolicy:
    if data is None:
        return FloodPolicy()
    only(data, "flood", {"rate", "repeat", "mentions"})
    rate = repeat = mentions = None
    by_anyone, min_chars, at_all = False, 4, False
    if data.get("rate") is not None:
        item = only(data["rate"], "flood.rate", {"messages", "per", "action"})
        rate = Limit(positive(item.get("messages"), "flood.rate.messages"), seconds(item.get("per"), "flood.rate.per"),
                     _action(item, "flood.rate"))
    if data.get("repeat") is not None:
        item = only(data["repeat"], "flood.repeat", {"times", "within", "by", "min_chars", "action"})
        if item.get("by", "sender") not in ("sender", "anyone"):
            raise RulesError("flood.repeat.by: expected sender or anyone")
        by_anyone = item.get("by") == "anyone"
        min_chars = positive(item.get("min_chars", 4), "flood.repeat.min_chars", 10_000)
        repeat = Limit(positive(item.get("times"), "flood.repeat.times"),
                       seconds(item.get("within"), "flood.repeat.within"), _action(item, "flood.repeat"))
    if data.get("mentions") is not None:
        item = only(data["mentions"], "flood.mentions", {"max", "at_all", "action"})
        if not isinstance(item.get("at_all", False), bool):
            raise RulesError("flood.mentions.at_all: expected true or false")
        at_all = item.get("at_all", False)
        mentions = Limit(positive(item.get("max", 100_000), "flood.mentions.max"), 0, _action(item, "flood.mentions"))
    return FloodPolicy(rate, repeat, by_anyone, min_chars, mentions, at_all)


def _action(item: dict, where: str) -> str:
    action = item.get("action", "block")
    if action not in ACTIONS:
        raise RulesError(f"{where}.action: expected one of {', '.join(ACTIONS)}, got {action!r}")
    return action


def check_flood(policy: FloodPolicy, counters: Counters, sender: str, text: str, mentioned: int, at_all: bool,
                now: float) -> Tuple[Optional[FloodHit], bool]:
    """The first flood this message makes, and whether the counters could be asked. Mentions need no
    counter; rate and repeat are one round trip together."""
    if policy.mentions is not None and (mentioned > policy.mentions.count or (at_all and policy.at_all)):
        return FloodHit("mentions", policy.mentions.action, policy.mentions.count), True
    windows: List[Tuple[str, Limit, Window]] = []
    if policy.rate is not None:
        limit = policy.rate
        windows.append(("rate", limit, Window(f"imguard:rate:{sender}", (limit.window_s,), limit.count + 1)))
    stripped = "".join(text.split())
    if policy.repeat is not None and len(stripped) >= policy.repeat_min_chars:
        limit = policy.repeat
        digest = hashlib.sha256(stripped.encode("utf-8", "replace")).hexdigest()[:32]
        who = "*" if policy.repeat_by_anyone else sender
        windows.append(("repeat", limit, Window(f"imguard:repeat:{who}:{digest}", (limit.window_s,), limit.count + 1)))
    if not windows:
        return None, True
    counts = counters.record([window for _, _, window in windows], now)
    if counts is None:
        return None, False
    for (check, limit, _), [count] in zip(windows, counts):
        if count > limit.count:
            personal = not (check == "repeat" and policy.repeat_by_anyone)
            return FloodHit(check, limit.action, limit.count, limit.window_s, personal), True
    return None, True
