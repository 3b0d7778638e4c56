"""Whatever arrives, im_callback answers: properties over any input, pathological bodies, and every way
CI and IM can fail. Timing bounds here are deliberately loose; the figures live in `make bench`."""
from __future__ import annotations

import base64
import json
import socket
import struct
import threading
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug import Response

from imguard.rules.ruleset import parse
from tests.conftest import answer_of, im_query, load_event, log_lines, scf_context, stored, trigger_event
from tests.flows import job_for

C2C = "C2C.CallbackBeforeSendMsg"
COMMANDS = [C2C, "Group.CallbackBeforeSendMsg", "Group.CallbackAfterSendMsg", "Sns.CallbackPrevFriendAdd",
            "Group.CallbackBeforeCreateGroup", "Group.CallbackAfterGroupInfoChanged", "Profile.CallbackPortraitSet",
            "ContentCallback.ResultNotify", "State.StateChange"]
LOOSE = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=15), inner, max_size=5),
    max_leaves=30,
)


def integration_response(response) -> dict:
    """What API Gateway needs back, whatever happened inside."""
    assert isinstance(response, dict)
    assert isinstance(response["statusCode"], int) and 200 <= response["statusCode"] < 600
    assert response["headers"]["Content-Type"] == "application/json"
    return json.loads(response["body"])


