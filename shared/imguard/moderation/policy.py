"""From verdicts to one decision: what the operator's policy says to do."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from imguard.moderation.verdict import Outcome, Verdict

ALLOW = "allow"
BLOCK = "block"
REWRITE = "rewrite"
REVIEW = "review"  # SUSPICIOUS_ACTION (or a scene's suspicious_action): deliver, and queue for a person


@dataclass(frozen=True)
class Decision:
    action: str  # allow, block or rewrite
    # Why a policy rather than a verdict decided: "oversize" (OVERSIZE_ACTION), "timeout" or "error"
    # (FAIL_MODE); empty when every part of the content was judged.
    degraded: str = ""
    review: bool = False  # delivered (allow or rewrite), and queued for human review


def decide(verdicts: Iterable[Verdict], suspicious_action: str, fail_mode: str, oversize_action: str) -> Decision:
    verdicts = list(verdicts)
    outcomes = {v.outcome for v in verdicts}
    # A definite violation wins over everything, even over checks that never answered.
    if Outcome.BLOCK in outcomes or (Outcome.SUSPICIOUS in outcomes and suspicious_action == BLOCK):
        return Decision(BLOCK)
    oversize = Outcome.OVERSIZE in outcomes
    if oversize and oversize_action == BLOCK:
        return Decision(BLOCK, "oversize")
    review = Outcome.REVIEW in outcomes or (Outcome.SUSPICIOUS in outcomes and suspicious_action == REVIEW)
    degraded = "timeout" if Outcome.TIMEOUT in outcomes else "error" if Outcome.ERROR in outcomes else ""
    if degraded:
        return Decision(ALLOW, degraded, review) if fail_mode == "open" else Decision(BLOCK, degraded)
    return Decision(ALLOW, "oversize" if oversize else "", review)
