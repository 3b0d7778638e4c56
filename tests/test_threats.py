"""The threat model, attack by attack (README, "Threat model").

An attacker knows both public URLs and the SdkAppid, may hold one captured
(Sign, RequestTime) pair (IM's Sign covers only the time, not the body), and can
post anything. Each test plays one attack against the functions' main_handler,
with CI and IM faked on the wire, and asserts the safe outcome, next to the
genuine case that must still work.
"""
from __future__ import annotations

import copy
import time

import pytest

from imguard.im.auth import expected_sign
from imguard.review.jobref import JobRef, media_digest
from tests.conftest import (IM_TOKEN, JOB_SIGNING_KEY, answer_of, im_query, load_event, log_lines, scf_context,
                            stored, trigger_event)
from tests.flows import C2C_BEFORE, SOUND_URL, VIDEO_URL, group_video, job_for, post_result, send_c2c, send_group

ATTACKER_SOUND = "https://attacker-1250000000.cos.ap-guangzhou.myqcloud.com/flagged.silk"


def sound_message(url=SOUND_URL, **changes):
    body = copy.deepcopy(load_event("im/c2c_before_sound"))
    body["MsgBody"][0]["MsgContent"]["Url"] = url
    body.update(changes)
    return body


def text_message(text, **changes):
    return dict(load_event("im/c2c_before_text"), MsgBody=[{"MsgType": "TIMTextElem", "MsgContent": {"Text": text}}],
                **changes)


# -- 1. forged callbacks cannot withdraw or overwrite anything ------------------------------------


def test_a_forged_before_send_naming_a_victims_message_withdraws_nothing(im_callback, audio_result, fake_ci,
                                                                         fake_im, sqlite_dsn):
    # GIVEN alice's harmless text to bob, delivered by IM under its MsgKey
    victim = text_message("see you at 8", MsgKey="2001_55_1717000200", MsgSeq=2001, MsgRandom=55, MsgTime=1717000200)
    send_c2c(im_callback, victim, fake_im)
    verdicts = audio_result(AUDIT_DSN=sqlite_dsn)

    # WHEN an attacker replays a captured Sign with a body naming that MsgKey, carrying a sound CI will flag
    fake_ci.flag_media(ATTACKER_SOUND)
    forged = sound_message(ATTACKER_SOUND, From_Account=victim["From_Account"], To_Account=victim["To_Account"],
                           MsgKey=victim["MsgKey"], MsgTime=victim["MsgTime"])
    assert send_c2c(im_callback, forged)["ErrorCode"] == 0  # the Sign is genuine, so it is judged like any message
    response = post_result(verdicts, fake_ci.detail_callback(job_for(fake_ci, ATTACKER_SOUND)))

    # THEN IM's history shows the message carries no such file: nothing is withdrawn, and the trail says why
    assert (response["statusCode"], answer_of(response)["status"]) == (200, "unconfirmed")
    assert fake_im.withdrawn == [] and fake_im.calls_to(fake_im.WITHDRAW) == []
    [row] = stored(sqlite_dsn)
    assert row["action"] == "unconfirmed" and "does not carry the reviewed file" in row["details"]["confirmation"]


def test_a_forged_callback_for_a_message_that_was_never_sent_withdraws_nothing(im_callback, audio_result, fake_ci,
                                                                                fake_im, capsys):
    fake_ci.flag_media(ATTACKER_SOUND)
    send_c2c(im_callback, sound_message(ATTACKER_SOUND, MsgKey="9999_1_1717000300", MsgTime=1717000300))

    response = post_result(audio_result(), fake_ci.detail_callback(job_for(fake_ci, ATTACKER_SOUND)))

    assert answer_of(response)["status"] == "unconfirmed"
    assert fake_im.calls_to(fake_im.WITHDRAW) == []
    [line] = [l for l in log_lines(capsys) if l["event"] == "review.unconfirmed"]
    assert "no message with this MsgKey" in line["confirmation"]


