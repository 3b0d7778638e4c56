"""Audio and video: delivered, reviewed by CI asynchronously, withdrawn when CI finds a violation.

The loop runs end to end through both functions' main_handler, CI and IM faked on the wire.
"""
from __future__ import annotations

import time

import pytest

from imguard.review.jobref import JobRef, media_digest
from tests.conftest import JOB_SIGNING_KEY, answer_of, im_query, load_event, log_lines, scf_context, stored, trigger_event
from tests.flows import SOUND_URL, VIDEO_URL, group_video, job_for, post_result, send_c2c, send_group, submissions


def send(handler, event_name, im=None, **body_changes):
    return send_c2c(handler, dict(load_event(event_name), **body_changes), im)


def test_c2c_sound_violation_is_withdrawn_end_to_end(im_callback, audio_result, fake_ci, fake_im):
    # GIVEN CI will find the sound message violating
    fake_ci.flag_media(SOUND_URL, label="Porn")
    result_handler = audio_result()

    # WHEN the sound message is sent: it is allowed at once, handed to CI, and delivered by IM
    assert send(im_callback, "im/c2c_before_sound", fake_im)["ErrorCode"] == 0
    [submit] = submissions(fake_ci, "audio")
    assert submit.fields["Input/Url"] == SOUND_URL
    assert submit.fields["Conf/Callback"] == "https://imguard.example.com/audio_result"
    assert submit.fields["Conf/CallbackVersion"] == "Detail"
    job_id = job_for(fake_ci, SOUND_URL)

    # AND CI posts its Detail callback for that job
    response = post_result(result_handler, fake_ci.detail_callback(job_id))

    # THEN exactly one withdrawal names the original message
    assert response["statusCode"] == 200
    assert answer_of(response)["status"] == "withdrawn"
    assert fake_im.withdrawn == [
        {"kind": "c2c", "From_Account": "u_1001", "To_Account": "u_2002", "MsgKey": "1022_771234_1717000010"}
    ]
    # AND the verdict acted on came from CI's query, not from the posted body
    assert len(fake_ci.calls_of("audio_query")) == 1
    # AND IM's own history was read first, around the message's time, to confirm it
    [read] = fake_im.calls_to(fake_im.ROAM)
    assert (read["Operator_Account"], read["Peer_Account"]) == ("u_1001", "u_2002")
    assert read["MinTime"] <= 1717000010 <= read["MaxTime"]


def test_group_video_is_submitted_after_send_and_recalled_by_msgseq(im_callback, audio_result, fake_ci, fake_im):
    # GIVEN a group video message (before-send has no MsgSeq, so nothing is submitted there)
    fake_ci.flag_media(VIDEO_URL)
    after = group_video(4711)
    before = {k: v for k, v in after.items() if k not in ("MsgSeq", "CallbackCommand")}
    assert answer_of(im_callback(trigger_event(before, im_query("Group.CallbackBeforeSendMsg")), scf_context()))["ErrorCode"] == 0
    assert fake_ci.calls_of("video") == []

    # WHEN IM delivers it and the after-send callback arrives, then CI's verdict
    assert send_group(im_callback, after, fake_im)["ErrorCode"] == 0
    [submit] = submissions(fake_ci, "video")
    assert submit.fields["Conf/DetectContent"] == "1"
    response = post_result(audio_result(), fake_ci.detail_callback(job_for(fake_ci, VIDEO_URL)))

    # THEN the group message is recalled by its MsgSeq, in its topic
    assert answer_of(response)["status"] == "withdrawn"
    assert fake_im.withdrawn == [
        {"kind": "group", "GroupId": "@TGS#2J4SZEAEL", "TopicId": "@TGS#_@TGS#cQVLVHIM62CJ@TOPIC#_TestTopic", "MsgSeq": 4711}
    ]
    [recall_body] = fake_im.calls_to(fake_im.RECALL)
    assert recall_body["MsgSeqList"] == [{"MsgSeq": 4711}]
    # AND the message was read back by its MsgSeq, recalled ones included, in its topic
    [read] = fake_im.calls_to(fake_im.GROUP_HISTORY)
    assert read == {"GroupId": "@TGS#2J4SZEAEL", "ReqMsgSeq": 4711, "ReqMsgNumber": 1, "WithRecalledMsg": 1,
                    "TopicId": after["TopicId"]}


