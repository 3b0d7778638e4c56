"""The texts IM's 本地审核 protects beyond messages, friend requests and profiles: join requests' messages,
new topics' names, topic changes and members' name cards (群名片). Bodies: tests/events/im/README.md.

Custom status (自定义状态) has no server callback and no REST API, so imguard cannot see it (README).
"""
from __future__ import annotations

import pytest

from tests.conftest import IM_SECRET_KEY, answer_of, im_query, load_event, scf_context, stored, trigger_event


@pytest.fixture
def rules_file(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text("block: [赌博]\nreplace: [垃圾]\n", encoding="utf-8")
    return str(path)


def send(handler, name, **changes):
    body = dict(load_event(name), **changes)
    return answer_of(handler(trigger_event(body, im_query(body["CallbackCommand"])), scf_context()))


@pytest.mark.parametrize("name, field", [("im/group_before_apply_join", "ApplyMsg"),
                                         ("im/group_before_create_topic", "Name")])
def test_a_violating_join_request_or_topic_name_is_refused(make_function, rules_file, sqlite_dsn, name, field):
    handler = make_function(ci=False, RULES_PATH=rules_file, AUDIT_DSN=sqlite_dsn, GROUP_REJECT_ERROR_CODE="10150")

    clean = send(handler, name)
    refused = send(handler, name, **{field: "一起网上赌博"})
    masked = send(handler, name, **{field: "一堆垃圾"})  # cannot be rewritten in the answer: refused too

    assert clean["ErrorCode"] == 0
    assert refused == {"ActionStatus": "OK", "ErrorCode": 10150, "ErrorInfo": "message blocked by content policy"}
    assert masked["ErrorCode"] == 10150
    rows = stored(sqlite_dsn, count=3)
    assert {r["action"] for r in rows} == {"allow", "block"}
    assert {r["scene"] for r in rows} <= {"group_join", "topic_create"}


def test_a_join_request_without_applymsg_is_let_through(make_function, rules_file):
    # Most versions of the page document no ApplyMsg: nothing to judge, nothing to refuse.
    handler = make_function(ci=False, RULES_PATH=rules_file)
    body = {k: v for k, v in load_event("im/group_before_apply_join").items() if k != "ApplyMsg"}

    answer = answer_of(handler(trigger_event(body, im_query(body["CallbackCommand"])), scf_context()))

    assert answer["ErrorCode"] == 0


@pytest.mark.parametrize("member_key", ["Member_Account", "Modified_Account"])
def test_a_violating_name_card_is_overwritten_once_im_confirms_it(make_function, rules_file, fake_im, sqlite_dsn,
                                                                  member_key):
    # GIVEN a member whose new name card (as IM holds it) is on the block list; the two documented spellings
    body = load_event("im/group_after_member_field_changed")
    member = body.pop("Member_Account")
    body.update({member_key: member, "NameCard": "赌博代理"})
    fake_im.name_cards[body["GroupId"]] = {member: "赌博代理", "someone": "fine"}
    handler = make_function(ci=False, RULES_PATH=rules_file, AUDIT_DSN=sqlite_dsn, PROFILE_REMEDIATE="true",
                            IM_SECRET_KEY=IM_SECRET_KEY, IM_API_BASE=fake_im.base_url)

    answer = answer_of(handler(trigger_event(body, im_query(body["CallbackCommand"])), scf_context()))

    assert answer["ErrorCode"] == 0
    assert fake_im.name_cards[body["GroupId"]] == {member: "***", "someone": "fine"}
    assert fake_im.calls_to(fake_im.MODIFY_MEMBER) == [{"GroupId": body["GroupId"], "Member_Account": member,
                                                        "NameCard": "***"}]
    [row] = stored(sqlite_dsn)
    assert (row["scene"], row["sender"], row["details"]["remediation"]["status"]) == ("group_member", member, "updated")


def test_a_forged_name_card_change_overwrites_nothing(make_function, rules_file, fake_im, sqlite_dsn):
    body = dict(load_event("im/group_after_member_field_changed"), NameCard="赌博代理")
    fake_im.name_cards[body["GroupId"]] = {body["Member_Account"]: "jacky"}  # what IM really holds
    handler = make_function(ci=False, RULES_PATH=rules_file, AUDIT_DSN=sqlite_dsn, PROFILE_REMEDIATE="true",
                            IM_SECRET_KEY=IM_SECRET_KEY, IM_API_BASE=fake_im.base_url)

    handler(trigger_event(body, im_query(body["CallbackCommand"])), scf_context())

    assert fake_im.calls_to(fake_im.MODIFY_MEMBER) == []
    [row] = stored(sqlite_dsn)
    assert row["details"]["remediation"]["status"] == "unconfirmed"


def test_a_topic_change_is_judged_and_overwritten_only_when_it_names_its_topic(make_function, rules_file, fake_im,
                                                                               sqlite_dsn):
    handler = make_function(ci=False, RULES_PATH=rules_file, AUDIT_DSN=sqlite_dsn, PROFILE_REMEDIATE="true",
                            IM_SECRET_KEY=IM_SECRET_KEY, IM_API_BASE=fake_im.base_url)
    topic_id = "@TGS#_@TGS#cQVLVHIM62CJ@TOPIC#_@TOPIC#cRTE3HIM62C5"
    fake_im.topics[("@TGS#2J4SZEAEL", topic_id)] = {"TopicName": "TestTopic", "Notification": "网上赌博"}

    # WHEN IM reports the documented body (no TopicId), then one that names its topic
    send(handler, "im/group_after_topic_info_changed", Notification="网上赌博")
    send(handler, "im/group_after_topic_info_changed", Notification="网上赌博", TopicId=topic_id)

    # THEN both are recorded as blocked; only the second could be overwritten (modify_topic)
    second, first = stored(sqlite_dsn, count=2)
    assert first["details"]["remediation"]["status"] == "unaddressable"
    assert second["details"]["remediation"]["status"] == "updated"
    assert fake_im.topics[("@TGS#2J4SZEAEL", topic_id)]["Notification"] == "***"
    [modify] = fake_im.calls_to(fake_im.TOPIC_MODIFY)
    assert modify == {"GroupId": "@TGS#2J4SZEAEL", "TopicId": topic_id, "Notification": "***"}