def test_a_forged_callback_naming_another_sender_withdraws_nothing(im_callback, audio_result, fake_ci, fake_im):
    # GIVEN alice's genuine (violating) voice message to bob
    fake_ci.flag_media(SOUND_URL)
    genuine = sound_message(From_Account="alice", To_Account="bob")
    fake_im.deliver_c2c(genuine)
    # WHEN a forged callback claims carol sent it, to get carol's... or anyone's message pulled
    send_c2c(im_callback, sound_message(From_Account="carol", To_Account="bob"))

    response = post_result(audio_result(), fake_ci.detail_callback(job_for(fake_ci, SOUND_URL)))

    assert answer_of(response)["status"] == "unconfirmed"
    assert fake_im.withdrawn == []


def test_a_forged_group_after_send_recalls_nothing_while_the_genuine_one_still_is(im_callback, audio_result,
                                                                                  fake_ci, fake_im):
    # GIVEN a victim's harmless group text at MsgSeq 500, and a genuine violating video at MsgSeq 501
    victim = dict(group_video(500), MsgBody=[{"MsgType": "TIMTextElem", "MsgContent": {"Text": "hello all"}}])
    fake_im.deliver_group(victim)
    genuine_url = VIDEO_URL
    fake_ci.flag_media(genuine_url)
    send_group(im_callback, group_video(501), fake_im)
    genuine_job = job_for(fake_ci, genuine_url)

    # WHEN an attacker posts an after-send callback naming MsgSeq 500 with a video CI will flag
    forged = group_video(500)
    forged["MsgBody"][0]["MsgContent"]["VideoUrl"] = ATTACKER_SOUND.replace(".silk", ".mp4")
    fake_ci.flag_media(forged["MsgBody"][0]["MsgContent"]["VideoUrl"])
    send_group(im_callback, forged)
    forged_result = post_result(audio_result(), fake_ci.detail_callback(job_for(fake_ci, ATTACKER_SOUND.replace(".silk", ".mp4"))))
    genuine_result = post_result(audio_result(), fake_ci.detail_callback(genuine_job))

    # THEN the victim's message stays; the genuine violation is recalled
    assert answer_of(forged_result)["status"] == "unconfirmed"
    assert answer_of(genuine_result)["status"] == "withdrawn"
    assert [w["MsgSeq"] for w in fake_im.withdrawn] == [501]


def test_an_avchatroom_message_that_im_keeps_no_history_for_is_not_recalled(im_callback, audio_result, fake_ci,
                                                                             fake_im, sqlite_dsn):
    fake_ci.flag_media(VIDEO_URL)
    live = group_video(42, GroupId="@TGS#aLIVE")
    fake_im.no_history.add("@TGS#aLIVE")
    send_group(im_callback, live)
    verdicts = audio_result(AUDIT_DSN=sqlite_dsn)

    response = post_result(verdicts, fake_ci.detail_callback(job_for(fake_ci, VIDEO_URL)))

    assert answer_of(response)["status"] == "unconfirmed"
    assert fake_im.calls_to(fake_im.RECALL) == []
    [row] = stored(sqlite_dsn)
    assert row["details"]["im_error_code"] == 10044


def test_a_message_already_recalled_in_im_is_not_recalled_again(im_callback, audio_result, fake_ci, fake_im):
    fake_ci.flag_media(SOUND_URL)
    send_c2c(im_callback, sound_message(), fake_im)
    fake_im.c2c[sound_message()["MsgKey"]]["MsgFlagBits"] = 8  # an admin recalled it meanwhile

    response = post_result(audio_result(), fake_ci.detail_callback(job_for(fake_ci, SOUND_URL)))

    assert answer_of(response)["status"] == "already_withdrawn"
    assert fake_im.calls_to(fake_im.WITHDRAW) == []


def test_confirmation_pages_through_a_busy_conversation(im_callback, audio_result, fake_ci, fake_im):
    # GIVEN 250 messages in the same minute, IM answering 100 a page, newest first
    fake_im.roam_page = 100
    fake_ci.flag_media(SOUND_URL)
    target = sound_message()
    send_c2c(im_callback, target, fake_im)
    for i in range(250):
        fake_im.deliver_c2c(text_message(f"msg {i}", From_Account=target["From_Account"],
                                         To_Account=target["To_Account"], MsgKey=f"{5000 + i}_1_{target['MsgTime'] + 10}",
                                         MsgSeq=5000 + i, MsgRandom=1, MsgTime=target["MsgTime"] + 10))

    response = post_result(audio_result(), fake_ci.detail_callback(job_for(fake_ci, SOUND_URL)))

    assert answer_of(response)["status"] == "withdrawn"
    reads = fake_im.calls_to(fake_im.ROAM)
    assert len(reads) == 3 and reads[1]["LastMsgKey"]