def test_relay_media_is_reviewed_too(im_callback, fake_ci):
    relay = load_event("im/c2c_before_relay")
    relay["MsgBody"][0]["MsgContent"]["MsgList"][0]["MsgBody"] = load_event("im/c2c_before_sound")["MsgBody"]

    assert send(im_callback, "im/c2c_before_relay", MsgBody=relay["MsgBody"])["ErrorCode"] == 0

    assert [c.fields["Input/Url"] for c in submissions(fake_ci, "audio")] == [SOUND_URL]


@pytest.mark.parametrize("file_review, name, expected", [(False, "talk.mp3", []), (True, "talk.mp3", ["audio"]),
                                                         (True, "clip.MP4", ["video"]), (True, "report.pdf", [])])
def test_files_are_reviewed_only_when_enabled_and_reviewable(make_function, review_env, fake_ci, file_review, name, expected):
    handler = make_function("im_callback", FILE_REVIEW=str(file_review).lower(), **review_env)
    body = load_event("im/c2c_before_file")
    body["MsgBody"][0]["MsgContent"]["FileName"] = name

    send(handler, "im/c2c_before_file", MsgBody=body["MsgBody"])
    for kind in expected:
        submissions(fake_ci, kind)

    assert [c.kind for c in fake_ci.calls if c.kind in ("audio", "video")] == expected


def test_a_blocked_message_is_not_submitted(im_callback, fake_ci):
    body = load_event("im/c2c_before_sound")
    body["MsgBody"].append({"MsgType": "TIMTextElem", "MsgContent": {"Text": "buy followers"}})
    fake_ci.flag_word("buy followers")

    assert send(im_callback, "im/c2c_before_sound", MsgBody=body["MsgBody"])["ErrorCode"] == 1
    assert fake_ci.calls_of("audio") == []


def test_a_failed_submission_is_logged_and_never_rejects(im_callback, fake_ci, capsys):
    fake_ci.fail(status=503)

    answer = send(im_callback, "im/c2c_before_sound")

    assert answer["ErrorCode"] == 0
    [line] = [l for l in log_lines(capsys) if l["event"] == "review.submitted"]
    assert "HTTP 503" in line["error"]


def test_a_slow_submission_does_not_delay_the_answer(make_function, review_env, fake_ci):
    fake_ci.fail(status=500, delay_s=1.5)
    handler = make_function("im_callback", DEADLINE_MS="300", **review_env)

    started = time.monotonic()
    assert send(handler, "im/c2c_before_sound")["ErrorCode"] == 0
    assert time.monotonic() - started < 0.3 + 0.4


def test_the_data_id_fits_cis_limit_for_the_longest_ids():
    ref = JobRef("group", "video", "u" * 32, media_digest(VIDEO_URL), group_id="@TGS#" + "G" * 43,
                 msg_seq=2**32 - 1, topic_id="@TGS#_@TGS#" + "T" * 40 + "@TOPIC#_" + "x" * 40, issued=int(time.time()))

    data_id = ref.sign(JOB_SIGNING_KEY)

    assert len(data_id.encode()) <= 512
    assert JobRef.verify(data_id, [JOB_SIGNING_KEY]) == ref


# -- against forgery ------------------------------------------------------------------


def submitted_job(im_callback, fake_ci, fake_im, flag=True):
    """A sound message sent, delivered by IM, and submitted to CI: its JobId."""
    if flag:
        fake_ci.flag_media(SOUND_URL)
    send(im_callback, "im/c2c_before_sound", fake_im)
    return job_for(fake_ci, SOUND_URL)


def forged_ref(**changes):
    ref = JobRef("c2c", "audio", "victim", media_digest(SOUND_URL), receiver="someone", msg_key="1_2_3",
                 issued=int(time.time()))
    return ref.__class__(**{**ref.__dict__, **changes})


