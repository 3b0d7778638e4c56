"""CI answers as CI's documents and SDKs show them, not as the fake likes to write them (issue #13).

Every recorded answer in tests/events/ci/ is served byte for byte by the fake CI and read through the real
cos-python-sdk-v5 client (its signing, its transport), then judged; the callbacks go through audio_result's
main_handler. What each must conclude is written out: outcome, label, sub-label, score, keywords.
"""
from __future__ import annotations

import json
import re
from xml.sax.saxutils import escape
from typing import Any, Dict, Optional, Tuple

import pytest

from imguard.config import CosSettings
from imguard.moderation.ci import CiClient, CiError
from imguard.moderation.verdict import Outcome
from imguard.review.ci_callback import CiCallback
from tests.conftest import (ROOT, answer_of, im_query, load_event, log_lines, scf_context, stored, trigger_event,
                            wait_for_log)
from tests.flows import SOUND_URL, job_for, post_result, send_c2c


CI_EVENTS = ROOT / "tests" / "events" / "ci"


def recorded(name: str) -> bytes:
    """A recorded CI answer or callback from tests/events/ci/, as bytes (``recorded("image_doc_full.xml")``)."""
    return (CI_EVENTS / name).read_bytes()


def with_job_ids(answer: bytes, job_id: str, data_id: str) -> bytes:
    """A recorded job answer with only its JobId and DataId made those of a job the test submitted (the
    documents' samples name none of ours, and audio_result refuses a DataId it did not sign); every
    other byte stays as recorded. A DataId element is added after <JobsDetail> when the sample has none."""
    text = answer.decode("utf-8")
    text, n = re.subn(r"<JobId>[^<]*</JobId>", f"<JobId>{escape(job_id)}</JobId>", text, count=1)
    assert n == 1, "the recorded answer has no JobId element"
    text, n = re.subn(r"<DataId>[^<]*</DataId>|<DataId/>", f"<DataId>{escape(data_id)}</DataId>", text, count=1)
    if n == 0:
        text = text.replace("<JobsDetail>", f"<JobsDetail><DataId>{escape(data_id)}</DataId>", 1)
    return text.encode("utf-8")

C2C = "C2C.CallbackBeforeSendMsg"
AUDIO_JOB = "aab1ca9fc8a3ed11ea834c525400863904"  # the JobId of the audio query doc sample


@pytest.fixture
def ci(fake_ci) -> CiClient:
    """The client im_callback and audio_result use, pointed at the fake as they are (CI_DOMAIN, http)."""
    return CiClient(CosSettings(bucket="imguard-1250000000", region="ap-guangzhou", secret_id=fake_ci.secret_id,
                                secret_key="test-secret", domain=fake_ci.domain, scheme="http"), timeout_s=5.0)


def verdict_fields(verdict) -> Tuple[Outcome, str, str, Optional[int], Tuple[str, ...]]:
    return verdict.outcome, verdict.label, verdict.sub_label, verdict.score, verdict.keywords


# -- images -------------------------------------------------------------------------------------


@pytest.mark.parametrize("fixture, expected", [
    pytest.param("image_doc_example.xml", (Outcome.BLOCK, "Porn", "SexBehavior", 95, ()), id="doc-example"),
    # The top-level Score (90) is CI's summary; the scene's 100 is one scene's.
    pytest.param("image_doc_full.xml", (Outcome.BLOCK, "Porn", "SexBehavior", 90, ()), id="doc-full-empty-ocr"),
    pytest.param("image_gosdk_test.xml", (Outcome.BLOCK, "Porn", "SexBehavior", 90, ()), id="go-sdk-test"),
    # Empty <PornInfo></PornInfo>, <TerrorismInfo>, <AdsInfo>: the hit is in PoliticsInfo, keywords in its OCR.
    pytest.param("image_gosdk_jobdetail_rerooted.xml",
                 (Outcome.BLOCK, "Politics", "PolityOCR", 99, ("xxx", "yyy", "zzz")), id="empty-scene-nodes"),
    # The older shape: no top-level Result, Label or Score; every scene says HitFlag 0.
    pytest.param("image_php_guide_old_reconstructed.xml", (Outcome.PASS, "", "", None, ()), id="no-top-level-result"),
])
def test_every_documented_image_answer_is_read(ci, fake_ci, fixture, expected):
    fake_ci.serve("image", recorded(fixture))

    verdict = ci.check_image("https://im-media.example.com/IMG_A/720", "image[0]")

    assert verdict_fields(verdict) == expected
    assert verdict.detail == ""
    [call] = fake_ci.calls_of("image")  # the SDK's request, signed, on the COS host's path
    assert call.query == {"ci-process": "sensitive-content-recognition",
                          "detect-url": "https://im-media.example.com/IMG_A/720"}


