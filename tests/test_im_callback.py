"""im_callback end to end: recorded IM callbacks through index.main_handler, CI faked on the wire."""
from __future__ import annotations

import base64
import json
import time

import pytest

from tests.conftest import answer_of, im_query, load_event, log_lines, scf_context, trigger_event

C2C = "C2C.CallbackBeforeSendMsg"
GROUP = "Group.CallbackBeforeSendMsg"
LARGE_IMAGE = "https://im-media.example.com/IMG_A/720"


def call(handler, body, command=C2C, trigger="apigw", **query):
    return handler(trigger_event(body, im_query(command, **query), trigger), scf_context())


def test_clean_text_is_allowed_after_ci_looks_at_it(make_function, fake_ci):
    handler = make_function(CI_BIZTYPE="biz-im")

    response = call(handler, load_event("im/c2c_before_text"))

    assert response["statusCode"] == 200
    assert answer_of(response) == {"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": ""}
    [text_call] = fake_ci.calls_of("text")
    assert text_call.fields["Input/Content"] == "red packet"
    assert text_call.fields["Conf/BizType"] == "biz-im"


def test_violating_text_is_rejected_and_the_log_says_why_without_the_text(make_function, fake_ci, capsys):
    # GIVEN CI flags "red packet" as an ad
    fake_ci.flag_word("red packet", label="Ads", score=88)
    handler = make_function()

    # WHEN the sample C2C text message arrives
    answer = answer_of(call(handler, load_event("im/c2c_before_text")))

    # THEN it is rejected with ErrorCode 1, and the log line explains it without quoting the message
    assert answer["ErrorCode"] == 1
    [line] = [l for l in log_lines(capsys) if l["event"] == "callback.moderated"]
    assert line["action"] == "block"
    assert line["sender"] == "jared" and line["target"] == "Jonh"
    assert line["reasons"][0]["label"] == "Ads"
    assert line["reasons"][0]["score"] == 88
    assert line["reasons"][0]["keyword_count"] == 1  # the words themselves go to the audit store only
    assert line["text"] == {"len": 10, "sha256": line["text"]["sha256"]}
    assert "red packet" not in json.dumps(line)


@pytest.mark.parametrize(
    "event, expected_texts, expected_images",
    [
        ("im/c2c_before_custom", ['{"businessID":"text_link","text":"click here","link":"https://example.com"}\nnotification\nurl'], []),
        ("im/c2c_before_image", [], ["https://xxx/..._D61040894AC3DE44CDFFFB3EC7EB720F/720"]),
        ("im/guide_c2c_image", [], ["https://cos.ap-shanghai.myqcloud.com/6244-shanghai-007-shared-01-1256635546/2690-1400560394/e078-user1/582eef3bb1e6439cd842ae0bd6a16cae-101935?imageMogr2/"]),
        ("im/c2c_before_video", [], ["https://0345-1400187352-1256635546.cos.ap-shanghai.myqcloud.com/abcd/a6c170c9c599280cb06e0523d7a1f37b"]),
        ("im/c2c_before_sound", [], []),
        ("im/c2c_before_file", ["report.pdf"], []),
        ("im/c2c_before_relay", ["群聊的聊天记录\n该SDK版本不支持合并转发消息，请升级到新版本。\nA:大家觉得这个怎么样？\nB:我觉得挺好的\n"
                                 "大家觉得这个怎么样？\n我觉得挺好的"], []),
        ("im/c2c_before_multi", ['see the photo\nTencent Binhai Tower\nsmile\n{"businessID":"order","note":"call me"}\norder card\next'],
         [LARGE_IMAGE]),
    ],
)
def test_every_element_type_reaches_ci_as_text_or_image(make_function, fake_ci, event, expected_texts, expected_images):
    handler = make_function()

    answer = answer_of(call(handler, load_event(event)))

    assert answer["ErrorCode"] == 0
    assert [c.fields["Input/Content"] for c in fake_ci.calls_of("text")] == expected_texts
    assert sorted(c.query["detect-url"] for c in fake_ci.calls_of("image")) == sorted(expected_images)