@pytest.mark.parametrize(
    "data_id",
    [
        pytest.param(None, id="missing"),
        pytest.param("anything", id="not-ours"),
        pytest.param(forged_ref().sign("some-other-key-0123456789"), id="wrong-key"),
        pytest.param(forged_ref().sign(JOB_SIGNING_KEY)[:-3] + "AAA", id="tampered-mac"),
    ],
)
def test_a_forged_data_id_is_refused_with_401_and_nothing_is_withdrawn(audio_result, fake_ci, fake_im, capsys, data_id):
    body = {"EventName": "ReviewAudio", "JobsDetail": {"JobId": "sa" + "0" * 32, "State": "Success", "Result": 1}}
    if data_id is not None:
        body["JobsDetail"]["DataId"] = data_id

    response = post_result(audio_result(), body)

    assert response["statusCode"] == 401
    assert fake_im.requests == []
    assert any(l["event"] == "review.forged" for l in log_lines(capsys))


def test_a_genuine_data_id_with_a_clean_ci_verdict_withdraws_nothing(im_callback, audio_result, fake_ci, fake_im):
    # GIVEN a real job that CI found clean
    job_id = submitted_job(im_callback, fake_ci, fake_im, flag=False)
    # WHEN an attacker replays its DataId claiming Result 1
    body = fake_ci.detail_callback(job_id, Result=1, Label="Porn")

    response = post_result(audio_result(), body)

    # THEN CI's query says Result 0, and nothing is withdrawn (IM is not even asked)
    assert answer_of(response)["status"] == "passed"
    assert fake_im.requests == []


def test_a_data_id_paired_with_another_jobs_id_is_refused(im_callback, audio_result, fake_ci, fake_im):
    clean_job = submitted_job(im_callback, fake_ci, fake_im, flag=False)
    other = "sa" + "f" * 32
    fake_ci.jobs[other] = dict(fake_ci.jobs[clean_job], JobId=other, DataId="v2.other.job", Result=1)
    body = fake_ci.detail_callback(clean_job, JobId=other, Result=1)

    response = post_result(audio_result(), body)

    assert response["statusCode"] == 401
    assert fake_im.requests == []


def test_a_replayed_callback_on_another_instance_finds_the_message_recalled(im_callback, audio_result, fake_ci,
                                                                           fake_im):
    job_id = submitted_job(im_callback, fake_ci, fake_im)

    first = post_result(audio_result(), fake_ci.detail_callback(job_id))
    second = post_result(audio_result(), fake_ci.detail_callback(job_id))  # a new instance: no memory of the first

    assert (first["statusCode"], second["statusCode"]) == (200, 200)
    assert answer_of(second)["status"] == "already_withdrawn"
    assert len(fake_im.withdrawn) == 1
    assert len(fake_im.calls_to(fake_im.WITHDRAW)) == 1  # IM's history said recalled: no second withdrawal


def test_the_simple_callback_version_is_understood(im_callback, audio_result, fake_ci, fake_im):
    job_id = submitted_job(im_callback, fake_ci, fake_im)

    response = post_result(audio_result(), fake_ci.simple_callback(job_id))

    assert answer_of(response)["status"] == "withdrawn"
    assert len(fake_im.withdrawn) == 1


def test_the_guides_simple_callback_without_data_id_is_refused(audio_result, fake_im):
    response = post_result(audio_result(), load_event("ci/audio_simple_guide"))

    assert response["statusCode"] == 401
    assert fake_im.requests == []


@pytest.mark.parametrize("suspicious_action, status, withdrawals", [("allow", "kept", 0), ("block", "withdrawn", 1)])
def test_suspicious_results_follow_suspicious_action(im_callback, audio_result, fake_ci, fake_im,
                                                     suspicious_action, status, withdrawals):
    fake_ci.flag_media(SOUND_URL, result=2)
    job_id = submitted_job(im_callback, fake_ci, fake_im, flag=False)

    response = post_result(audio_result(SUSPICIOUS_ACTION=suspicious_action), fake_ci.detail_callback(job_id))

    assert answer_of(response)["status"] == status
    assert len(fake_im.withdrawn) == withdrawals


