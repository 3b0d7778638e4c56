"""The audit store on SQLite, PostgreSQL and MariaDB, and the trail that keeps it off the answer's path."""
from __future__ import annotations

import sqlite3
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import inspect

from imguard.audit.record import AuditRecord, utc_now
from imguard.audit.store import AuditStore
from imguard.audit.trail import MAX_QUEUED, MAX_QUEUED_BYTES, AuditTrail
from imguard.config import audit_dsn as parsed_dsn
from tests.conftest import (answer_of, im_query, load_event, log_lines, scf_context, stored, trigger_event,
                            wait_for_log)

CI_ADS = {"source": "ci", "check": "text", "outcome": "block", "label": "Ads", "score": 91, "keywords": ["加微信"]}
RULES_HIT = {"source": "rules", "check": "rules", "outcome": "block", "label": "block",
             "keywords": ["block:赌博", "block:六合彩"], "detail": "sha1:abc"}


def record(**fields) -> AuditRecord:
    values = dict(event="callback.moderated", request_id="req-1", function="im_callback",
                  command="C2C.CallbackBeforeSendMsg", scene="c2c", action="allow", sender="alice", receiver="bob",
                  msg_key="1_2_3", content_types=["TIMTextElem"], text="你好 😀", latency_ms=12.5)
    values.update(fields)
    return AuditRecord(**values)


def test_tables_are_created_when_missing_with_the_indexes_queries_need(audit_dsn):
    store = AuditStore(audit_dsn)

    store.write([record()])

    inspector = inspect(store.engine)
    assert {"imguard_audit", "imguard_audit_reason"} <= set(inspector.get_table_names())
    indexed = {tuple(index["column_names"]) for index in inspector.get_indexes("imguard_audit")}
    assert {("created_at",), ("sender",), ("action",)} <= indexed
    store.dispose()


def test_records_come_back_newest_first_with_their_reasons_and_unicode_intact(audit_dsn):
    # GIVEN a store holding three decisions, one blocked by CI and a local rule
    store = AuditStore(audit_dsn)
    now = utc_now()
    store.write([
        record(request_id="old", created_at=now - timedelta(hours=3)),
        record(request_id="blocked", action="block", reasons=[CI_ADS, RULES_HIT], created_at=now - timedelta(minutes=5),
               details={"error_code": 1}),
        record(request_id="group", scene="group", receiver="", group_id="@TGS#1", sender="carol", created_at=now),
    ])

    # WHEN they are listed
    rows = store.recent()

    # THEN the newest comes first, and the blocked one says why, emoji and Chinese intact
    assert [r["request_id"] for r in rows] == ["group", "blocked", "old"]
    blocked = rows[1]
    assert blocked["details"] == {"error_code": 1}
    assert blocked["reasons"][0] == {"source": "ci", "check_name": "text", "outcome": "block", "label": "Ads",
                                     "score": 91, "keywords": ["加微信"]}
    assert [r["rule"] for r in blocked["reasons"][1:]] == ["block:赌博", "block:六合彩"]
    assert blocked["content_sha256"] == record().content_sha256
    assert blocked["content"] is None  # AUDIT_STORE_CONTENT is off by default
    store.dispose()


def test_filters_select_by_time_user_action_and_text(audit_dsn):
    store = AuditStore(audit_dsn)
    now = utc_now()
    store.write([
        record(request_id="a", created_at=now - timedelta(days=2)),
        record(request_id="b", action="block", sender="mallory", receiver="bob"),
        record(request_id="c", sender="bob", receiver="alice", text="another text"),
        record(request_id="d", scene="group", receiver="", group_id="@TGS#x", sender="zed"),
    ])

    def ids(**filters):
        return sorted(r["request_id"] for r in store.recent(**filters))

    assert ids(since=now - timedelta(hours=1)) == ["b", "c", "d"]
    assert ids(user="bob") == ["a", "b", "c"]  # sent by or to
    assert ids(user="@TGS#x") == ["d"]
    assert ids(action="block") == ["b"]
    assert ids(sha256=record(text="another text").content_sha256) == ["c"]
    assert ids(limit=2) == ["c", "d"]
    store.dispose()