def test_the_sdk_itself_cannot_read_an_answer_with_empty_scene_nodes(fake_ci):
    """Why ci.py reads the raw body: the SDK's own post-processing of this documented answer crashes."""
    from qcloud_cos import CosConfig, CosS3Client

    fake_ci.serve("image", recorded("image_gosdk_jobdetail_rerooted.xml"))
    client = CosS3Client(CosConfig(SecretId=fake_ci.secret_id, SecretKey="test-secret", Scheme="http",
                                   Domain=fake_ci.domain), retry=0)

    with pytest.raises(TypeError):  # 'OcrResults' in None
        client.get_object_sensitive_content_recognition(Bucket="imguard-1250000000", DetectUrl="https://x/a.jpg")


def test_an_old_shape_answer_with_a_hit_blocks_with_that_scenes_label_and_score(ci, fake_ci):
    # GIVEN the older shape (no top-level Result), its PornInfo now a hit
    old = recorded("image_php_guide_old_reconstructed.xml").decode()
    hit = old.replace("<PornInfo><Code>0</Code><Msg>OK</Msg><HitFlag>0</HitFlag><Score>0</Score>",
                      "<PornInfo><Code>0</Code><Msg>OK</Msg><HitFlag>1</HitFlag><Score>93</Score>")
    assert hit != old
    fake_ci.serve("image", hit)

    # THEN it blocks, named after the scene that hit, with that scene's score (not "unexpected Result None")
    assert verdict_fields(ci.check_image("https://x/a.jpg")) == (Outcome.BLOCK, "Porn", "", 93, ())


def test_an_async_image_answer_without_a_verdict_is_an_error_not_a_pass(ci, fake_ci):
    fake_ci.serve("image", recorded("image_doc_jobid_only.xml"))

    verdict = ci.check_image("https://x/a.jpg")

    assert verdict.outcome is Outcome.ERROR
    assert "no Result" in verdict.detail


# -- text ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("fixture, expected", [
    pytest.param("text_doc_sync_example.xml", (Outcome.SUSPICIOUS, "Illegal", "", None, ()), id="doc-sync-example"),
    pytest.param("text_doc_template.xml", (Outcome.BLOCK, "", "", None, ()), id="doc-template-empty-values"),
    # No top-level Label or Score: the hit, its score and keyword are in the section.
    pytest.param("text_php_guide_reconstructed.xml", (Outcome.BLOCK, "Porn", "", 97, ("敏感词",)), id="guide"),
])
def test_every_documented_text_answer_is_read(ci, fake_ci, fixture, expected):
    fake_ci.serve("text", recorded(fixture))

    verdict = ci.check_text("你好 加我微信", "text")

    assert verdict_fields(verdict) == expected
    [call] = fake_ci.calls_of("text")  # the request ci_auditing_text_submit would send
    assert (call.method, call.path, call.fields["Input/Content"]) == ("POST", "/text/auditing", "你好 加我微信")


def test_a_text_request_carries_the_biztype(fake_ci):
    client = CiClient(CosSettings(bucket="imguard-1250000000", secret_id=fake_ci.secret_id, secret_key="test-secret",
                                  domain=fake_ci.domain, scheme="http", biz_type="b81d45f94b91a683255e9a9506f45a11"),
                      timeout_s=5.0)

    client.check_text("hello")

    [call] = fake_ci.calls_of("text")
    assert call.fields["Conf/BizType"] == "b81d45f94b91a683255e9a9506f45a11"


# -- what is refused ----------------------------------------------------------------------------


@pytest.mark.parametrize("body, detail", [
    pytest.param('<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]>'
                 "<RecognitionResult><Result>0</Result><Label>&b;</Label></RecognitionResult>",
                 "document type declarations are refused", id="entities"),
    pytest.param("<RecognitionResult><Result>0</Result>".encode("utf-16"), "not UTF-8", id="utf-16"),
    pytest.param("<RecognitionResult><Result>7</Result></RecognitionResult>", "unexpected Result '7'", id="result-7"),
    pytest.param("<Response><Nothing/></Response>", "no Result and no scene results", id="another-shape"),
    pytest.param("<RecognitionResult><PornInfo><Code>-1</Code><Msg>download failed</Msg></PornInfo>"
                 "</RecognitionResult>", "CI scene failed: Porn code -1", id="scene-error"),
])
def test_answers_that_cannot_be_read_are_errors_for_the_fail_policy(ci, fake_ci, body, detail):
    fake_ci.serve("image", body)

    verdict = ci.check_image("https://x/a.jpg")

    assert verdict.outcome is Outcome.ERROR
    assert detail in verdict.detail