def test_a_stale_sign_is_refused(make_function, fake_ci):
    handler = make_function()
    captured = int(time.time()) - 61  # IM's advice: about a minute

    response = handler(trigger_event(text_message("hi"), im_query(C2C_BEFORE, request_time=captured)), scf_context())

    assert response["statusCode"] == 403
    assert fake_ci.calls == []


@pytest.mark.parametrize("sign", ["\ud800" * 64, "ｆ" * 64, "g" * 64, "0" * 63, "0" * 65, " " + "0" * 63])
def test_malformed_signs_get_403_not_500(make_function, sign):
    handler = make_function(ci=False)
    query = dict(im_query(C2C_BEFORE), Sign=sign)

    response = handler(trigger_event(text_message("hi"), query), scf_context())

    assert response["statusCode"] == 403
    assert answer_of(response)["error"] == "Forbidden"


def test_the_sign_is_case_insensitive_hex(make_function):
    handler = make_function(ci=False)
    query = im_query(C2C_BEFORE)
    query["Sign"] = query["Sign"].upper()

    assert handler(trigger_event(text_message("hi"), query), scf_context())["statusCode"] == 200


def test_ims_documented_sign_example_reproduces():
    # 第三方回调简介 / LiveKit callback page (cloud.tencent.com 269/117703): Token xxxxyyyy, RequestTime 1669872112
    assert expected_sign("xxxxyyyy", "1669872112") == "17773bc39a671d7b9aa835458704d2a6db81360a5940292b587d6d760d484061"


# -- 2. the message's shape never decides whether it is judged ---------------------------------------


def images(count, flagged=None):
    elements = [{"MsgType": "TIMImageElem", "MsgContent": {"ImageFormat": 1, "ImageInfoArray": [
        {"Type": 2, "URL": f"https://img.example.com/{i}.jpg"}]}} for i in range(count)]
    if flagged is not None:
        elements.append({"MsgType": "TIMImageElem", "MsgContent": {"ImageInfoArray": [{"Type": 2, "URL": flagged}]}})
    return elements


@pytest.mark.parametrize("oversize_action, error_code", [(None, 1), ("allow", 0)])
def test_more_images_than_ci_is_asked_about_are_decided_by_oversize_action(make_function, fake_ci, capsys,
                                                                           oversize_action, error_code):
    # GIVEN FAIL_MODE open, and 20 harmless images padding a 21st that CI would flag
    fake_ci.flag_image("https://img.example.com/bad.jpg")
    handler = make_function(FAIL_MODE="open", OVERSIZE_ACTION=oversize_action)

    answer = send_c2c(handler, dict(text_message("x"), MsgBody=images(20, "https://img.example.com/bad.jpg")))

    # THEN OVERSIZE_ACTION decides (block by default), never FAIL_MODE, and the log names the cap
    assert answer["ErrorCode"] == error_code
    [line] = [l for l in log_lines(capsys) if l["event"] == "callback.moderated"]
    assert line["degraded"] == "oversize"
    assert any("cap: more than 20 images" in r.get("detail", "") for r in line["reasons"])


def test_a_merged_forward_of_21_image_messages_is_decided_by_oversize_action(make_function, fake_ci):
    handler = make_function(FAIL_MODE="open")
    relay = {"MsgType": "TIMRelayElem", "MsgContent": {"Title": "chat", "MsgList": [
        {"MsgBody": [element]} for element in images(21)]}}

    assert send_c2c(handler, dict(text_message("x"), MsgBody=[relay]))["ErrorCode"] == 1