def test_clear_content_is_kept_only_when_asked(audit_dsn):
    store = AuditStore(audit_dsn, store_content=True)

    store.write([record(text="加微信 😀", urls=["https://img.example.com/1.png"])])

    [row] = store.recent()
    assert row["content"] == {"text": "加微信 😀", "urls": ["https://img.example.com/1.png"]}
    store.dispose()


def test_stats_count_by_action_scene_label_sender_and_rule(audit_dsn):
    store = AuditStore(audit_dsn)
    now = utc_now()
    store.write([
        record(action="block", sender="mallory", reasons=[CI_ADS]),
        record(action="block", sender="mallory", reasons=[RULES_HIT]),
        record(action="rewrite", sender="eve", reasons=[{"source": "rules", "check": "rules", "outcome": "pass",
                                                        "label": "replace", "keywords": ["replace:垃圾"]}]),
        record(action="allow", sender="alice"),
        record(action="allow", sender="alice"),
        record(action="block", scene="group", sender="old", created_at=now - timedelta(days=3), reasons=[CI_ADS]),
    ])

    stats = store.stats(since=now - timedelta(days=1))

    assert stats["total"] == 5
    assert stats["by_action"] == [["allow", 2], ["block", 2], ["rewrite", 1]]
    assert stats["by_scene"] == [["c2c", 5]]
    assert stats["by_label"] == [["Ads", 1]]  # CI's labels; local rules are ranked under top_rules
    assert stats["top_senders"] == [["mallory", 2], ["eve", 1]]  # allowed traffic is not a "top sender"
    assert stats["top_rules"] == [["block:六合彩", 1], ["block:赌博", 1], ["replace:垃圾", 1]]
    store.dispose()


def test_overlong_values_are_cut_to_fit_rather_than_lose_the_record(audit_dsn):
    store = AuditStore(audit_dsn)

    store.write([record(sender="u" * 500, msg_key="k" * 500,
                        reasons=[dict(CI_ADS, label="L" * 300, detail="d" * 2000)])])

    [row] = store.recent()
    assert row["sender"] == "u" * 128
    assert row["reasons"][0]["label"] == "L" * 64
    store.dispose()


# --- the trail: the answer goes first ------------------------------------------------------


def test_a_locked_store_does_not_hold_the_answer_and_the_record_lands_later(make_function, fake_ci, sqlite_dsn):
    # GIVEN a SQLite store that another process holds an exclusive lock on
    handler = make_function(AUDIT_DSN=sqlite_dsn, AUDIT_WAIT_MS="100")
    answer_of(handler(trigger_event(load_event("im/c2c_before_text"), im_query("C2C.CallbackBeforeSendMsg")),
                      scf_context()))  # creates the tables
    assert len(stored(sqlite_dsn)) == 1
    path = sqlite_dsn.split("sqlite:///", 1)[1]
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    fake_ci.flag_word("red packet", label="Ads")

    # WHEN a violating message arrives
    started = time.monotonic()
    response = handler(trigger_event(load_event("im/c2c_before_text"), im_query("C2C.CallbackBeforeSendMsg")),
                       scf_context())
    elapsed = time.monotonic() - started

    # THEN the answer is the same as ever and not held by the store (AUDIT_WAIT_MS is 0.1 s)
    assert answer_of(response)["ErrorCode"] == 1
    assert elapsed < 0.8
    # AND once the lock is gone, the record is written
    blocker.execute("ROLLBACK")
    blocker.close()
    rows = stored(sqlite_dsn, count=2)
    assert [r["action"] for r in rows] == ["block", "allow"]


def test_a_store_that_is_down_is_logged_and_counted_and_the_answer_is_unchanged(make_function, fake_ci, capsys):
    # GIVEN an audit DSN where nothing listens
    handler = make_function(AUDIT_DSN="postgresql://postgres@127.0.0.1:9/test")
    fake_ci.flag_word("red packet", label="Ads")

    # WHEN a violating message arrives
    started = time.monotonic()
    answer = answer_of(handler(trigger_event(load_event("im/c2c_before_text"), im_query("C2C.CallbackBeforeSendMsg")),
                               scf_context()))

    # THEN it is rejected as usual, in time, and the log still holds the decision
    assert answer["ErrorCode"] == 1
    assert time.monotonic() - started < 1.0
    lines = wait_for_log(capsys, "audit.store_failed")
    [decision] = [l for l in lines if l["event"] == "callback.moderated"]
    assert decision["action"] == "block"
    [failure] = [l for l in lines if l["event"] == "audit.store_failed"]
    assert failure["retrying"] == 1 and failure["batch"] == 1
    assert "postgres@127.0.0.1:9" in failure["store"]


