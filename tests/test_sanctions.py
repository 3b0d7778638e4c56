"""Floods and repeat offenders: counts every instance shares (the real Redis on this machine), the mutes
the ladder applies through IM, and a Redis that is slow or down never changing an answer (issue #16)."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid

import pytest

from imguard.rules.book import loads
from imguard.rules.errors import RulesError
from imguard.sanctions.counters import LocalCounters, RedisCounters, Window
from tests.conftest import (IM_SECRET_KEY, ROOT, SDKAPPID, answer_of, im_query, load_event, log_lines, scf_context,
                            stored, trigger_event)
from tests.flows import send_c2c

REDIS_URL = os.environ.get("IMGUARD_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture
def redis_url():
    """The machine's Redis, in a database of its own, emptied first; skipped, saying so, when it does not answer."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_timeout=1)
    try:
        client.flushdb()
    except redis.RedisError as exc:
        pytest.skip(f"no Redis at {REDIS_URL}: {type(exc).__name__} (IMGUARD_TEST_REDIS_URL points elsewhere)")
    yield REDIS_URL
    client.close()


@pytest.fixture(params=["redis", "local"])
def counters(request):
    if request.param == "local":
        return LocalCounters()
    return RedisCounters(request.getfixturevalue("redis_url"), timeout_ms=200)


def text_message(text: str, sender: str = "jared", receiver: str = "Jonh", **changes) -> dict:
    return dict(load_event("im/c2c_before_text"), From_Account=sender, To_Account=receiver,
                MsgBody=[{"MsgType": "TIMTextElem", "MsgContent": {"Text": text}}], **changes)


def group_message(text: str, **changes) -> dict:
    body = load_event("im/group_before_text_topic")
    body.update(MsgBody=[{"MsgType": "TIMTextElem", "MsgContent": {"Text": text}}], **changes)
    return body


@pytest.fixture
def guarded(make_function, tmp_path, fake_im, sqlite_dsn, redis_url):
    """im_callback with the given rules file, counters in Redis, IM and the store at hand."""

    def make(rules: str, **env):
        path = tmp_path / f"rules-{uuid.uuid4().hex}.yaml"
        path.write_text(rules, encoding="utf-8")
        return make_function(ci=False, RULES_PATH=str(path), REDIS_URL=redis_url, IM_SECRET_KEY=IM_SECRET_KEY,
                             IM_API_BASE=fake_im.base_url, AUDIT_DSN=sqlite_dsn, **env)

    return make


# -- the counters ---------------------------------------------------------------------------------


def test_a_sliding_window_counts_what_is_inside_it_and_forgets_the_rest(counters):
    key = f"imguard:test:{uuid.uuid4().hex}"
    at = time.time()

    counts = [counters.record([Window(key, (10, 60), cap=100)], at + offset)[0] for offset in (0, 5, 30, 65)]

    # 10 s and 60 s windows: at +65 only the +30 event (and itself) is within 60 s, none within 10 s
    assert counts == [[1, 1], [2, 2], [1, 3], [1, 2]]


def test_a_key_keeps_no_more_than_its_cap(counters):
    key = f"imguard:test:{uuid.uuid4().hex}"
    at = time.time()

    last = [counters.record([Window(key, (60,), cap=3)], at + i * 0.001) for i in range(50)][-1]

    assert last == [[3]]  # enough to say "more than 2", and a flood cannot grow the key


def test_a_claim_is_given_once_until_it_expires(counters):
    key = f"imguard:test:{uuid.uuid4().hex}"

    assert [counters.claim(key, 60), counters.claim(key, 60)] == [True, False]


def test_two_instances_share_one_count_through_redis(redis_url):
    # GIVEN two SCF instances, each with its own client
    first, second = RedisCounters(redis_url, 200), RedisCounters(redis_url, 200)
    key = f"imguard:rate:{uuid.uuid4().hex}"
    totals = []

    # WHEN both count the same sender at once
    def count(counters):
        for _ in range(25):
            totals.append(counters.record([Window(key, (60,), cap=1000)], time.time())[0][0])

    threads = [threading.Thread(target=count, args=(c,)) for c in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # THEN every count is distinct and the last is the total: the pipeline is atomic
    assert sorted(totals) == list(range(1, 51))


def test_a_redis_that_is_down_answers_nothing_quickly_and_says_so_once(capsys):
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]  # nothing listens here once it is closed
    counters = RedisCounters(f"redis://127.0.0.1:{port}/0", timeout_ms=50)

    began = time.monotonic()
    results = [counters.record([Window("k", (10,), 5)], time.time()) for _ in range(20)]
    took = time.monotonic() - began

    assert results == [None] * 20
    assert took < 1.0  # one failed attempt, then not asked again for a while
    assert [line["event"] for line in log_lines(capsys)] == ["counters.unavailable"]


