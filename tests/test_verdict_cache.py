"""The verdict cache: a flood of one text or one image costs one CI call, and failures are never kept."""
from __future__ import annotations

import pytest

from imguard.moderation.cache import VerdictCache, image_key, text_key
from imguard.moderation.verdict import Outcome, Verdict
from tests.conftest import answer_of, im_query, load_event, scf_context, trigger_event

C2C = "C2C.CallbackBeforeSendMsg"


def send(handler, event):
    return answer_of(handler(trigger_event(load_event(event), im_query(C2C)), scf_context()))


def test_a_flood_of_one_message_asks_ci_once_and_is_blocked_every_time(make_function, fake_ci):
    fake_ci.flag_word("red packet", label="Ads")
    fake_ci.flag_image("https://xxx/..._D61040894AC3DE44CDFFFB3EC7EB720F/720", label="Porn")
    handler = make_function(VERDICT_CACHE_S="300")

    answers = [send(handler, "im/c2c_before_text") for _ in range(20)] + \
              [send(handler, "im/c2c_before_image") for _ in range(20)]

    assert {a["ErrorCode"] for a in answers} == {1}
    assert len(fake_ci.calls_of("text")) == 1 and len(fake_ci.calls_of("image")) == 1


def test_a_failed_check_is_asked_again(make_function, fake_ci):
    handler = make_function(VERDICT_CACHE_S="300", FAIL_MODE="open")
    fake_ci.fail(status=503)
    assert send(handler, "im/c2c_before_text")["ErrorCode"] == 0  # open: allowed without a verdict

    fake_ci.failure = None  # CI is back, and now finds the text violating
    fake_ci.flag_word("red packet", label="Ads")
    assert send(handler, "im/c2c_before_text")["ErrorCode"] == 1


def test_verdicts_expire_and_the_oldest_make_room():
    now = [1000.0]
    cache = VerdictCache(ttl_s=60, max_entries=2, clock=lambda: now[0])
    block = Verdict(Outcome.BLOCK, "ci", "text", label="Ads")

    cache.put(text_key("spam"), block)
    cache.put(image_key("https://a"), Verdict(Outcome.PASS, "ci", "image[0]"))
    cached = cache.get(text_key("spam"), "text[1]")
    assert (cached.outcome, cached.label, cached.check, cached.detail) == (Outcome.BLOCK, "Ads", "text[1]", "cached")

    cache.put(image_key("https://b"), Verdict(Outcome.PASS, "ci", "image[0]"))  # evicts the least recent
    assert cache.get(image_key("https://a"), "image[0]") is None
    now[0] += 61
    assert cache.get(text_key("spam"), "text") is None  # expired


@pytest.mark.parametrize("outcome", [Outcome.ERROR, Outcome.TIMEOUT, Outcome.SKIPPED])
def test_only_definite_verdicts_are_kept(outcome):
    cache = VerdictCache(ttl_s=60)

    cache.put(text_key("x"), Verdict(outcome, "ci", "text"))

    assert cache.get(text_key("x"), "text") is None


def test_the_cache_holds_digests_not_texts():
    assert "secret message" not in repr(text_key("secret message"))