def test_an_unknown_element_type_is_skipped_not_an_error(make_function, fake_ci, capsys):
    handler = make_function()

    answer = answer_of(call(handler, load_event("im/c2c_before_multi")))

    assert answer["ErrorCode"] == 0
    [line] = [l for l in log_lines(capsys) if l["event"] == "callback.moderated"]
    assert "TIMFutureElem" in line["types"]
    assert "degraded" not in line


def test_a_flagged_image_blocks_the_whole_message(make_function, fake_ci):
    fake_ci.flag_image(LARGE_IMAGE, label="Porn", score=97, sub_label="SexBehavior")
    handler = make_function()

    answer = answer_of(call(handler, load_event("im/c2c_before_multi")))

    assert answer["ErrorCode"] == 1


def test_a_violation_in_a_forwarded_message_blocks_the_relay(make_function, fake_ci):
    fake_ci.flag_word("挺好", label="Abuse")
    handler = make_function()

    assert answer_of(call(handler, load_event("im/c2c_before_relay")))["ErrorCode"] == 1


@pytest.mark.parametrize("suspicious_action, expected", [("allow", 0), ("block", 1)])
def test_suspicious_follows_the_configured_action(make_function, fake_ci, suspicious_action, expected):
    fake_ci.flag_word("red packet", result=2, label="Ads", score=70)
    handler = make_function(SUSPICIOUS_ACTION=suspicious_action)

    assert answer_of(call(handler, load_event("im/c2c_before_text")))["ErrorCode"] == expected


@pytest.mark.parametrize("event, command", [("im/c2c_before_text", C2C), ("im/group_before_text_topic", GROUP)])
def test_silent_drop_answers_error_code_2(make_function, fake_ci, event, command):
    fake_ci.flag_word("red packet")
    handler = make_function(BLOCK_ACTION="silent", REJECT_ERROR_CODE="120100")

    answer = answer_of(call(handler, load_event(event), command))

    assert answer == {"ActionStatus": "OK", "ErrorCode": 2, "ErrorInfo": ""}


@pytest.mark.parametrize(
    "event, command, code",
    [("im/c2c_before_text", C2C, 120100), ("im/group_before_text_topic", GROUP, 10150)],
)
def test_custom_rejection_carries_the_scene_code_and_reason(make_function, fake_ci, event, command, code):
    fake_ci.flag_word("red packet")
    handler = make_function(
        REJECT_ERROR_CODE="120100", GROUP_REJECT_ERROR_CODE="10150", REJECT_ERROR_INFO="请文明发言"
    )

    answer = answer_of(call(handler, load_event(event), command))

    assert answer == {"ActionStatus": "OK", "ErrorCode": code, "ErrorInfo": "请文明发言"}


def test_group_message_without_msgseq_is_moderated(make_function, fake_ci):
    fake_ci.flag_image("https://im-media.example.com/IMG_G/720")
    handler = make_function()

    answer = answer_of(call(handler, load_event("im/group_before_image"), GROUP))

    assert answer["ErrorCode"] == 1
    # (the text check may be cancelled before it is sent: the image already decided)
    assert [c.query["detect-url"] for c in fake_ci.calls_of("image")] == ["https://im-media.example.com/IMG_G/720"]


def test_whitelisted_sender_skips_moderation(make_function, fake_ci, capsys):
    fake_ci.flag_word("red packet")
    handler = make_function(WHITELIST_USERS="ops, jared")

    answer = answer_of(call(handler, load_event("im/c2c_before_text")))

    assert answer["ErrorCode"] == 0
    assert fake_ci.calls == []
    [line] = [l for l in log_lines(capsys) if l["event"] == "callback.moderated"]
    assert line["whitelisted"] is True


def test_function_url_events_are_served_like_api_gateway_ones(make_function, fake_ci):
    fake_ci.flag_word("red packet")
    handler = make_function()

    answer = answer_of(call(handler, load_event("im/c2c_before_text"), trigger="function_url"))

    assert answer["ErrorCode"] == 1


def test_base64_encoded_bodies_are_decoded(make_function, fake_ci):
    fake_ci.flag_word("red packet")
    handler = make_function()
    event = trigger_event("", im_query(C2C))
    event["body"] = base64.b64encode(json.dumps(load_event("im/c2c_before_text")).encode()).decode()
    event["isBase64Encoded"] = True

    assert answer_of(handler(event, scf_context()))["ErrorCode"] == 1