def test_a_redis_that_does_not_answer_is_given_up_at_its_timeout():
    with socket.socket() as listener:  # accepts, never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        counters = RedisCounters(f"redis://127.0.0.1:{listener.getsockname()[1]}/0", timeout_ms=100)

        began = time.monotonic()
        result = counters.record([Window("k", (10,), 5)], time.time())
        took = time.monotonic() - began

    assert result is None and took < 1.0


# -- flood control ----------------------------------------------------------------------------------


def test_a_senders_rate_past_its_limit_is_refused_and_says_why(guarded, sqlite_dsn):
    handler = guarded("flood:\n  rate: {messages: 3, per: 10s, action: block}\n")

    codes = [send_c2c(handler, text_message(f"message {i}"))["ErrorCode"] for i in range(5)]
    other = send_c2c(handler, text_message("hello", sender="someone-else"))["ErrorCode"]

    assert codes == [0, 0, 0, 1, 1] and other == 0
    rows = stored(sqlite_dsn, 6)
    flood = [r for r in rows if any(reason.get("source") == "flood" for reason in r["reasons"])]
    assert len(flood) == 2 and flood[0]["reasons"][0]["detail"] == "more than 3 in 10 s; action block"


def test_one_text_sprayed_at_many_receivers_is_dropped_silently(guarded):
    handler = guarded("flood:\n  repeat: {times: 3, within: 10m, action: silent}\n")

    codes = [send_c2c(handler, text_message("加我 看福利 ", receiver=f"user{i}"))["ErrorCode"] for i in range(5)]
    short = [send_c2c(handler, text_message("ok", receiver=f"user{i}"))["ErrorCode"] for i in range(5)]

    assert codes == [0, 0, 0, 2, 2]  # the sender is told it went out
    assert short == [0] * 5  # texts under min_chars are not counted


def test_mention_spam_and_at_all_in_groups(guarded):
    handler = guarded("flood:\n  mentions: {max: 3, at_all: true, action: block}\n")
    ats = [{"GroupAtAllFlag": 0, "GroupAt_Account": f"u{i}"} for i in range(4)]

    def send(**changes):
        event = trigger_event(group_message("看这里", **changes), im_query("Group.CallbackBeforeSendMsg"))
        return answer_of(handler(event, scf_context()))["ErrorCode"]

    assert send(GroupAtInfo=ats[:3]) == 0
    assert send(GroupAtInfo=ats) == 1
    assert send(GroupAtInfo=[{"GroupAtAllFlag": 1}]) == 1


def test_flood_needs_signed_callbacks(make_function, tmp_path, capsys):
    # Unsigned, anyone with the URL could run up a stranger's count and have their messages refused.
    path = tmp_path / "rules.yaml"
    path.write_text("flood:\n  rate: {messages: 1, per: 10s, action: block}\n", encoding="utf-8")
    handler = make_function(ci=False, RULES_PATH=str(path), IM_CALLBACK_TOKEN=None)

    codes = [answer_of(handler(trigger_event(text_message("hi"), im_query("C2C.CallbackBeforeSendMsg", token=None)),
                               scf_context()))["ErrorCode"] for _ in range(3)]

    assert codes == [0, 0, 0]
    assert "sanctions.off" in [line["event"] for line in log_lines(capsys)]


def test_a_redis_that_is_down_never_changes_an_answer(make_function, tmp_path, capsys):
    path = tmp_path / "rules.yaml"
    path.write_text("block: [傻逼]\nflood:\n  rate: {messages: 1, per: 10s, action: block}\n", encoding="utf-8")
    handler = make_function(ci=False, RULES_PATH=str(path), REDIS_URL="redis://127.0.0.1:9/0", REDIS_TIMEOUT_MS="50")

    answers = [send_c2c(handler, text_message(text))["ErrorCode"] for text in ("hi", "hi again", "你个傻逼")]

    assert answers == [0, 0, 1]  # no flood counted, the rules still judge
    events = [line["event"] for line in log_lines(capsys)]
    assert "counters.unavailable" in events and "flood.unchecked" in events


# -- the sanctions ladder --------------------------------------------------------------------------

LADDER = """
block: [傻逼]
sanctions:
  - {blocks: 3, within: 10m, mute: 1h}
  - {blocks: 5, within: 1d, mute: 7d, record_only: true}
"""