def nested_relay(depth, text):
    body = [{"MsgType": "TIMTextElem", "MsgContent": {"Text": text}}]
    for _ in range(depth):
        body = [{"MsgType": "TIMRelayElem", "MsgContent": {"Title": "t", "MsgList": [{"MsgBody": body}]}}]
    return body


@pytest.fixture
def rules_file(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text("block: [赌博]\nreplace: [垃圾]\n", encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("depth", [9, 120])
def test_a_blocked_word_deep_in_merged_forwards_is_found_by_the_local_rules(make_function, rules_file, depth):
    handler = make_function(ci=False, RULES_PATH=rules_file, FAIL_MODE="open")

    answer = send_c2c(handler, dict(text_message("x"), MsgBody=nested_relay(depth, "网上赌博")))

    assert answer["ErrorCode"] == 1


def test_a_text_after_a_thousand_empty_elements_is_judged(make_function, rules_file):
    handler = make_function(ci=False, RULES_PATH=rules_file, FAIL_MODE="open")
    padded = [{}] * 1000 + [{"MsgType": "TIMTextElem", "MsgContent": {"Text": "网上赌博"}}]

    assert send_c2c(handler, dict(text_message("x"), MsgBody=padded))["ErrorCode"] == 1


# -- 3. deep nesting never reaches Python's recursion ----------------------------------------------


def test_a_replace_hit_next_to_a_relay_nested_120_deep_is_rewritten(make_function, rules_file, sqlite_dsn):
    handler = make_function(ci=False, RULES_PATH=rules_file, AUDIT_DSN=sqlite_dsn)
    body = [{"MsgType": "TIMTextElem", "MsgContent": {"Text": "一堆垃圾"}}] + nested_relay(120, "你好")

    answer = send_c2c(handler, dict(text_message("x"), MsgBody=body))

    assert answer["ErrorCode"] == 0
    assert answer["MsgBody"][0]["MsgContent"]["Text"] == "一堆**"
    assert answer["MsgBody"][1] == body[1]  # the relay comes back as it was
    [row] = stored(sqlite_dsn)
    assert row["action"] == "rewrite"


def test_a_body_nested_past_the_json_reader_is_decided_by_oversize_action(make_function, rules_file, sqlite_dsn):
    # GIVEN merged-forwards nested so deep that the JSON reader gives up (about 1,000 levels)
    handler = make_function(ci=False, RULES_PATH=rules_file, AUDIT_DSN=sqlite_dsn, FAIL_MODE="open")

    relay = '{"MsgType":"TIMRelayElem","MsgContent":{"Title":"t","MsgList":[{"MsgBody":['
    body = ('{"From_Account":"u_1001","To_Account":"u_2002","MsgKey":"1_2_3","MsgBody":[' + relay * 400
            + '{"MsgType":"TIMTextElem","MsgContent":{"Text":"hi"}}' + "]}]}}" * 400 + "]}")
    response = handler(trigger_event(body, im_query(C2C_BEFORE)), scf_context())

    # THEN IM gets a well-formed refusal, not a 400 it would deliver past, and the trail has it
    assert response["statusCode"] == 200
    assert answer_of(response)["ErrorCode"] == 1
    [row] = stored(sqlite_dsn)
    assert (row["action"], row["degraded"]) == ("block", "oversize")
    assert row["reasons"][0]["detail"] == "cap: body is nested too deeply to read"


def test_a_fault_inside_moderation_still_answers_by_fail_mode_and_is_recorded(make_function, rules_file,
                                                                              sqlite_dsn, monkeypatch):
    # GIVEN a moderator that breaks (standing in for any bug a body could trigger)
    handler = make_function(ci=False, RULES_PATH=rules_file, AUDIT_DSN=sqlite_dsn, FAIL_MODE="closed")
    app = handler.__globals__["_app"]

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(app.services.moderator, "judge_all", broken)

    response = handler(trigger_event(text_message("hi"), im_query(C2C_BEFORE)), scf_context())

    assert response["statusCode"] == 200
    assert answer_of(response)["ErrorCode"] == 1
    [row] = stored(sqlite_dsn)
    assert (row["action"], row["degraded"]) == ("block", "error")
    assert row["reasons"][0]["detail"] == "RuntimeError"


# -- 4. media floods neither start unbounded work nor delay other messages ----------------------------


def sounds(count):
    return [{"MsgType": "TIMSoundElem", "MsgContent": {"Url": f"https://a.example.com/{i}.silk", "Size": 1,
                                                       "Second": 1}} for i in range(count)]


def test_a_message_with_180_sound_elements_is_oversize_and_submits_nothing(im_callback, fake_ci):
    answer = send_c2c(im_callback, dict(text_message("x"), MsgBody=sounds(180)))

    assert answer["ErrorCode"] == 1
    assert fake_ci.calls_of("audio") == []


def test_submissions_are_capped_and_never_delay_a_flagged_text(make_function, review_env, fake_ci):
    # GIVEN oversize content allowed, and CI slow to take audio jobs
    handler = make_function("im_callback", OVERSIZE_ACTION="allow", DEADLINE_MS="800", **review_env)
    fake_ci.flag_word("buy followers")
    fake_ci.audio_delay_s = 0.5

    # WHEN two messages of 180 sound elements arrive, then a flagged text
    for _ in range(2):
        send_c2c(handler, dict(text_message("x"), MsgBody=sounds(180)))
    started = time.monotonic()
    answer = send_c2c(handler, text_message("buy followers"))

    # THEN the text is judged by CI in time, and each message started at most 10 submissions
    assert answer["ErrorCode"] == 1
    assert time.monotonic() - started < 0.8
    deadline = time.monotonic() + 10
    while len(fake_ci.calls_of("audio")) < 20 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(fake_ci.audio_delay_s + 0.3)  # the last jobs finish: nothing spills into the next test
    assert len(fake_ci.calls_of("audio")) == 20


# -- 6. key rotation keeps withdrawals in flight ---------------------------------------------------


@pytest.mark.parametrize("keep_previous, status", [(True, 200), (False, 401)])
def test_rotating_the_job_signing_key(make_function, review_env, fake_ci, fake_im, keep_previous, status):
    fake_ci.flag_media(SOUND_URL)
    send_c2c(make_function("im_callback", **review_env), sound_message(), fake_im)
    rotated = dict(review_env, JOB_SIGNING_KEY="a-brand-new-signing-key-42",
                   JOB_SIGNING_KEY_PREVIOUS=JOB_SIGNING_KEY if keep_previous else None)

    response = post_result(make_function("audio_result", **rotated), fake_ci.detail_callback(job_for(fake_ci, SOUND_URL)))

    assert response["statusCode"] == status
    assert len(fake_im.withdrawn) == (1 if keep_previous else 0)


# -- 8. only IM's answer for our MsgSeq counts as recalled -------------------------------------------


@pytest.mark.parametrize("recall_answer", [
    {"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": ""},
    {"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": "", "RecallRetList": []},
    {"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": "", "RecallRetList": [{"MsgSeq": 999, "RetCode": 0}]},
    {"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": "", "RecallRetList": [{"MsgSeq": 4711}]},
], ids=["no list", "empty list", "another MsgSeq", "no RetCode"])
def test_a_recall_answer_without_our_retcode_is_a_failure(im_callback, audio_result, fake_ci, fake_im, recall_answer):
    fake_ci.flag_media(VIDEO_URL)
    send_group(im_callback, group_video(4711), fake_im)
    fake_im.script(fake_im.RECALL, *[recall_answer] * 20)

    response = post_result(audio_result(), fake_ci.detail_callback(job_for(fake_ci, VIDEO_URL)), time_limit_ms=5000)

    assert response["statusCode"] == 500  # CI calls again


# -- 9. the job reference and the JobId -----------------------------------------------------------


def signed(**changes):
    ref = JobRef("c2c", "audio", "u_1001", media_digest(SOUND_URL), receiver="u_2002",
                 msg_key="1022_771234_1717000010", issued=int(time.time()))
    return ref.__class__(**{**ref.__dict__, **changes}).sign(JOB_SIGNING_KEY)


def forged_body(data_id, job_id="sa" + "1" * 32):
    return {"EventName": "ReviewAudio", "JobsDetail": {"JobId": job_id, "DataId": data_id, "State": "Success",
                                                         "Result": 1}}


@pytest.mark.parametrize("data_id", [
    pytest.param("v2." + "[" * 100_000 + ".AAAAAAAAAAAAAAAAAAAAAA", id="huge payload"),
    pytest.param(signed()[:-1] + chr(ord(signed()[-1]) + 1), id="mac with a non-canonical last character"),
    pytest.param(signed() + "=", id="padded mac"),
    pytest.param(signed(issued=int(time.time()) - 4 * 86400), id="issued four days ago"),
    pytest.param(signed(issued=int(time.time()) + 3600), id="issued in the future"),
    pytest.param("v1." + signed().split(".", 1)[1], id="the old version"),
])
def test_a_bad_data_id_is_refused_before_anything_is_parsed_or_asked(audio_result, fake_ci, fake_im, data_id):
    started = time.monotonic()
    response = post_result(audio_result(), forged_body(data_id))

    assert response["statusCode"] == 401
    assert time.monotonic() - started < 1.0
    assert fake_ci.calls == [] and fake_im.requests == []


@pytest.mark.parametrize("job_id", ["../../text/auditing/x", "sa1", "sa" + "g" * 32, "sa" + "0" * 32 + "/x"])
def test_a_job_id_not_in_cis_format_never_reaches_ci(audio_result, fake_ci, fake_im, job_id):
    response = post_result(audio_result(), forged_body(signed(), job_id))

    assert response["statusCode"] == 400
    assert fake_ci.calls == [] and fake_im.requests == []


def test_fifty_replays_of_a_genuine_callback_cost_one_query_and_one_withdrawal(im_callback, audio_result, fake_ci,
                                                                                fake_im, capsys):
    fake_ci.flag_media(SOUND_URL)
    send_c2c(im_callback, sound_message(), fake_im)
    body = fake_ci.detail_callback(job_for(fake_ci, SOUND_URL))

    handler = audio_result()  # one warm instance
    answers = [answer_of(post_result(handler, body)) for _ in range(50)]

    assert {a["status"] for a in answers} == {"withdrawn"}
    assert len(fake_ci.calls_of("audio_query")) == 1
    assert len(fake_im.requests) == 2  # one read-back, one withdrawal
    assert sum(1 for l in log_lines(capsys) if l["event"] == "review.replayed") == 49


# -- 10. nothing secret reaches the log -------------------------------------------------------------


def test_an_unreachable_ci_does_not_log_the_image_urls_query_string(make_function, capsys):
    handler = make_function(CI_DOMAIN="127.0.0.1:9", DEADLINE_MS="1500")
    presigned = "https://img.example.com/a.jpg?q-sign-algorithm=sha1&q-signature=SECRETSIGNATURE"
    body = dict(text_message("x"), MsgBody=[{"MsgType": "TIMImageElem", "MsgContent": {"ImageInfoArray": [
        {"Type": 2, "URL": presigned}]}}])

    send_c2c(handler, body)

    out = capsys.readouterr().out
    assert "callback.moderated" in out and "network:" in out
    assert "SECRETSIGNATURE" not in out and "img.example.com" not in out


# -- defence in depth at start-up ----------------------------------------------------------------


@pytest.mark.parametrize("feature", [dict(RESULT_CALLBACK_URL="https://x.example.com/audio_result",
                                          JOB_SIGNING_KEY=JOB_SIGNING_KEY),
                                     dict(PROFILE_REMEDIATE="true", IM_SECRET_KEY="k" * 64)],
                         ids=["withdrawals", "remediation"])
def test_destructive_features_refuse_to_start_without_callback_authentication(make_function, feature):
    from imguard.config import ConfigError

    with pytest.raises(ConfigError) as caught:
        make_function(IM_CALLBACK_TOKEN=None, **feature)
    assert caught.value.variable == "IM_CALLBACK_TOKEN"


def test_the_token_is_the_one_the_tests_sign_with():
    # guards the suite itself: every other test here runs with authentication on
    assert IM_TOKEN and expected_sign(IM_TOKEN, "1") != expected_sign(IM_TOKEN + "x", "1")
