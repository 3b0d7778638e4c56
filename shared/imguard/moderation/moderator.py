"""Judge one piece of user content: every engine, one deadline, one decision."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional

from imguard.config import Settings
from imguard.im.messages import MessageContent
from imguard.moderation.ci import CiClient, text_chunks
from imguard.moderation.policy import Decision, decide
from imguard.moderation.runner import Check, run_checks
from imguard.moderation.verdict import Outcome, Verdict

# Texts longer than this are not sent to CI in full (IM itself caps messages near 12 KB);
# what is left unchecked is reported as an error, so the fail policy decides.
MAX_CI_TEXT_CHUNKS = 5
MAX_CI_IMAGES = 20


@dataclass
class Judgement:
    decision: Decision
    verdicts: List[Verdict] = field(default_factory=list)

    def reasons(self) -> List[dict]:
        """Verdicts worth explaining: everything that did not simply pass."""
        return [v.as_reason() for v in self.verdicts if v.outcome is not Outcome.PASS]


class Moderator:
    def __init__(self, settings: Settings, ci: Optional[CiClient]):
        self._settings = settings
        self._ci = ci

    def judge(self, content: MessageContent, deadline: float) -> Judgement:
        verdicts: List[Verdict] = []
        checks: List[Check] = []
        if content.truncated:
            verdicts.append(Verdict(Outcome.ERROR, "imguard", "body", detail="message too large or nested too deep"))
        if self._ci is not None:
            checks, skipped = self._ci_checks(content)
            verdicts.extend(skipped)
        verdicts.extend(run_checks(checks, deadline))
        decision = decide(verdicts, self._settings.suspicious_action, self._settings.fail_mode)
        return Judgement(decision, verdicts)

    def _ci_checks(self, content: MessageContent):
        ci = self._ci
        checks: List[Check] = []
        skipped: List[Verdict] = []
        text = content.joined_text()
        if text.strip():
            chunks = text_chunks(text)
            for i, chunk in enumerate(chunks[:MAX_CI_TEXT_CHUNKS]):
                name = "text" if len(chunks) == 1 else f"text[{i}]"
                checks.append(Check("ci", name, lambda chunk=chunk, name=name: ci.check_text(chunk, name)))
            if len(chunks) > MAX_CI_TEXT_CHUNKS:
                skipped.append(Verdict(Outcome.ERROR, "ci", "text", detail=f"text over {MAX_CI_TEXT_CHUNKS} CI chunks"))
        for i, url in enumerate(content.images[:MAX_CI_IMAGES]):
            name = f"image[{i}]"
            checks.append(Check("ci", name, lambda url=url, name=name: ci.check_image(url, name)))
        if len(content.images) > MAX_CI_IMAGES:
            skipped.append(Verdict(Outcome.ERROR, "ci", "image", detail=f"more than {MAX_CI_IMAGES} images"))
        return checks, skipped