def test_three_blocks_mute_the_sender_through_im_once(guarded, fake_im, sqlite_dsn):
    handler = guarded(LADDER)

    for _ in range(4):
        send_c2c(handler, text_message("你个傻逼"))

    # IM's global mute, once: the fourth block is in the same window
    assert fake_im.calls_to(fake_im.SET_NO_SPEAKING) == [
        {"Set_Account": "jared", "C2CmsgNospeakingTime": 3600, "GroupmsgNospeakingTime": 3600}]
    assert fake_im.muted["jared"] == {"C2C": 3600, "Group": 3600}
    [sanction] = stored(sqlite_dsn, 5, scene="sanction")
    assert sanction["action"] == "muted" and sanction["sender"] == "jared"
    assert sanction["details"]["step"] == 1 and sanction["details"]["blocks"] == 3


def test_a_record_only_step_calls_no_one(guarded, fake_im, sqlite_dsn):
    handler = guarded(LADDER)

    for _ in range(5):
        send_c2c(handler, text_message("你个傻逼", sender="ming"))

    actions = [row["action"] for row in stored(sqlite_dsn, 2, scene="sanction")]
    assert actions == ["recorded", "muted"]  # newest first: step 2 recorded only
    assert len(fake_im.calls_to(fake_im.SET_NO_SPEAKING)) == 1


def test_a_group_step_mutes_in_that_group(guarded, fake_im):
    handler = guarded("block: [傻逼]\nsanctions:\n  - {blocks: 2, within: 10m, mute: 30m, scope: group}\n")

    for _ in range(2):
        event = trigger_event(group_message("傻逼", From_Account="hong"), im_query("Group.CallbackBeforeSendMsg"))
        handler(event, scf_context())

    assert fake_im.calls_to(fake_im.FORBID_SEND) == [
        {"GroupId": "@TGS#2J4SZEAEL", "Members_Account": ["hong"], "MuteTime": 1800}]


@pytest.mark.parametrize("who, env", [("vip", {"WHITELIST_USERS": "vip"}), ("administrator", {})])
def test_whitelisted_users_and_the_admin_are_never_sanctioned(guarded, fake_im, who, env):
    handler = guarded(LADDER, **env)

    for _ in range(4):
        send_c2c(handler, text_message("你个傻逼", sender=who))

    assert fake_im.calls_to(fake_im.SET_NO_SPEAKING) == []


def test_the_fail_policys_guesses_never_count(guarded, make_function, fake_ci, fake_im, tmp_path, redis_url):
    # GIVEN CI hanging and FAIL_MODE=closed: every message is blocked, by a guess
    path = tmp_path / "rules.yaml"
    path.write_text(LADDER, encoding="utf-8")
    handler = make_function(RULES_PATH=str(path), REDIS_URL=redis_url, IM_SECRET_KEY=IM_SECRET_KEY,
                            IM_API_BASE=fake_im.base_url, FAIL_MODE="closed", DEADLINE_MS="200")
    fake_ci.text_delay_s = 1.0

    codes = [send_c2c(handler, text_message(f"plain text {i}"))["ErrorCode"] for i in range(4)]

    assert codes == [1] * 4
    assert fake_im.calls_to(fake_im.SET_NO_SPEAKING) == []


def test_flood_hits_count_toward_the_ladder(guarded, fake_im):
    handler = guarded("flood:\n  rate: {messages: 1, per: 10s, action: count}\n"
                      "sanctions:\n  - {blocks: 2, within: 10m, mute: 10m}\n")

    codes = [send_c2c(handler, text_message(f"hi {i}", sender="chatty"))["ErrorCode"] for i in range(3)]

    assert codes == [0, 0, 0]  # count: delivered
    assert [c["Set_Account"] for c in fake_im.calls_to(fake_im.SET_NO_SPEAKING)] == ["chatty"]


def test_list_and_lift_from_the_command_line(guarded, fake_im, sqlite_dsn, tmp_path):
    handler = guarded(LADDER)
    for _ in range(3):
        send_c2c(handler, text_message("你个傻逼"))
    stored(sqlite_dsn, 1, scene="sanction")
    env = {"PATH": os.environ["PATH"], "AUDIT_DSN": sqlite_dsn, "IM_SDKAPPID": SDKAPPID,
           "IM_SECRET_KEY": IM_SECRET_KEY, "IM_API_BASE": fake_im.base_url, "NO_PROXY": "127.0.0.1"}

    def imguard(*args):
        return subprocess.run([sys.executable, "-m", "imguard", "sanctions", *args, "--env-file", str(tmp_path / "x")],
                              capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)

    listed = imguard("list")
    lifted = imguard("lift", "jared", "--by", "li")

    [muted] = [json.loads(line) for line in listed.stdout.splitlines()]
    assert muted["action"] == "muted" and muted["details"]["mute_s"] == 3600
    assert json.loads(lifted.stdout) == {"user": "jared", "group": None, "status": "lifted"}
    assert fake_im.muted["jared"] == {"C2C": 0, "Group": 0}
    newest = json.loads(imguard("list").stdout.splitlines()[0])
    assert newest["action"] == "lifted" and newest["details"]["by"] == "li"