def test_other_commands_are_acknowledged(make_function, fake_ci):
    handler = make_function()

    response = call(handler, load_event("im/profile_portrait_set"), "Some.FutureCallback")

    assert response["statusCode"] == 200
    assert answer_of(response) == {"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": ""}
    assert fake_ci.calls == []


# -- authentication ---------------------------------------------------------------


def test_wrong_sdkappid_is_refused_before_any_moderation(make_function, fake_ci):
    handler = make_function()

    response = call(handler, load_event("im/c2c_before_text"), SdkAppid="1400999999")

    assert response["statusCode"] == 403
    assert answer_of(response)["error"] == "Forbidden"
    assert fake_ci.calls == []


def test_sdkappid_query_name_is_case_insensitive(make_function, fake_ci):
    handler = make_function()
    query = im_query(C2C)
    query["SdkAppId"] = query.pop("SdkAppid")

    response = handler(trigger_event(load_event("im/c2c_before_text"), query), scf_context())

    assert response["statusCode"] == 200


def test_valid_sign_is_accepted_in_either_case(make_function, fake_ci):
    handler = make_function(IM_CALLBACK_TOKEN="xxxyyy")
    query = im_query(C2C, token="xxxyyy")
    query["Sign"] = query["Sign"].upper()

    response = handler(trigger_event(load_event("im/c2c_before_text"), query), scf_context())

    assert response["statusCode"] == 200


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda q: q.update(Sign="0" * 64), id="bad-sign"),
        pytest.param(lambda q: q.pop("Sign"), id="missing-sign"),
        pytest.param(lambda q: q.pop("RequestTime"), id="missing-time"),
    ],
)
def test_bad_or_missing_sign_is_refused(make_function, fake_ci, tamper):
    handler = make_function(IM_CALLBACK_TOKEN="xxxyyy")
    query = im_query(C2C, token="xxxyyy")
    tamper(query)

    response = handler(trigger_event(load_event("im/c2c_before_text"), query), scf_context())

    assert response["statusCode"] == 403
    assert fake_ci.calls == []


def test_stale_request_time_is_refused_even_with_a_correct_sign(make_function, fake_ci):
    handler = make_function(IM_CALLBACK_TOKEN="xxxyyy", CALLBACK_MAX_SKEW_S="300")
    stale = int(time.time()) - 301

    response = call(handler, load_event("im/c2c_before_text"), token="xxxyyy", request_time=stale)

    assert response["statusCode"] == 403
    assert "RequestTime" in answer_of(response)["message"]


# -- bad input ----------------------------------------------------------------------


@pytest.mark.parametrize("body", ["{not json", "", "[1, 2]", "\"text\""])
def test_malformed_body_gets_400_with_a_reason(make_function, fake_ci, body):
    handler = make_function()

    response = call(handler, body)

    assert response["statusCode"] == 400
    assert answer_of(response)["error"] == "BadRequest"


def test_wrongly_typed_fields_do_not_crash(make_function, fake_ci):
    handler = make_function()
    body = {"From_Account": 12, "MsgBody": [None, 3, {"MsgType": "TIMTextElem", "MsgContent": {"Text": 5}},
                                             {"MsgType": "TIMImageElem", "MsgContent": {"ImageInfoArray": "x"}}]}

    response = call(handler, body)

    assert response["statusCode"] == 200
    assert answer_of(response)["ErrorCode"] == 0


# -- CI failures and the deadline ------------------------------------------------------


@pytest.mark.parametrize(
    "status, body",
    [
        pytest.param(500, None, id="ci-5xx"),
        pytest.param(403, "<Error><Code>AccessDenied</Code><Message>no</Message></Error>", id="ci-4xx"),
        pytest.param(200, "this is not xml", id="ci-not-xml"),
    ],
)
@pytest.mark.parametrize("fail_mode, expected", [("open", 0), ("closed", 1)])
def test_ci_failure_follows_fail_mode_and_is_logged(make_function, fake_ci, capsys, status, body, fail_mode, expected):
    fake_ci.fail(status=status, body=body)
    handler = make_function(FAIL_MODE=fail_mode)

    answer = answer_of(call(handler, load_event("im/c2c_before_text")))

    assert answer["ErrorCode"] == expected
    [line] = [l for l in log_lines(capsys) if l["event"] == "callback.moderated"]
    assert line["degraded"] == "error"
    assert line["fail_mode"] == fail_mode
    assert line["reasons"][0]["outcome"] == "error"


