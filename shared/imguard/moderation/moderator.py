"""Judge one message: whitelist aside, local rules first, then CI, under one deadline."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from imguard.config import Settings
from imguard.im.messages import MessageContent, Path
from imguard.moderation.cache import Key, VerdictCache, image_key, text_key
from imguard.moderation.ci import TEXT_LIMIT, CiClient, text_chunks
from imguard.moderation.policy import BLOCK, REWRITE, Decision, decide
from imguard.moderation.runner import Check, run_checks
from imguard.moderation.verdict import Outcome, Verdict
from imguard.review.submit import MAX_REVIEW_MEDIA, reviewable
from imguard.rules.book import Policy
from imguard.rules.ruleset import MAX_HITS

# What one message may ask of CI (IM itself caps a message near 12 KB). Whatever lies past a cap
# is left unjudged and reported as OVERSIZE, for OVERSIZE_ACTION to decide.
MAX_CI_TEXT_CHUNKS = 5
MAX_CI_IMAGES = 20


@dataclass
class Judgement:
    decision: Decision
    verdicts: List[Verdict] = field(default_factory=list)
    replacements: Dict[Path, str] = field(default_factory=dict)  # masked texts, by where they live

    def reasons(self) -> List[dict]:
        """Verdicts worth explaining: everything that did not pass, and local rules that rewrote
        (CI labels every pass "Normal", which explains nothing)."""
        return [v.as_reason() for v in self.verdicts
                if v.outcome is not Outcome.PASS or (v.source == "rules" and v.label)]


@dataclass
class _Plan:
    """One content's judgement before CI has answered."""

    verdicts: List[Verdict]
    replacements: Dict[Path, str]
    checks: List[Check]


class Moderator:
    def __init__(self, settings: Settings, ci: Optional[CiClient]):
        self._settings = settings
        self._ci = ci
        self.cache = VerdictCache(settings.verdict_cache_s) if settings.verdict_cache_s else None

    def judge(self, content: MessageContent, deadline: float, policy: Policy) -> Judgement:
        [judgement] = self.judge_all([content], deadline, policy)
        return judgement

    def judge_all(self, contents: Sequence[MessageContent], deadline: float, policy: Policy) -> List[Judgement]:
        """Judge several contents at once (friend requests, profile fields): their CI checks share
        one fan-out and one deadline, and one content's violation does not cut the others short."""
        plans = [self._plan(content, policy) for content in contents]
        answers = iter(run_checks([c for plan in plans for c in plan.checks], deadline,
                                  stop_at_block=len(plans) == 1))
        return [self._finish(plan, [next(answers) for _ in plan.checks], policy) for plan in plans]

    def _plan(self, content: MessageContent, rules: Policy) -> _Plan:
        verdicts: List[Verdict] = []
        review = self._settings.review
        if review.enabled and len(reviewable(content.media, review.file_review)) > MAX_REVIEW_MEDIA:
            verdicts.append(_over_cap("media", f"more than {MAX_REVIEW_MEDIA} audio/video items to review"))
        texts = [piece.text for piece in content.texts]
        replacements: Dict[Path, str] = {}
        if not rules.empty and texts:
            verdict, replacements = self._local_rules(content, rules)
            verdicts.append(verdict)
            if verdict.outcome is Outcome.BLOCK:
                return _Plan(verdicts, {}, [])
            texts = [replacements.get(piece.path, piece.text) for piece in content.texts]
        checks: List[Check] = []
        if self._ci is not None:
            checks, unchecked = self._ci_checks("\n".join(texts), content.images, rules.ci_biztype)
            verdicts.extend(unchecked)
        return _Plan(verdicts, replacements, checks)

    def _finish(self, plan: _Plan, ci_verdicts: List[Verdict], policy: Policy) -> Judgement:
        verdicts = plan.verdicts + ci_verdicts
        decision = decide(verdicts, policy.suspicious_action, policy.fail_mode, self._settings.oversize_action)
        if plan.replacements and decision.action != BLOCK:
            decision = Decision(REWRITE, decision.degraded, decision.review)
        return Judgement(decision, verdicts, plan.replacements if decision.action != BLOCK else {})

    @staticmethod
    def _local_rules(content: MessageContent, rules: Policy) -> Tuple[Verdict, Dict[Path, str]]:
        started = time.monotonic()
        replacements: Dict[Path, str] = {}
        matched: List[str] = []
        blocked = truncated = review = False
        for piece in content.texts:
            scan = rules.scan(piece.text)
            truncated = truncated or scan.truncated
            matched.extend(f"{hit.entry.list}:{hit.entry.rule}" for hit in scan.hits)
            if scan.action == "block":
                blocked = True
                break
            review = review or scan.action == "review"
            if scan.text != piece.text:
                replacements[piece.path] = scan.text
        # Unread text is not assumed clean: a text built to exhaust the scan is OVERSIZE_ACTION's to decide.
        outcome = (Outcome.BLOCK if blocked else Outcome.OVERSIZE if truncated else Outcome.REVIEW if review
                   else Outcome.PASS)
        label = "block" if blocked else "review" if review else "replace" if replacements else ""
        latency = round((time.monotonic() - started) * 1000, 3)
        detail = f"{rules.version}; cap: stopped after {MAX_HITS} matches" if truncated and not blocked else rules.version
        verdict = Verdict(outcome, "rules", "rules", label=label, keywords=tuple(dict.fromkeys(matched))[:50],
                          detail=detail, latency_ms=latency)
        return verdict, ({} if blocked else replacements)

    def _ci_checks(self, text: str, images: List[str], biz_type: Optional[str]) -> Tuple[List[Check], List[Verdict]]:
        ci = self._ci
        biz = biz_type or ""
        checks: List[Check] = []
        unchecked: List[Verdict] = []
        if text.strip():
            chunks = text_chunks(text)
            for i, chunk in enumerate(chunks[:MAX_CI_TEXT_CHUNKS]):
                name = "text" if len(chunks) == 1 else f"text[{i}]"
                checks.append(self._check(name, text_key(chunk, biz),
                                          lambda chunk=chunk, name=name: ci.check_text(chunk, name, biz_type)))
            if len(chunks) > MAX_CI_TEXT_CHUNKS:
                unchecked.append(_over_cap("text", f"text over {MAX_CI_TEXT_CHUNKS} CI requests of {TEXT_LIMIT} characters"))
        for i, url in enumerate(images[:MAX_CI_IMAGES]):
            name = f"image[{i}]"
            checks.append(self._check(name, image_key(url, biz),
                                      lambda url=url, name=name: ci.check_image(url, name, biz_type)))
        if len(images) > MAX_CI_IMAGES:
            unchecked.append(_over_cap("image", f"more than {MAX_CI_IMAGES} images"))
        return checks, unchecked

    def _check(self, name: str, key: Key, ask_ci: Callable[[], Verdict]) -> Check:
        """A CI check that answers from the verdict cache when it can, and fills it when it cannot."""
        cache = self.cache
        if cache is None:
            return Check("ci", name, ask_ci)
        return Check("ci", name, lambda: cache.get(key, name) or cache.put(key, ask_ci()))


def _over_cap(check: str, what: str) -> Verdict:
    return Verdict(Outcome.OVERSIZE, "imguard", check, detail=f"cap: {what}")