@pytest.mark.parametrize("rules, problem", [
    ("sanctions: [{blocks: 0, within: 10m, mute: 1h}]", r"sanctions\[1\].blocks"),
    ("sanctions: [{blocks: 3, within: soon, mute: 1h}]", r"sanctions\[1\].within: expected a duration"),
    ("sanctions: [{blocks: 3, within: 10m, mute: 1h, scope: world}]", r"sanctions\[1\].scope"),
    ("flood: {rate: {messages: 5, per: 10s, action: ban}}", "flood.rate.action: expected one of block, silent, count"),
    ("flood: {burst: {}}", "flood: unknown key"),
])
def test_a_bad_flood_or_ladder_is_refused_by_name(rules, problem):
    with pytest.raises(RulesError, match=problem):
        loads(rules)


def test_per_instance_counts_stay_bounded_whoever_sends(capsys):
    # A sender can invent accounts (or texts) without end: the in-process counters keep the most recent only.
    counters = LocalCounters(max_keys=1_000)
    at = time.time()

    for i in range(5_000):
        counters.record([Window(f"imguard:rate:bot{i}", (10,), 21)], at)

    assert len(counters._events) == 1_000
    assert [line["event"] for line in log_lines(capsys)] == ["counters.per_instance"]  # said once


# -- found in review: what the first version let through -------------------------------------------------


def test_a_redis_url_redis_py_cannot_use_is_refused_at_start_and_never_crashes_a_message():
    from imguard.config import ConfigError, Settings

    for url in ("redis://:pw@10.0.0.6:63x79/0", "redis://10.0.0.6:6379/abc", "localhost:6379"):
        with pytest.raises(ConfigError, match="REDIS_URL: expected redis://") as raised:
            Settings.from_env({"IM_SDKAPPID": SDKAPPID, "REDIS_URL": url})
        assert "pw" not in str(raised.value)
    # and if one reaches the client anyway, that message is only unchecked
    assert RedisCounters("redis://:pw@10.0.0.6:63x79/0", 50).record([Window("k", (10,), 5)], time.time()) is None


def test_redis_failures_are_logged_without_the_password(capsys):
    RedisCounters("redis://:s3cret@127.0.0.1:9/0", timeout_ms=50).record([Window("k", (10,), 5)], time.time())

    [line] = log_lines(capsys)
    assert line["redis"] == "redis://***@127.0.0.1:9/0" and "s3cret" not in json.dumps(line)


def test_a_group_step_earned_in_c2c_does_not_use_up_the_groups_mute(guarded, fake_im):
    handler = guarded("block: [傻逼]\nsanctions:\n  - {blocks: 2, within: 10m, mute: 30m, scope: group}\n")

    send_c2c(handler, text_message("傻逼", sender="hong"))
    send_c2c(handler, text_message("傻逼", sender="hong"))  # reaches the step in C2C: recorded only
    event = trigger_event(group_message("傻逼", From_Account="hong"), im_query("Group.CallbackBeforeSendMsg"))
    handler(event, scf_context())  # the third block, in a group: that group's mute

    assert fake_im.calls_to(fake_im.FORBID_SEND) == [
        {"GroupId": "@TGS#2J4SZEAEL", "Members_Account": ["hong"], "MuteTime": 1800}]


def test_a_text_counted_across_all_senders_never_counts_against_one_of_them(guarded, fake_im):
    # A bot farm sprays a phrase; an innocent user who sends it too must not climb the ladder for it.
    handler = guarded("flood:\n  repeat: {times: 2, within: 10m, by: anyone, action: block}\n"
                      "sanctions:\n  - {blocks: 2, within: 10m, mute: 1h}\n")
    for bot in range(3):
        send_c2c(handler, text_message("今晚八点开会", sender=f"bot{bot}"))

    codes = [send_c2c(handler, text_message("今晚八点开会", sender="colleague"))["ErrorCode"] for _ in range(3)]

    assert codes == [1, 1, 1]  # refused, as the check says
    assert fake_im.calls_to(fake_im.SET_NO_SPEAKING) == []  # but nobody is muted for it