def test_a_text_job_that_failed_is_an_error(ci, fake_ci):
    fake_ci.serve("text", "<Response><JobsDetail><Code>InvalidArgument</Code><Message>too long</Message>"
                          "<State>Failed</State></JobsDetail></Response>")

    verdict = ci.check_text("x")

    assert (verdict.outcome, verdict.detail) == (Outcome.ERROR, "CI job failed: InvalidArgument (too long)")


def test_documented_answers_decide_real_callbacks(make_function, fake_ci, capsys):
    # GIVEN CI answering an image check with the answer the SDK crashes on
    fake_ci.serve("image", recorded("image_gosdk_jobdetail_rerooted.xml"))
    handler = make_function("im_callback")

    # WHEN IM asks about an image message
    answer = answer_of(handler(trigger_event(load_event("im/c2c_before_image"), im_query(C2C)), scf_context()))

    # THEN it is blocked on CI's verdict (not on the fail policy), and the log says why
    assert answer["ErrorCode"] == 1
    [line] = [l for l in log_lines(capsys) if l["event"] == "callback.moderated"]
    assert "degraded" not in line or line["degraded"] is None
    [reason] = [r for r in line["reasons"] if r["source"] == "ci"]
    assert (reason["label"], reason["sub_label"], reason["score"], reason["keyword_count"]) == ("Politics", "PolityOCR",
                                                                                              99, 3)


# -- audio and video job queries ----------------------------------------------------------------


@pytest.mark.parametrize("kind, fixture, expected", [
    # Result 1 with no top-level Label or Score: PornInfo and the section carry them, the keywords are the section's.
    pytest.param("audio", "audio_query_doc_example.xml", ("Success", Outcome.BLOCK, "Porn", "", 91, ("xx", "wc")),
                 id="audio-example"),
    pytest.param("audio", "audio_query_doc_template.xml", ("", None, "", "", None, ()), id="audio-template"),
    pytest.param("video", "video_query_doc_example.xml", ("Success", Outcome.PASS, "Normal", "", None, ()),
                 id="video-example"),
    pytest.param("video", "video_query_doc_template.xml", ("", None, "", "", None, ()), id="video-template"),
    pytest.param("audio", "audio_query_failed.xml", ("Failed", None, "", "", None, ()), id="audio-failed"),
])
def test_every_documented_job_answer_is_read(ci, fake_ci, kind, fixture, expected):
    fake_ci.serve(f"{kind}_query", recorded(fixture))

    job = ci.query_media(kind, AUDIO_JOB)

    assert (job.state, job.outcome, job.label, job.sub_label, job.score, job.keywords) == expected
    assert job.failed is (job.state == "Failed")
    [call] = fake_ci.calls_of(f"{kind}_query")
    assert (call.method, call.path) == ("GET", f"/{kind}/auditing/{AUDIO_JOB}")


def test_a_failed_job_says_why(ci, fake_ci):
    fake_ci.serve("audio_query", recorded("audio_query_failed.xml"))

    job = ci.query_media("audio", AUDIO_JOB)

    assert job.failed and not job.finished
    assert job.detail == "CI job failed: InternalError (Internal error)"


def test_a_job_answer_that_is_not_xml_is_a_ci_error(ci, fake_ci):
    fake_ci.serve("audio_query", "<Response><JobsDetail><Result>1</Res")

    with pytest.raises(CiError, match="malformed response: not XML"):
        ci.query_media("audio", AUDIO_JOB)


# -- callbacks: the bodies themselves ------------------------------------------------------------


def callback(name: str) -> Dict[str, Any]:
    return json.loads(recorded(name))


