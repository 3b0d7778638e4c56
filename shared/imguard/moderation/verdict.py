"""What one check concluded, and why, in a form logs and the audit trail can keep."""
from __future__ import annotations

import enum
from dataclasses import asdict, dataclass
from typing import Any, Dict, Optional, Tuple


class Outcome(str, enum.Enum):
    PASS = "pass"
    BLOCK = "block"
    SUSPICIOUS = "suspicious"  # CI Result 2: a human would want to look
    REVIEW = "review"  # the rules' review list matched: deliver, and queue it for a person
    ERROR = "error"  # the check failed; the fail policy decides
    TIMEOUT = "timeout"  # the check did not answer before the deadline
    SKIPPED = "skipped"  # not waited for: another check had already blocked the message
    # Part of the content was left unjudged by a cap (image count, CI's text limit, ...). The sender
    # shapes the message, so this is OVERSIZE_ACTION's to decide, never FAIL_MODE's.
    OVERSIZE = "oversize"


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    source: str  # "ci", "rules", ...
    check: str  # "text", "image[0]", ...
    label: str = ""
    sub_label: str = ""
    score: Optional[int] = None
    keywords: Tuple[str, ...] = ()
    detail: str = ""  # error text for ERROR, rule names for local rules
    latency_ms: Optional[float] = None

    def as_reason(self) -> Dict[str, Any]:
        """The non-empty fields, for a log line or an audit record."""
        reason = {k: v for k, v in asdict(self).items() if v not in ("", None, ())}
        reason["outcome"] = self.outcome.value
        if "keywords" in reason:
            reason["keywords"] = list(self.keywords)
        return reason


# CI's Result field: 0 normal, 1 violation, 2 suspicious (cos-ci-moderation.md §4).
CI_RESULTS = {0: Outcome.PASS, 1: Outcome.BLOCK, 2: Outcome.SUSPICIOUS}
