"""The verdict cache: a flood of one text or one image costs one CI call, and failures are never kept."""
from __future__ import annotations

import tracemalloc

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


def test_a_long_image_url_costs_a_fixed_size_key_that_does_not_hold_it():
    url = "https://im-media.example.com/720?sign=" + "s" * 4000  # presigned URLs run long

    key = image_key(url)

    assert url not in repr(key) and len(repr(key)) < 200
    assert key != image_key(url + "x")


def long_keyword_verdict(i: int) -> Verdict:
    # CI's keywords are pieces of the user's text: here 25 of 80 characters, about 4 KB per verdict. (More than
    # 20: CPython keeps freed tuples of up to 20 items for reuse, which tracemalloc would count as held.)
    keywords = tuple(f"{i}-{k}-" + "词" * 80 for k in range(25))
    return Verdict(Outcome.BLOCK, "ci", "image[0]", label="Porn", keywords=keywords, detail="x" * 1000)


def test_the_cache_is_bounded_in_bytes_and_evicts_the_least_recently_used():
    # GIVEN a cache with room for far more entries than bytes
    cache = VerdictCache(ttl_s=60, max_entries=10_000, max_bytes=256 * 1024)
    cache.put(image_key("https://first"), long_keyword_verdict(0))

    # WHEN many verdicts with long keywords arrive, the first one being read all along
    for i in range(1, 500):
        cache.put(image_key(f"https://img/{i}"), long_keyword_verdict(i))
        assert cache.get(image_key("https://first"), "image[0]") is not None

    # THEN the byte budget holds, by evicting the least recently used, not the most recently read
    assert cache.size_bytes <= 256 * 1024
    assert 30 < len(cache) < 80
    assert cache.get(image_key("https://img/1"), "image[0]") is None
    assert cache.get(image_key("https://img/499"), "image[0]").keywords == long_keyword_verdict(499).keywords


def test_putting_a_key_again_replaces_it_without_counting_it_twice():
    cache = VerdictCache(ttl_s=60)
    cache.put(text_key("spam"), long_keyword_verdict(0))
    size = cache.size_bytes

    cache.put(text_key("spam"), long_keyword_verdict(0))

    assert (len(cache), cache.size_bytes) == (1, size)


def test_the_byte_estimate_is_what_the_cache_really_holds():
    # GIVEN an empty cache with a 1 MiB budget
    cache = VerdictCache(ttl_s=60, max_bytes=1024 * 1024)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]

        # WHEN it is filled far beyond its budget with distinct URLs and keywords
        for i in range(2_000):
            cache.put(image_key(f"https://img/{i}?sign=" + "s" * 2000), long_keyword_verdict(i))
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()

    # THEN the estimate stays within the budget, and what it holds within the estimate, give or take
    assert cache.size_bytes <= 1024 * 1024
    assert held <= 1.1 * cache.size_bytes