def test_ci_error_code_is_read_from_the_xml_body(make_function, fake_ci, capsys):
    fake_ci.fail(status=400, body="<Error><Code>InvalidArgument</Code><Message>bad BizType</Message></Error>")
    handler = make_function()

    call(handler, load_event("im/c2c_before_text"))

    [line] = [l for l in log_lines(capsys) if l["event"] == "callback.moderated"]
    assert "InvalidArgument" in line["reasons"][0]["detail"]


def test_ci_unreachable_follows_fail_mode(make_function, fake_ci):
    handler = make_function(CI_DOMAIN="127.0.0.1:9", FAIL_MODE="closed")

    assert answer_of(call(handler, load_event("im/c2c_before_text")))["ErrorCode"] == 1


@pytest.mark.parametrize("fail_mode, expected", [("open", 0), ("closed", 1)])
def test_slow_ci_is_abandoned_at_the_deadline(make_function, fake_ci, capsys, fail_mode, expected):
    # GIVEN a CI that takes 2 s and a 300 ms deadline
    fake_ci.text_delay_s = 2.0
    handler = make_function(DEADLINE_MS="300", FAIL_MODE=fail_mode)

    # WHEN a message arrives
    started = time.monotonic()
    answer = answer_of(call(handler, load_event("im/c2c_before_text")))
    elapsed = time.monotonic() - started

    # THEN the answer leaves at the deadline (generous margin), following FAIL_MODE
    assert elapsed < 0.3 + 0.4
    assert answer["ErrorCode"] == expected
    [line] = [l for l in log_lines(capsys) if l["event"] == "callback.moderated"]
    assert line["degraded"] == "timeout"


def test_a_block_does_not_wait_for_slower_checks(make_function, fake_ci):
    fake_ci.flag_word("see the photo")
    fake_ci.slow_image(LARGE_IMAGE, 1.5)
    handler = make_function(DEADLINE_MS="1800")

    started = time.monotonic()
    answer = answer_of(call(handler, load_event("im/c2c_before_multi")))

    assert answer["ErrorCode"] == 1
    assert time.monotonic() - started < 1.0


def test_images_of_one_message_are_checked_concurrently(make_function, fake_ci):
    # GIVEN five images that each take CI 300 ms
    event = load_event("im/c2c_before_five_images")
    for i in range(5):
        fake_ci.slow_image(f"https://im-media.example.com/IMG_{i}/720", 0.3)
    handler = make_function(DEADLINE_MS="1900")

    # WHEN the message is judged
    started = time.monotonic()
    answer = answer_of(call(handler, event))
    elapsed = time.monotonic() - started

    # THEN all five were checked, in far less than 5 x 300 ms
    assert answer["ErrorCode"] == 0
    assert len(fake_ci.calls_of("image")) == 5
    assert elapsed < 1.0


def test_text_over_ci_limit_is_split_into_several_checks(make_function, fake_ci):
    handler = make_function()
    body = load_event("im/c2c_before_text")
    body["MsgBody"][0]["MsgContent"]["Text"] = "字" * 10_000 + "red packet"

    # Both parts are asked (and waited for: nothing blocks, so no early exit cuts the wait short) ...
    assert answer_of(call(handler, body))["ErrorCode"] == 0
    assert sorted(len(c.fields["Input/Content"]) for c in fake_ci.calls_of("text")) == [10, 10_000]

    # ... and a violation in the second part blocks the whole message.
    fake_ci.flag_word("red packet")
    assert answer_of(call(handler, body))["ErrorCode"] == 1


def test_without_a_bucket_the_service_runs_and_allows(make_function, fake_ci):
    handler = make_function(ci=False)

    answer = answer_of(call(handler, load_event("im/c2c_before_image")))

    assert answer["ErrorCode"] == 0
    assert fake_ci.calls == []