@pytest.mark.parametrize("fixture, expected", [
    pytest.param("cb_audio_detail_example.json", ("Detail", "audio", "Success", Outcome.PASS, "", None, ()),
                 id="audio-detail-example"),
    pytest.param("cb_audio_detail_template.json", ("Detail", "audio", "Success", Outcome.PASS, "Normal", None, ()),
                 id="audio-detail-template"),
    pytest.param("cb_audio_detail_from_query_example.json",
                 ("Detail", "audio", "Success", Outcome.BLOCK, "Porn", 91, ("xx", "wc")), id="audio-detail-hit"),
    pytest.param("cb_audio_detail_failed.json", ("Detail", "audio", "Failed", None, "", None, ()),
                 id="audio-detail-failed"),
    pytest.param("cb_video_detail_example.json", ("Detail", "video", "Success", Outcome.PASS, "Normal", None, ()),
                 id="video-detail-example"),
    pytest.param("cb_video_detail_template.json", ("Detail", "video", "Success", Outcome.PASS, "Normal", None, ()),
                 id="video-detail-template"),
    pytest.param("cb_audio_simple_example.json", ("Simple", "audio", "Success", Outcome.PASS, "", None, ()),
                 id="audio-simple-example"),
    pytest.param("cb_video_simple_example.json", ("Simple", "video", "Success", Outcome.PASS, "", None, ()),
                 id="video-simple-example"),
    pytest.param("audio_simple_guide.json", ("Simple", "audio", "Success", Outcome.PASS, "", None, ()),
                 id="guide-simple"),
])
def test_every_documented_callback_body_is_read(fixture, expected):
    parsed = CiCallback.from_body(callback(fixture))

    job = parsed.job
    assert (parsed.version, parsed.kind, job.state, job.outcome, job.label, job.score, job.keywords) == expected
    assert not parsed.test


def test_the_reasons_in_sections_alone_are_found():
    # GIVEN the violating audio callback with its top-level scene nodes saying nothing
    body = callback("cb_audio_detail_from_query_example.json")
    body["JobsDetail"]["PornInfo"] = {"HitFlag": 0, "Score": 0, "Label": ""}

    job = CiCallback.from_body(body).job

    # THEN the section's hit gives the label, the score and the keywords
    assert (job.outcome, job.label, job.score, job.keywords) == (Outcome.BLOCK, "Porn", 91, ("xx", "wc"))


@pytest.mark.parametrize("fixture", ["cb_audio_simple_test.json", "cb_video_simple_test.json"])
def test_the_documented_test_pings_are_recognised(fixture):
    assert CiCallback.from_body(callback(fixture)).test


# -- callbacks through audio_result -----------------------------------------------------------------


def sent_sound(im_callback, fake_ci, fake_im) -> Tuple[str, str]:
    """A sound message sent, delivered by IM and submitted to CI: (JobId, DataId) of its review job."""
    send_c2c(im_callback, load_event("im/c2c_before_sound"), fake_im)
    job_id = job_for(fake_ci, SOUND_URL)
    return job_id, fake_ci.jobs[job_id]["DataId"]


def recorded_callback(name: str, job_id: str, data_id: str) -> Dict[str, Any]:
    """A recorded Detail callback naming our job (the documents' samples name none of ours)."""
    body = callback(name)
    body["JobsDetail"].update(JobId=job_id, DataId=data_id)
    return body


@pytest.mark.parametrize("fixture", ["cb_audio_simple_test.json", "cb_video_simple_test.json"])
def test_cis_console_test_ping_gets_200_and_nothing_else_happens(audio_result, fake_ci, fake_im, capsys, fixture):
    response = post_result(audio_result(), callback(fixture))

    assert response["statusCode"] == 200
    assert answer_of(response)["status"] == "test"
    assert fake_ci.calls == [] and fake_im.requests == []  # no CI query, no IM call
    assert [l["event"] for l in log_lines(capsys) if l["event"].startswith("review.")] == ["review.test_callback"]


def test_a_ping_shaped_body_naming_a_data_id_is_no_ping(audio_result, fake_im):
    body = callback("cb_audio_simple_test.json")
    body["data"].update(event="ReviewAudio", data_id="forged")

    response = post_result(audio_result(), body)

    assert response["statusCode"] == 401
    assert fake_im.requests == []


@pytest.mark.parametrize("fixture", ["cb_audio_simple_example.json", "cb_video_simple_example.json"])
def test_documented_simple_callbacks_without_a_data_id_are_refused(audio_result, fake_im, fixture):
    response = post_result(audio_result(), callback(fixture))

    assert response["statusCode"] == 401
    assert fake_im.requests == []