def test_without_query_verification_the_signed_body_is_trusted(im_callback, audio_result, fake_ci, fake_im):
    job_id = submitted_job(im_callback, fake_ci, fake_im)

    response = post_result(audio_result(VERIFY_WITH_QUERY="false"), fake_ci.detail_callback(job_id))

    assert answer_of(response)["status"] == "withdrawn"
    assert fake_ci.calls_of("audio_query") == []


def test_an_unfinished_job_asks_ci_to_call_again(im_callback, audio_result, fake_ci, fake_im):
    job_id = submitted_job(im_callback, fake_ci, fake_im)
    fake_ci.jobs[job_id]["State"] = "Auditing"

    response = post_result(audio_result(), fake_ci.detail_callback(job_id))

    assert response["statusCode"] == 503
    assert fake_im.requests == []


# -- IM's answers ------------------------------------------------------------------------


def withdraw_after(im_callback, audio_result, fake_ci, fake_im, *scripted, command=None):
    job_id = submitted_job(im_callback, fake_ci, fake_im)
    fake_im.script(command or fake_im.WITHDRAW, *scripted)
    return post_result(audio_result(), fake_ci.detail_callback(job_id))


def test_already_withdrawn_counts_as_done(im_callback, audio_result, fake_ci, fake_im):
    response = withdraw_after(im_callback, audio_result, fake_ci, fake_im, {"ActionStatus": "FAIL", "ErrorCode": 20023})

    assert (response["statusCode"], answer_of(response)["status"]) == (200, "already_withdrawn")


def test_not_found_counts_as_done(im_callback, audio_result, fake_ci, fake_im):
    response = withdraw_after(im_callback, audio_result, fake_ci, fake_im, {"ActionStatus": "FAIL", "ErrorCode": 20022})

    assert (response["statusCode"], answer_of(response)["status"]) == (200, "not_found")


def test_internal_error_is_retried_until_it_succeeds(im_callback, audio_result, fake_ci, fake_im):
    response = withdraw_after(im_callback, audio_result, fake_ci, fake_im, {"ActionStatus": "FAIL", "ErrorCode": 91000})

    assert answer_of(response)["status"] == "withdrawn"
    assert len(fake_im.calls_to(fake_im.WITHDRAW)) == 2
    assert len(fake_im.withdrawn) == 1


def test_an_expired_usersig_is_replaced_once(im_callback, audio_result, fake_ci, fake_im):
    response = withdraw_after(im_callback, audio_result, fake_ci, fake_im, {"ActionStatus": "FAIL", "ErrorCode": 70001})

    assert answer_of(response)["status"] == "withdrawn"
    assert len(fake_im.calls_to(fake_im.WITHDRAW)) == 2


def test_a_permanent_im_error_answers_500_so_ci_calls_again(im_callback, audio_result, fake_ci, fake_im, capsys):
    response = withdraw_after(im_callback, audio_result, fake_ci, fake_im, {"ActionStatus": "FAIL", "ErrorCode": 90054})

    assert response["statusCode"] == 500
    assert answer_of(response)["im_error_code"] == 90054
    assert any(l["event"] == "review.withdraw_failed" for l in log_lines(capsys))


def test_group_recall_reads_every_retcode_not_just_the_top_level(make_function, review_env, fake_ci, fake_im):
    # GIVEN a group job, and IM accepting the request but failing our MsgSeq (RetCode 10031)
    fake_ci.flag_media(VIDEO_URL)
    handler = make_function("im_callback", **review_env)
    after = dict(load_event("im/group_after_multi"), MsgBody=load_event("im/c2c_before_video")["MsgBody"])
    send_group(handler, after, fake_im)
    job_id = job_for(fake_ci, VIDEO_URL)
    fake_im.script(fake_im.RECALL, {"ActionStatus": "OK", "ErrorCode": 0, "RecallRetList": [
        {"MsgSeq": 123, "RetCode": 10031}]})

    # WHEN CI's verdict arrives
    response = post_result(make_function("audio_result", **review_env), fake_ci.detail_callback(job_id))

    # THEN the top-level ErrorCode 0 is not taken for success
    assert response["statusCode"] == 500
    assert fake_im.withdrawn == []