def test_a_full_queue_drops_the_oldest_and_counts_them(monkeypatch, sqlite_dsn, capsys):
    import imguard.audit.trail as trail_module

    # GIVEN a trail whose store is locked, with room for 3 records
    monkeypatch.setattr(trail_module, "MAX_QUEUED", 3)
    store = AuditStore(sqlite_dsn)
    store.ensure_tables()
    blocker = sqlite3.connect(sqlite_dsn.split("sqlite:///", 1)[1], isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    trail = AuditTrail(store, wait_ms=0)

    # WHEN one record is taken by the writer, which is then stuck on the lock, and 5 more arrive
    trail.record(record(request_id="r0"))
    end = time.monotonic() + 5
    while trail.queued and time.monotonic() < end:
        time.sleep(0.01)
    for i in range(1, 6):
        trail.record(record(request_id=f"r{i}"))

    # THEN the oldest queued ones made room, and were counted
    assert trail.dropped == 2
    assert [l["dropped_total"] for l in log_lines(capsys) if l["event"] == "audit.dropped"] == [1, 2]
    blocker.execute("ROLLBACK")
    blocker.close()
    assert trail.flush(timeout=10)
    assert sorted(r["request_id"] for r in store.recent()) == ["r0", "r3", "r4", "r5"]
    store.dispose()


def test_with_the_store_down_queued_records_hold_no_text_and_stay_within_the_byte_budget(capsys):
    # GIVEN a trail whose store is down (nothing listens there) and keeps no content
    store = AuditStore(parsed_dsn("postgresql://postgres@127.0.0.1:9/test"), store_content=False)
    trail = AuditTrail(store, wait_ms=0)
    texts = {}

    # WHEN 5,000 decisions on 10 KB texts with an image arrive: 50 MB of text, were it kept
    for i in range(5_000):
        texts[f"r{i}"] = f"{i:05d} " + "spam " * 2_000
        trail.record(record(request_id=f"r{i}", text=texts[f"r{i}"], urls=[f"https://img.example.com/{i}.png"]))

    # THEN what waits for the store is the digest of each text, not the text or the URL
    pending = trail.pending()
    assert pending and all(r.text == "" and r.urls == () for r in pending)
    assert all(r.content_sha256 == record(text=texts[r.request_id]).content_sha256 for r in pending)
    # AND the byte budget, well before the record count, made room by dropping the oldest
    assert trail.queued_bytes <= MAX_QUEUED_BYTES and len(pending) < MAX_QUEUED
    assert trail.dropped > 0 and pending[-1].request_id == "r4999"
    # AND the log line of each decision, written first, is unchanged: length and digest of the text
    decisions = [l for l in log_lines(capsys) if l["event"] == "callback.moderated"]
    assert len(decisions) == 5_000
    assert decisions[-1]["text"] == {"len": len(texts["r4999"]), "sha256": pending[-1].content_sha256}
    store.dispose()


@pytest.mark.parametrize("store_content", [True, False])
def test_the_trail_hands_the_store_the_text_only_when_it_keeps_it(sqlite_dsn, store_content):
    store = AuditStore(sqlite_dsn, store_content=store_content)
    trail = AuditTrail(store, wait_ms=0)

    trail.record(record(text="加微信 😀", urls=["https://img.example.com/1.png"]))

    assert trail.flush(timeout=10)
    [row] = store.recent()
    assert row["content_sha256"] == record(text="加微信 😀").content_sha256
    assert row["content"] == ({"text": "加微信 😀", "urls": ["https://img.example.com/1.png"]} if store_content else None)
    store.dispose()


@pytest.mark.parametrize("dsn, variable_ok", [
    ("postgres://u:pw@db/x", True),
    ("mysql://root@127.0.0.1/test", True),
    ("sqlite:///./audit.db", True),
    ("oracle://u:hunter2@db/x", False),
    ("just-a-path.db", False),
])
def test_audit_dsn_is_checked_at_start_up_without_echoing_secrets(base_env, dsn, variable_ok):
    from imguard.config import ConfigError, Settings

    environ = {"IM_SDKAPPID": "1400000000", "AUDIT_DSN": dsn}
    if variable_ok:
        assert Settings.from_env(environ).audit.dsn.split("://")[0] in ("postgresql+psycopg", "mysql+pymysql", "sqlite")
        return
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(environ)
    assert caught.value.variable == "AUDIT_DSN"
    assert "hunter2" not in str(caught.value)


def test_text_no_database_can_hold_is_stored_readably_and_absurd_numbers_are_dropped(audit_dsn):
    store = AuditStore(audit_dsn, store_content=True)

    store.write([record(text="bad \ud800 surrogate and \x00 nul", sender="nul\x00in id", msg_seq=10**20,
                        scene="group")])

    [row] = store.recent()
    assert row["content"]["text"] == "bad ? surrogate and \x00 nul"  # JSON escapes the NUL
    assert row["sender"] == "nul\ufffdin id"
    assert row["msg_seq"] is None
    store.dispose()


def test_one_record_the_store_refuses_does_not_take_its_batch_down(audit_dsn):
    # GIVEN a batch in which one record carries a score no integer column holds
    store = AuditStore(audit_dsn)
    store.ensure_tables()
    trail = AuditTrail(store, wait_ms=0)

    # WHEN the batch is written
    trail.record(record(request_id="a"), record(request_id="bad", reasons=[dict(CI_ADS, score=2**70)]),
                 record(request_id="c"))
    assert trail.flush(timeout=20)

    # THEN the good records are stored and only the bad one is counted as lost
    assert sorted(r["request_id"] for r in store.recent()) == ["a", "c"]
    assert trail.failed == 1
    store.dispose()


def test_labels_are_ranked_by_the_decisions_that_carry_them(audit_dsn):
    store = AuditStore(audit_dsn)
    porn = dict(CI_ADS, label="Porn")
    store.write([record(action="block", reasons=[CI_ADS, dict(CI_ADS, check="image[0]")]),
                 record(action="block", reasons=[porn]), record(action="block", reasons=[porn])])

    assert store.stats()["by_label"] == [["Porn", 2], ["Ads", 1]]
    store.dispose()


def test_while_the_store_is_failing_answers_do_not_wait_for_it(make_function, fake_ci):
    # GIVEN a store that is down and a generous AUDIT_WAIT_MS
    handler = make_function(AUDIT_DSN="postgresql://postgres@127.0.0.1:9/test", AUDIT_WAIT_MS="1000")
    event = trigger_event(load_event("im/c2c_before_text"), im_query("C2C.CallbackBeforeSendMsg"))
    handler(event, scf_context())  # the first write fails and the trail backs off

    # WHEN the next callbacks arrive
    started = time.monotonic()
    for _ in range(3):
        assert answer_of(handler(event, scf_context()))["ErrorCode"] == 0

    # THEN none of them waited out AUDIT_WAIT_MS
    assert time.monotonic() - started < 1.0


def test_an_unwritable_sqlite_path_does_not_stop_the_function(make_function, fake_ci, capsys):
    handler = make_function(AUDIT_DSN="sqlite:////proc/imguard/audit.db")

    answer = answer_of(handler(trigger_event(load_event("im/c2c_before_text"), im_query("C2C.CallbackBeforeSendMsg")),
                               scf_context()))

    assert answer["ErrorCode"] == 0
    assert any(l["event"] == "audit.store_failed" for l in wait_for_log(capsys, "audit.store_failed"))


def test_two_instances_creating_the_tables_at_once_both_end_up_writing(audit_dsn):
    # GIVEN two cold instances starting together on an empty database
    stores = [AuditStore(audit_dsn), AuditStore(audit_dsn)]
    barrier = threading.Barrier(2)
    errors = []

    def first_write(store, name):
        barrier.wait()
        try:
            store.write([record(request_id=name)])
        except Exception as exc:  # noqa: BLE001 - the assertion below names it
            errors.append(exc)

    threads = [threading.Thread(target=first_write, args=(s, f"r{i}")) for i, s in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # THEN neither lost its record to the other's CREATE TABLE
    assert errors == []
    assert sorted(r["request_id"] for r in stores[0].recent()) == ["r0", "r1"]
    for store in stores:
        store.dispose()