@pytest.mark.parametrize("fail_mode", ["open", "closed"])
def test_a_failed_job_is_terminal_recorded_and_never_withdraws(im_callback, audio_result, fake_ci, fake_im, sqlite_dsn,
                                                               capsys, fail_mode):
    # GIVEN a sound message under review, and CI reporting the job Failed (the callback, and its answer when asked)
    job_id, data_id = sent_sound(im_callback, fake_ci, fake_im)
    fake_ci.serve("audio_query", with_job_ids(recorded("audio_query_failed.xml"), job_id, data_id))
    handler = audio_result(FAIL_MODE=fail_mode, AUDIT_DSN=sqlite_dsn)
    body = recorded_callback("cb_audio_detail_failed.json", job_id, data_id)
    wait_for_log(capsys, "review.submitted")  # im_callback's lines, the last written after its answer

    # WHEN the callback arrives, and again (CI's retry, or a replay)
    first = post_result(handler, body)
    second = post_result(handler, body)

    # THEN CI is told 200 both times, so it stops calling; the second answer comes from memory
    assert (first["statusCode"], second["statusCode"]) == (200, 200)
    assert answer_of(first) == answer_of(second) == {"status": "review_failed", "job_id": job_id}
    assert len(fake_ci.calls_of("audio_query")) == 1
    # AND nothing is withdrawn whatever FAIL_MODE says; IM is not even asked
    assert fake_im.withdrawn == [] and fake_im.requests == []
    # AND the log and the audit trail say review_failed, with CI's reason
    events = [l["event"] for l in log_lines(capsys) if l["event"].startswith("review.")]
    assert events == ["review.failed", "review.replayed"]
    [row] = stored(sqlite_dsn)
    assert (row["action"], row["function"], row["scene"], row["sender"]) == ("review_failed", "audio_result", "c2c",
                                                                             "u_1001")
    assert row["reasons"] == [{"source": "ci", "check_name": "audio", "outcome": "error",
                               "detail": "CI job failed: InternalError (Internal error)"}]
    assert row["details"]["state"] == "Failed"


def test_a_failed_callback_trusted_without_a_query_is_terminal_too(im_callback, audio_result, fake_ci, fake_im):
    job_id, data_id = sent_sound(im_callback, fake_ci, fake_im)

    response = post_result(audio_result(VERIFY_WITH_QUERY="false"),
                           recorded_callback("cb_audio_detail_failed.json", job_id, data_id))

    assert (response["statusCode"], answer_of(response)["status"]) == (200, "review_failed")
    assert fake_ci.calls_of("audio_query") == [] and fake_im.withdrawn == []


def test_a_failed_job_posted_early_still_follows_cis_answer(im_callback, audio_result, fake_ci, fake_im):
    # GIVEN a callback claiming Failed for a job CI says it finished, with a violation
    job_id, data_id = sent_sound(im_callback, fake_ci, fake_im)
    fake_ci.serve("audio_query", with_job_ids(recorded("audio_query_doc_example.xml"), job_id, data_id))

    response = post_result(audio_result(), recorded_callback("cb_audio_detail_failed.json", job_id, data_id))

    # THEN CI's answer to the signed query decides, not the posted body
    assert answer_of(response)["status"] == "withdrawn"


@pytest.mark.parametrize("verify", ["true", "false"])
def test_a_detail_callback_with_section_only_reasons_withdraws_with_the_right_label_and_score(
        im_callback, audio_result, fake_ci, fake_im, sqlite_dsn, verify):
    # GIVEN a violating sound message; CI's callback and its query answer carry no top-level Label or Score
    job_id, data_id = sent_sound(im_callback, fake_ci, fake_im)
    fake_ci.serve("audio_query", with_job_ids(recorded("audio_query_doc_example.xml"), job_id, data_id))
    body = recorded_callback("cb_audio_detail_from_query_example.json", job_id, data_id)

    # WHEN the callback arrives (its verdict checked with CI, or trusted as signed)
    response = post_result(audio_result(VERIFY_WITH_QUERY=verify, AUDIT_DSN=sqlite_dsn), body)

    # THEN the message is withdrawn, and the record names the scene, the score and the keywords CI found
    assert answer_of(response)["status"] == "withdrawn"
    assert len(fake_im.withdrawn) == 1
    assert len(fake_ci.calls_of("audio_query")) == (1 if verify == "true" else 0)
    [row] = stored(sqlite_dsn)
    assert row["action"] == "withdrawn"
    assert row["reasons"] == [{"source": "ci", "check_name": "audio", "outcome": "block", "label": "Porn",
                               "score": 91, "keywords": ["xx", "wc"]}]
