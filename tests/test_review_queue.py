"""The human review queue: delivered, queued with its text, kept or withdrawn by a person, and a
withdrawal only once IM's own records show the message (issue #16)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from imguard.config import ConfigError, Settings
from imguard.review.queue import KEPT, PENDING, UNCONFIRMED, WITHDRAWN, ReviewError, ReviewQueue
from tests.conftest import (IM_SECRET_KEY, ROOT, SDKAPPID, answer_of, im_query, load_event, scf_context, stored,
                            trigger_event)
from tests.flows import send_c2c

RULES = "block: [傻逼]\nreplace: [傻冒]\nreview: [兼职, {regex: '刷单\\d+'}]\n"


def text_message(text: str, **changes) -> dict:
    return dict(load_event("im/c2c_before_text"), MsgBody=[{"MsgType": "TIMTextElem", "MsgContent": {"Text": text}}],
                **changes)


@pytest.fixture
def reviewed(make_function, tmp_path, audit_dsn, fake_im):
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES, encoding="utf-8")
    return make_function(ci=False, RULES_PATH=str(rules), AUDIT_DSN=audit_dsn, IM_SECRET_KEY=IM_SECRET_KEY,
                         IM_API_BASE=fake_im.base_url)


def queue_of(dsn: str):
    from imguard.audit.store import AuditStore

    return ReviewQueue(AuditStore(dsn))


def im_client(fake_im):
    from imguard.im.rest import ImRestClient

    return ImRestClient.from_settings(Settings.from_env({"IM_SDKAPPID": SDKAPPID, "IM_SECRET_KEY": IM_SECRET_KEY,
                                                         "IM_API_BASE": fake_im.base_url}))


def test_a_review_hit_is_delivered_and_queued_with_its_text(reviewed, audit_dsn):
    # WHEN a message matches the review list (and AUDIT_STORE_CONTENT is off)
    answer = send_c2c(reviewed, text_message("高薪兼职日结"))

    # THEN it is delivered, and the queue holds it with the text a moderator must read
    assert answer["ErrorCode"] == 0 and "MsgBody" not in answer
    [decision] = stored(audit_dsn)
    assert decision["content"] is None  # the decisions table keeps no text
    assert decision["details"]["human_review"] == "queued"
    [item] = queue_of(audit_dsn).list()
    assert item["status"] == PENDING and item["content"]["text"] == "高薪兼职日结"
    assert item["sender"] == "jared" and item["receiver"] == "Jonh"
    assert any(r.get("rule") == "review:兼职" or "review:兼职" in (r.get("keywords") or []) for r in item["reasons"])


def test_review_and_replace_together_deliver_the_masked_text_and_queue_it(reviewed, audit_dsn):
    answer = send_c2c(reviewed, text_message("傻冒来做兼职"))

    assert answer["ErrorCode"] == 0
    assert answer["MsgBody"][0]["MsgContent"]["Text"] == "**来做兼职"
    stored(audit_dsn)
    assert len(queue_of(audit_dsn).list()) == 1


def test_a_block_is_not_queued(reviewed, audit_dsn):
    assert send_c2c(reviewed, text_message("傻逼兼职"))["ErrorCode"] == 1
    stored(audit_dsn)

    assert queue_of(audit_dsn).list() == []


def test_cis_suspicious_verdict_is_queued_with_suspicious_action_review(make_function, fake_ci, sqlite_dsn):
    fake_ci.flag_word("borderline", result=2, label="Ads")
    handler = make_function(SUSPICIOUS_ACTION="review", AUDIT_DSN=sqlite_dsn)

    assert send_c2c(handler, text_message("a borderline text"))["ErrorCode"] == 0
    stored(sqlite_dsn)

    [item] = queue_of(sqlite_dsn).list()
    assert [r["label"] for r in item["reasons"] if r.get("source") == "ci"] == ["Ads"]


def test_suspicious_action_review_needs_a_store():
    with pytest.raises(ConfigError, match="SUSPICIOUS_ACTION: review needs AUDIT_DSN"):
        Settings.from_env({"IM_SDKAPPID": SDKAPPID, "SUSPICIOUS_ACTION": "review"})


def test_keep_records_who_decided_and_a_second_decision_is_refused(reviewed, audit_dsn):
    send_c2c(reviewed, text_message("兼职"))
    stored(audit_dsn)
    queue = queue_of(audit_dsn)
    [item] = queue.list()

    assert queue.keep(item["id"], "moderator-li") == KEPT
    with pytest.raises(ReviewError, match="already decided"):
        queue.keep(item["id"], "moderator-wang")
    [kept] = queue.list(status=KEPT)
    assert kept["decided_by"] == "moderator-li" and kept["decided_at"] is not None


def test_withdraw_goes_through_im_once_it_holds_the_message(reviewed, audit_dsn, fake_im):
    # GIVEN a queued C2C message IM delivered
    body = text_message("刷单123 速来")
    send_c2c(reviewed, body, fake_im)
    stored(audit_dsn)
    queue = queue_of(audit_dsn)
    [item] = queue.list()

    # WHEN a moderator withdraws it
    status = queue.withdraw(item["id"], "moderator-li", im_client(fake_im))

    # THEN IM was asked, and withdrew exactly that message
    assert status == WITHDRAWN
    assert fake_im.withdrawn == [{"kind": "c2c", "From_Account": "jared", "To_Account": "Jonh", "MsgKey": body["MsgKey"]}]
    assert queue.list(status=WITHDRAWN)[0]["decided_by"] == "moderator-li"


def test_withdraw_of_a_message_im_does_not_hold_withdraws_nothing(reviewed, audit_dsn, fake_im):
    # GIVEN a queued message IM holds under the same MsgKey but with other text (a forged callback's claim)
    body = text_message("兼职")
    send_c2c(reviewed, body)
    fake_im.deliver_c2c(dict(body, MsgBody=[{"MsgType": "TIMTextElem", "MsgContent": {"Text": "你好"}}]))
    stored(audit_dsn)
    queue = queue_of(audit_dsn)
    [item] = queue.list()

    status = queue.withdraw(item["id"], "moderator-li", im_client(fake_im))

    assert status == UNCONFIRMED and fake_im.withdrawn == []
    assert "does not carry the content in the review queue" in queue.list(status=UNCONFIRMED)[0]["outcome"]


def test_a_group_message_queued_before_delivery_is_found_by_its_random_and_recalled(make_function, tmp_path,
                                                                                     sqlite_dsn, fake_im):
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES, encoding="utf-8")
    handler = make_function(ci=False, RULES_PATH=str(rules), AUDIT_DSN=sqlite_dsn)
    before = dict(load_event("im/group_before_text_topic"), Random=777,
                  MsgBody=[{"MsgType": "TIMTextElem", "MsgContent": {"Text": "兼职招人"}}])
    answer = answer_of(handler(trigger_event(before, im_query("Group.CallbackBeforeSendMsg")), scf_context()))
    # IM delivers it with a MsgSeq the before-send callback never saw, among other messages
    for seq, random in ((40, 1), (41, 777), (42, 5)):
        fake_im.deliver_group(dict(before, MsgSeq=seq, Random=random, MsgTime=1717000000))
    stored(sqlite_dsn)
    queue = queue_of(sqlite_dsn)
    [item] = queue.list()

    status = queue.withdraw(item["id"], "moderator-li", im_client(fake_im))

    assert answer["ErrorCode"] == 0 and status == WITHDRAWN
    assert [w["MsgSeq"] for w in fake_im.withdrawn] == [41]


def test_the_command_line_lists_keeps_and_says_why_it_cannot_withdraw(reviewed, audit_dsn, tmp_path):
    send_c2c(reviewed, text_message("兼职"))
    send_c2c(reviewed, text_message("另一条兼职"))
    stored(audit_dsn, 2)
    env = {"PATH": os.environ["PATH"], "AUDIT_DSN": audit_dsn, "IM_SDKAPPID": SDKAPPID}

    def imguard(*args):
        return subprocess.run([sys.executable, "-m", "imguard", *args, "--env-file", str(tmp_path / "none")],
                              capture_output=True, text=True, env=env, cwd=ROOT)

    listed = imguard("review", "list")
    first, second = (json.loads(line) for line in listed.stdout.splitlines())
    kept = imguard("review", "keep", str(second["id"]), "--by", "li")
    no_key = imguard("review", "withdraw", str(first["id"]))

    assert listed.returncode == 0 and first["content"]["text"] == "另一条兼职"
    assert json.loads(kept.stdout) == {"id": second["id"], "status": "kept"}
    assert no_key.returncode != 0 and "IM_SECRET_KEY" in no_key.stderr
    assert [row["status"] for row in queue_of(audit_dsn).list(status=None)] == ["pending", "kept"]


# -- found in review ----------------------------------------------------------------------------------


def test_a_group_message_pages_back_past_the_first_page_whatever_is_finished_says(make_function, tmp_path,
                                                                                 sqlite_dsn, fake_im):
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES, encoding="utf-8")
    handler = make_function(ci=False, RULES_PATH=str(rules), AUDIT_DSN=sqlite_dsn)
    before = dict(load_event("im/group_before_text_topic"), Random=4242,
                  MsgBody=[{"MsgType": "TIMTextElem", "MsgContent": {"Text": "兼职招人"}}])
    handler(trigger_event(before, im_query("Group.CallbackBeforeSendMsg")), scf_context())
    fake_im.deliver_group(dict(before, MsgSeq=100, MsgTime=1717000000))
    for seq in range(101, 126):  # 25 newer messages: the queued one is on the second page
        fake_im.deliver_group(dict(before, MsgSeq=seq, Random=seq, MsgTime=1717000000,
                                   MsgBody=[{"MsgType": "TIMTextElem", "MsgContent": {"Text": f"later {seq}"}}]))
    stored(sqlite_dsn)
    queue = queue_of(sqlite_dsn)
    [item] = queue.list()

    assert queue.withdraw(item["id"], "li", im_client(fake_im)) == WITHDRAWN
    assert [w["MsgSeq"] for w in fake_im.withdrawn] == [100]


def test_an_image_only_item_is_confirmed_by_its_image(make_function, fake_ci, sqlite_dsn, fake_im):
    body = load_event("im/c2c_before_image")
    for image in body["MsgBody"][0]["MsgContent"]["ImageInfoArray"]:
        fake_ci.flag_image(image["URL"], result=2, label="Porn")
    handler = make_function(SUSPICIOUS_ACTION="review", AUDIT_DSN=sqlite_dsn)
    send_c2c(handler, body, fake_im)
    stored(sqlite_dsn)
    queue = queue_of(sqlite_dsn)
    [item] = queue.list()

    assert queue.withdraw(item["id"], "li", im_client(fake_im)) == WITHDRAWN
    assert fake_im.withdrawn[0]["MsgKey"] == body["MsgKey"]


def test_nobody_can_keep_an_item_while_it_is_being_withdrawn(reviewed, audit_dsn, fake_im):
    from imguard.im.rest import ImRestClient

    send_c2c(reviewed, text_message("兼职"), fake_im)
    stored(audit_dsn)
    queue = queue_of(audit_dsn)
    [item] = queue.list()
    attempts = []

    class SecondModerator(ImRestClient):
        """IM's read-back, during which another moderator clicks Keep."""

        def c2c_history(self, *args, **kwargs):
            try:
                attempts.append(queue.keep(item["id"], "wang"))
            except ReviewError as exc:
                attempts.append(str(exc))
            return super().c2c_history(*args, **kwargs)

    im = im_client(fake_im)
    im.__class__ = SecondModerator

    assert queue.withdraw(item["id"], "li", im) == WITHDRAWN
    assert attempts == [f"review item {item['id']} was already decided"]
    [row] = queue.list(status=WITHDRAWN)
    assert row["decided_by"] == "li" and len(fake_im.withdrawn) == 1
