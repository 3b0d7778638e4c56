"""A new SCF instance: it imports nothing its first answer does not need, and that answer counts the
start-up against the deadline, since IM's 2 s began before it (issue #15)."""
from __future__ import annotations

import json
import subprocess
import sys
import time

from tests.conftest import IM_TOKEN, ROOT, answer_of, im_query, load_event, log_lines, scf_context, trigger_event

# Imports index.py, then answers the event on stdin if there is one; prints what is imported by then.
PROBE = """
import json, sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
import index
raw = sys.stdin.read()
if raw:
    print(json.dumps(index.main_handler(*json.loads(raw))))
print(json.dumps({name: name in sys.modules for name in ("requests", "qcloud_cos", "sqlalchemy", "pypinyin", "redis")}))
"""
CI = {"COS_BUCKET": "imguard-1250000000", "COS_REGION": "ap-guangzhou", "COS_SECRET_ID": "id", "COS_SECRET_KEY": "key",
      "CI_SCHEME": "http", "CI_DOMAIN": "127.0.0.1:9"}  # the discard port: refused at once


def imported(env, event=None):
    process = subprocess.run([sys.executable, "-I", "-c", PROBE, str(ROOT / "shared"), str(ROOT / "functions" / "im_callback")],
                             capture_output=True, text=True, env=env, timeout=60,
                             input=json.dumps([event, {"request_id": "cold"}]) if event else "")
    assert process.returncode == 0, process.stderr[-2000:]
    return json.loads(process.stdout.strip().splitlines()[-1])


def test_local_rules_alone_import_no_http_client_no_cos_sdk_no_sql_and_no_pinyin():
    modules = imported({"IM_SDKAPPID": "1400000000", "RULES_PATH": str(ROOT / "rules.example.yaml")})

    assert modules == {"requests": False, "qcloud_cos": False, "sqlalchemy": False, "pypinyin": False, "redis": False}


def test_ci_configured_imports_the_cos_sdk_only_when_a_message_reaches_ci():
    rules = {"IM_SDKAPPID": "1400000000", "RULES_PATH": str(ROOT / "rules.example.yaml"), **CI}
    settled_locally = trigger_event(load_event("im/c2c_before_text"), im_query("C2C.CallbackBeforeSendMsg"))
    settled_locally["body"] = settled_locally["body"].replace("red packet", "你个傻逼")
    goes_to_ci = trigger_event(load_event("im/c2c_before_text"), im_query("C2C.CallbackBeforeSendMsg"))

    at_import = imported(rules)
    after_local_block = imported(rules, settled_locally)
    after_ci_call = imported(rules, goes_to_ci)

    assert at_import == {"requests": False, "qcloud_cos": False, "sqlalchemy": False, "pypinyin": False, "redis": False}
    assert after_local_block["qcloud_cos"] is False  # blocked by the rules, CI never asked
    assert after_ci_call["requests"] is True and after_ci_call["qcloud_cos"] is True


def test_an_audit_store_is_not_imported_before_the_first_answer(tmp_path):
    # SQLAlchemy and the engine belong to the background writer, which starts with the first record.
    modules = imported({"IM_SDKAPPID": "1400000000", "AUDIT_DSN": f"sqlite:///{tmp_path}/audit.db"})

    assert modules["sqlalchemy"] is False


def test_redis_is_imported_by_the_first_message_that_needs_a_count_not_at_start(tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text("flood:\n  rate: {messages: 20, per: 10s}\n", encoding="utf-8")
    env = {"IM_SDKAPPID": "1400000000", "IM_CALLBACK_TOKEN": IM_TOKEN, "RULES_PATH": str(rules),
           "REDIS_URL": "redis://127.0.0.1:9/0", "REDIS_TIMEOUT_MS": "50"}  # nothing there: it only has to import
    message = trigger_event(load_event("im/c2c_before_text"), im_query("C2C.CallbackBeforeSendMsg"))

    assert imported(env)["redis"] is False
    assert imported(env, message)["redis"] is True


def test_the_first_answer_counts_the_start_up_against_the_deadline(make_function, fake_ci, capsys):
    # GIVEN an instance whose start-up took 0.9 s, and CI hanging
    handler = make_function(DEADLINE_MS="1500")
    app = handler.__globals__["_app"]
    now = time.monotonic()
    app.started_up(now - 0.9, now)
    fake_ci.text_delay_s = 3.0
    event = trigger_event(load_event("im/c2c_before_text"), im_query("C2C.CallbackBeforeSendMsg"))

    # WHEN IM's callback, which has been waiting all along, reaches it
    began = time.monotonic()
    first = answer_of(handler(event, scf_context()))
    first_took = time.monotonic() - began

    # THEN the answer leaves within DEADLINE_MS of when the start-up began (generous margin), by FAIL_MODE,
    # and its log line says how long the start-up took
    assert first["ErrorCode"] == 0
    assert 0.9 + first_took < 1.5 + 0.3
    [line] = [l for l in log_lines(capsys) if l["event"] == "callback.moderated"]
    assert line["degraded"] == "timeout" and 900 <= line["cold_start_ms"] < 1200


def test_only_the_first_call_counts_it_and_never_below_the_floor(make_function, fake_ci, capsys):
    from imguard.apps.im_callback import COLD_FLOOR_S

    handler = make_function(DEADLINE_MS="300")
    app = handler.__globals__["_app"]
    now = time.monotonic()
    app.started_up(now - 5.0, now)  # a start-up longer than the whole deadline
    fake_ci.text_delay_s = 3.0
    event = trigger_event(load_event("im/c2c_before_text"), im_query("C2C.CallbackBeforeSendMsg"))

    began = time.monotonic()
    handler(event, scf_context())
    first_took = time.monotonic() - began
    handler(event, scf_context())

    assert COLD_FLOOR_S - 0.05 <= first_took < COLD_FLOOR_S + 0.4  # the floor, not zero
    first, second = [l for l in log_lines(capsys) if l["event"] == "callback.moderated"]
    assert "cold_start_ms" in first and "cold_start_ms" not in second