@pytest.fixture
def rules_file(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text("block: [赌博]\nreplace: [垃圾, {regex: 'qq\\d{5,}'}]\n", encoding="utf-8")
    return str(path)


# --- properties ------------------------------------------------------------------------


@LOOSE
@given(body=st.one_of(st.binary(max_size=3000), st.text(max_size=3000), json_values),
       query=st.dictionaries(st.sampled_from(["SdkAppid", "CallbackCommand", "Sign", "RequestTime", "contenttype",
                                              "sdkappid"]) | st.text(max_size=10),
                             st.text(max_size=40) | st.sampled_from(["1400000000", *COMMANDS]), max_size=6),
       base64_flag=st.booleans())
def test_any_body_and_query_get_an_integration_response_with_a_json_body(make_function, rules_file, body, query,
                                                                         base64_flag):
    handler = make_function(ci=False, RULES_PATH=rules_file)
    event = trigger_event("", query)
    raw = body if isinstance(body, bytes) else (body if isinstance(body, str) else json.dumps(body)).encode("utf-8", "surrogatepass")
    event["body"] = base64.b64encode(raw).decode() if base64_flag else raw.decode("utf-8", "replace")
    event["isBase64Encoded"] = base64_flag

    integration_response(handler(event, scf_context()))


@LOOSE
@given(event=json_values, context=json_values)
def test_any_event_shape_gets_an_integration_response(make_function, event, context):
    handler = make_function(ci=False)

    integration_response(handler(event, context))


elements = st.fixed_dictionaries({
    "MsgType": st.sampled_from(["TIMTextElem", "TIMCustomElem", "TIMImageElem", "TIMRelayElem", "TIMSoundElem",
                                "TIMFaceElem", "TIMLocationElem", "TIMFileElem", "TIMVideoFileElem", "X"]) | json_values,
    "MsgContent": st.fixed_dictionaries({}, optional={
        "Text": st.text(max_size=60) | st.sampled_from(["网上赌博", "你这个垃圾", "加qq1234567"]) | json_values,
        "Data": st.text(max_size=30), "Desc": st.text(max_size=30), "ImageInfoArray": json_values,
        "MsgList": json_values, "AbstractList": json_values,
    }) | json_values,
})


@LOOSE
@given(command=st.sampled_from(COMMANDS), msg_body=st.lists(elements, max_size=8),
       extra=st.dictionaries(st.sampled_from(["From_Account", "To_Account", "GroupId", "MsgKey", "MsgSeq",
                                              "FriendItem", "ProfileItem", "Name", "TextContent"]), json_values))
def test_authenticated_callbacks_always_get_a_well_formed_im_answer(make_function, rules_file, command, msg_body,
                                                                    extra):
    handler = make_function(ci=False, RULES_PATH=rules_file, IM_CALLBACK_TOKEN="prop-token")
    body = dict(load_event("im/c2c_before_text"), **extra, MsgBody=msg_body)

    response = handler(trigger_event(body, im_query(command, token="prop-token")), scf_context())

    answer = integration_response(response)
    assert response["statusCode"] == 200
    assert answer["ActionStatus"] == "OK" and isinstance(answer["ErrorCode"], int) and isinstance(answer["ErrorInfo"], str)
    if "MsgBody" in answer:  # a rewrite: the same elements, only texts changed
        assert answer["ErrorCode"] == 0 and len(answer["MsgBody"]) == len(msg_body)


# --- pathological inputs ---------------------------------------------------------------


def text_message(text):
    return dict(load_event("im/c2c_before_text"), MsgBody=[{"MsgType": "TIMTextElem", "MsgContent": {"Text": text}}])


def nested_relay(depth):
    body = [{"MsgType": "TIMTextElem", "MsgContent": {"Text": "网上赌博"}}]
    for _ in range(depth):
        body = [{"MsgType": "TIMRelayElem", "MsgContent": {"Title": "t", "MsgList": [{"MsgBody": body}]}}]
    return dict(load_event("im/c2c_before_text"), MsgBody=body)


PATHOLOGICAL = {
    "1 MB of text": (text_message("好" * 1_000_000), 200),
    "10,000 elements": (dict(load_event("im/c2c_before_text"),
                             MsgBody=[{"MsgType": "TIMTextElem", "MsgContent": {"Text": "hi"}}] * 10_000), 200),
    "relay nested 50 deep": (nested_relay(50), 200),
    "NUL bytes": (text_message("a\x00b\x00网上\x00赌博"), 200),
    "lone surrogates": ('{"From_Account":"a","MsgBody":[{"MsgType":"TIMTextElem","MsgContent":{"Text":"\\ud800\\udfff\\ud800"}}]}', 200),
    "huge numbers": ('{"From_Account":"a","MsgSeq":1' + "0" * 400 + ',"MsgRandom":-1e400,"MsgBody":[]}', 200),
    "every field the wrong type": ({"From_Account": [1], "To_Account": {"a": 1}, "MsgKey": 3.5, "MsgSeq": "x",
                                    "MsgBody": {"MsgType": "TIMTextElem"}, "GroupId": None}, 200),
    "elements of the wrong type": (dict(load_event("im/c2c_before_text"),
                                        MsgBody=[1, "x", None, [], {"MsgType": 5, "MsgContent": "Text"}]), 200),
    "not JSON": ("{\"From_Account\": ", 400),
    "JSON but not an object": ("[1, 2, 3]", 400),
}


@pytest.mark.parametrize("name", list(PATHOLOGICAL))
def test_pathological_bodies_get_the_documented_answer_in_bounded_time(make_function, fake_ci, rules_file, name):
    body, status = PATHOLOGICAL[name]
    handler = make_function(RULES_PATH=rules_file, DEADLINE_MS="1000")

    started = time.monotonic()
    response = handler(trigger_event(body, im_query(C2C)), scf_context())
    elapsed = time.monotonic() - started

    answer = integration_response(response)
    assert response["statusCode"] == status
    assert elapsed < 5.0  # generous: the deadline is 1 s; this only catches runaway work
    if status == 400:
        assert answer["error"] == "BadRequest"
    else:
        assert isinstance(answer["ErrorCode"], int)


def test_invalid_utf8_in_a_base64_body_is_a_400_with_a_reason(make_function):
    handler = make_function(ci=False)
    event = trigger_event("", im_query(C2C))
    event.update(body=base64.b64encode(b'{"Text": "\xff\xfe"}').decode(), isBase64Encoded=True)

    response = handler(event, scf_context())

    assert response["statusCode"] == 400
    assert integration_response(response) == {"error": "BadRequest", "message": "body is not valid UTF-8"}


@pytest.mark.parametrize("rules, text", [
    ({"block": [{"regex": "(a+)+$"}]}, "a" * 100_000 + "!"),
    ({"block": [{"regex": "(x+x+)+y"}]}, "x" * 100_000),
    ({"block": ["a" * n for n in range(1, 200)]}, "a" * 100_000),
    ({"replace": ["a" * n for n in range(1, 200)]}, "b" + "a" * 100_000),
    ({"block": ["傻" * n for n in range(1, 200)]}, "傻" * 100_000),
], ids=["nested quantifier", "overlapping quantifiers", "nested Latin keywords", "nested replace keywords",
        "nested Chinese keywords"])
def test_pathological_rules_run_in_linear_time_on_100_kb(rules, text):
    ruleset = parse(rules)

    started = time.monotonic()
    ruleset.scan(text)
    elapsed = time.monotonic() - started

    assert elapsed < 2.0  # backtracking would take longer than the universe; linear takes milliseconds


# --- faults in CI and IM ---------------------------------------------------------------


@pytest.fixture
def resetting_server():
    """Accepts connections and resets them at once: a CI endpoint falling over mid-request."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    stop = threading.Event()

    def serve():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.recv(65536)
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join(2)
    listener.close()


CI_FAULTS = {
    "HTTP 500": dict(status=500),
    "HTTP 503 with an HTML page": dict(status=503, body="<html><body>Service Unavailable</body></html>"),
    "malformed XML": dict(status=200, body="<Response><JobsDetail><Result>1</Res"),
    "an XML answer of another shape": dict(status=200, body="<Response><Nothing/></Response>"),
    "a body that trickles past the deadline": dict(status=200, body="<Response>" + " " * 50 + "</Response>",
                                                   trickle_s=2.0),
}


@pytest.mark.parametrize("fail_mode, error_code", [("open", 0), ("closed", 1)])
@pytest.mark.parametrize("fault", [*CI_FAULTS, "connection reset"])
def test_every_ci_fault_ends_in_the_fail_policy_a_log_line_and_an_audit_record(
        make_function, fake_ci, resetting_server, sqlite_dsn, capsys, fault, fail_mode, error_code):
    # GIVEN CI failing in this way
    domain = resetting_server if fault == "connection reset" else fake_ci.domain
    if fault != "connection reset":
        fake_ci.fail(**CI_FAULTS[fault])
    handler = make_function(CI_DOMAIN=domain, FAIL_MODE=fail_mode, DEADLINE_MS="800", AUDIT_DSN=sqlite_dsn)

    # WHEN a message arrives
    started = time.monotonic()
    answer = answer_of(handler(trigger_event(load_event("im/c2c_before_image"), im_query(C2C)), scf_context()))

    # THEN the fail policy decides, in time, and both the log and the audit trail say why
    assert answer["ErrorCode"] == error_code
    assert time.monotonic() - started < 2.0
    [line] = [l for l in log_lines(capsys) if l["event"] == "callback.moderated"]
    assert line["degraded"] in ("error", "timeout") and line["fail_mode"] == fail_mode
    [row] = stored(sqlite_dsn)
    assert row["degraded"] == line["degraded"]
    assert row["action"] == ("allow" if fail_mode == "open" else "block")


IM_FAULTS = {
    "HTTP 502": Response("bad gateway", status=502),
    "malformed JSON": Response("{\"ErrorCode\": 0,", status=200, content_type="application/json"),
    "JSON that is not an object": Response("[0]", status=200, content_type="application/json"),
    "a permanent error code": {"ActionStatus": "FAIL", "ErrorCode": 20004, "ErrorInfo": "param error"},
}


@pytest.mark.parametrize("fault", list(IM_FAULTS))
def test_every_im_rest_fault_ends_in_500_a_log_line_and_an_audit_record(
        make_function, review_env, fake_ci, fake_im, sqlite_dsn, capsys, fault):
    # GIVEN a violating sound message, delivered and submitted, and IM's withdrawal failing on every attempt
    sound = load_event("im/c2c_before_sound")
    fake_ci.flag_media(sound["MsgBody"][0]["MsgContent"]["Url"], label="Porn")
    im_callback = make_function("im_callback", **review_env)
    answer_of(im_callback(trigger_event(sound, im_query(C2C)), scf_context()))
    fake_im.deliver_c2c(sound)
    fake_im.script(fake_im.WITHDRAW, *[IM_FAULTS[fault]] * 20)
    audio_result = make_function("audio_result", AUDIT_DSN=sqlite_dsn, **review_env)

    # WHEN CI's verdict arrives, with only a few seconds left in the invocation
    event = trigger_event(fake_ci.detail_callback(job_for(fake_ci, sound["MsgBody"][0]["MsgContent"]["Url"])), {})
    response = audio_result(event, {"request_id": "ci-cb", "time_limit_in_ms": 5000})

    # THEN it answers 500 (CI will call again), logs the failure and records it
    assert response["statusCode"] == 500
    assert any(l["event"] == "review.withdraw_failed" for l in log_lines(capsys))
    [row] = stored(sqlite_dsn)
    assert row["action"] == "withdraw_failed" and row["function"] == "audio_result"
    assert fake_im.withdrawn == []


@pytest.mark.parametrize("oversize_action, error_code", [(None, 1), ("block", 1), ("allow", 0)])
def test_a_scan_cut_short_by_too_many_matches_is_left_to_the_oversize_policy(make_function, tmp_path, capsys,
                                                                             oversize_action, error_code):
    # GIVEN whole-word keywords nested in one another, a text that matches all of them everywhere,
    # and FAIL_MODE open: the sender shaped the text, so the fail policy must not decide
    rules = tmp_path / "nested.yaml"
    rules.write_text("block: [" + ", ".join("a" * n for n in range(1, 60)) + "]\n", encoding="utf-8")
    handler = make_function(ci=False, RULES_PATH=str(rules), FAIL_MODE="open", OVERSIZE_ACTION=oversize_action)

    answer = answer_of(handler(trigger_event(text_message("a" * 10_000 + "b"), im_query(C2C)), scf_context()))

    # THEN unread text is not taken for clean: OVERSIZE_ACTION (block by default) decides, and the log names the cap
    assert answer["ErrorCode"] == error_code
    [line] = [l for l in log_lines(capsys) if l["event"] == "callback.moderated"]
    assert line["degraded"] == "oversize" and "cap: stopped after" in line["reasons"][0]["detail"]