def test_group_recall_retries_a_transient_retcode(make_function, review_env, fake_ci, fake_im):
    fake_ci.flag_media(VIDEO_URL)
    handler = make_function("im_callback", **review_env)
    after = dict(load_event("im/group_after_multi"), MsgBody=load_event("im/c2c_before_video")["MsgBody"])
    send_group(handler, after, fake_im)
    fake_im.script(fake_im.RECALL, {"ActionStatus": "OK", "ErrorCode": 0, "RecallRetList": [
        {"MsgSeq": 123, "RetCode": 10002}, {"MsgSeq": 124, "RetCode": 0}]})

    response = post_result(make_function("audio_result", **review_env), fake_ci.detail_callback(job_for(fake_ci, VIDEO_URL)))

    assert answer_of(response)["status"] == "withdrawn"
    assert [w["MsgSeq"] for w in fake_im.withdrawn] == [123]


def test_im_unreachable_answers_503_within_the_time_budget_and_withdraws_nothing(im_callback, audio_result,
                                                                                fake_ci, fake_im, capsys):
    # GIVEN a violating job, and IM's REST API unreachable: the message cannot be read back
    job_id = submitted_job(im_callback, fake_ci, fake_im)
    handler = audio_result(IM_API_BASE="http://127.0.0.1:9")
    event = trigger_event(fake_ci.detail_callback(job_id), {})

    started = time.monotonic()
    response = handler(event, {"request_id": "r", "time_limit_in_ms": 5000})

    # THEN CI is told to call again, in time, and the log says why
    assert response["statusCode"] == 503
    assert time.monotonic() - started < 5.0
    assert fake_im.withdrawn == []
    assert any(l["event"] == "review.confirm_failed" for l in log_lines(capsys))


def test_every_rest_call_carries_a_usersig_im_accepts(im_callback, audio_result, fake_ci, fake_im):
    withdraw_after(im_callback, audio_result, fake_ci, fake_im)

    assert [path for path, _, _ in fake_im.requests] == ["/v4/openim/admin_getroammsg", "/v4/openim/admin_msgwithdraw"]
    for _, query, _ in fake_im.requests:
        assert query["identifier"] == "administrator" and query["contenttype"] == "json"


@pytest.mark.parametrize("body", [{}, {"EventName": "ReviewImage", "JobsDetail": {}}, {"code": 0, "data": "x"}])
def test_bodies_that_are_not_ci_callbacks_get_400(audio_result, body):
    response = post_result(audio_result(), body)

    assert response["statusCode"] == 400


def test_the_async_loop_leaves_a_trail_submission_then_withdrawal(make_function, review_env, fake_ci, fake_im,
                                                                   sqlite_dsn):
    # GIVEN both functions writing to one audit store, and CI finding a group video violating
    fake_ci.flag_media(VIDEO_URL, label="Porn", score=97)
    im_callback = make_function("im_callback", AUDIT_DSN=sqlite_dsn, **review_env)
    audio_result = make_function("audio_result", AUDIT_DSN=sqlite_dsn, **review_env)
    after = group_video(4711)

    # WHEN the video is sent and CI reports back
    send_group(im_callback, after, fake_im)
    post_result(audio_result, fake_ci.detail_callback(job_for(fake_ci, VIDEO_URL)))

    # THEN the trail shows the submission, then the withdrawal with CI's label
    withdrawn, submitted = stored(sqlite_dsn, count=2)
    assert (submitted["action"], submitted["function"], submitted["msg_seq"]) == ("submitted", "im_callback", 4711)
    assert submitted["details"]["review"][0]["kind"] == "video"
    assert (withdrawn["action"], withdrawn["function"], withdrawn["scene"]) == ("withdrawn", "audio_result", "group")
    assert (withdrawn["group_id"], withdrawn["msg_seq"]) == (after["GroupId"], 4711)
    assert withdrawn["reasons"] == [{"source": "ci", "check_name": "video", "outcome": "block", "label": "Porn",
                                     "score": 97}]
