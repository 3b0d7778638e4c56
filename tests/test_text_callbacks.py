"""Friend requests, group creation and changes, profiles and IM's cloud-audit results:
each judged (or recorded) and written to the audit trail."""
from __future__ import annotations

import hashlib

import pytest

from tests.conftest import IM_SECRET_KEY, answer_of, im_query, load_event, log_lines, scf_context, stored, trigger_event

FRIEND_ADD = "Sns.CallbackPrevFriendAdd"
CREATE_GROUP = "Group.CallbackBeforeCreateGroup"
GROUP_INFO = "Group.CallbackAfterGroupInfoChanged"
PORTRAIT_SET = "Profile.CallbackPortraitSet"
RESULT_NOTIFY = "ContentCallback.ResultNotify"


@pytest.fixture
def rules_file(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text("block: [赌博]\nreplace: [垃圾]\n", encoding="utf-8")
    return str(path)


def send(handler, body, command):
    return answer_of(handler(trigger_event(body, im_query(command)), scf_context()))


# --- Sns.CallbackPrevFriendAdd ----------------------------------------------------------


def test_a_clean_friend_request_is_allowed_per_receiver(make_function, fake_ci, sqlite_dsn):
    handler = make_function(AUDIT_DSN=sqlite_dsn)

    answer = send(handler, load_event("im/sns_prev_friend_add"), FRIEND_ADD)

    assert answer == {"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": "",
                      "ResultItem": [{"To_Account": "id1", "ResultCode": 0, "ResultInfo": ""}]}
    [text_call] = fake_ci.calls_of("text")
    assert text_call.fields["Input/Content"] == "this is id1!\nremark1"
    [row] = stored(sqlite_dsn)
    assert (row["scene"], row["action"], row["sender"], row["receiver"]) == ("friend", "allow", "id", "id1")
    assert row["content_types"] == "AddWording,Remark"


def test_a_violating_wording_denies_only_the_requests_that_carry_it(make_function, fake_ci, sqlite_dsn):
    # GIVEN CI flags one wording, and an admin adds three friends, two of them with that wording
    fake_ci.flag_word("this is id1!", label="Ads", score=90)
    handler = make_function(AUDIT_DSN=sqlite_dsn, FRIEND_REJECT_CODE="38123")

    # WHEN the request is judged
    answer = send(handler, load_event("im/sns_prev_friend_add_batch"), FRIEND_ADD)

    # THEN those two are denied with the configured code, the third allowed; the repeated wording cost one CI call
    assert answer["ErrorCode"] == 0  # a top-level error would let every request through
    assert [(i["To_Account"], i["ResultCode"]) for i in answer["ResultItem"]] == [("id1", 38123), ("id2", 38123), ("id3", 0)]
    assert answer["ResultItem"][0]["ResultInfo"] == "message blocked by content policy"
    assert sorted(c.fields["Input/Content"] for c in fake_ci.calls_of("text")) == ["hello", "this is id1!",
                                                                                    "this is id1!\nremark1"]
    # AND each receiver has its own record, with the requester the admin acted as
    rows = stored(sqlite_dsn, count=3)
    by_receiver = {r["receiver"]: r for r in rows}
    assert by_receiver["id1"]["action"] == "block" and by_receiver["id3"]["action"] == "allow"
    assert by_receiver["id2"]["reasons"][0]["label"] == "Ads"
    assert by_receiver["id2"]["details"] == {"requester": "administrator", "result_code": 38123}


def test_a_replace_rule_denies_a_friend_request_since_it_cannot_be_rewritten(make_function, fake_ci, rules_file):
    handler = make_function(RULES_PATH=rules_file)
    body = load_event("im/sns_prev_friend_add")
    body["FriendItem"][0]["AddWording"] = "你这个垃圾"

    answer = send(handler, body, FRIEND_ADD)

    assert answer["ResultItem"][0]["ResultCode"] == 38000


def test_friend_reject_code_outside_the_documented_range_fails_at_start_up(make_function):
    from imguard.config import ConfigError

    with pytest.raises(ConfigError) as caught:
        make_function(FRIEND_REJECT_CODE="120001")
    assert caught.value.variable == "FRIEND_REJECT_CODE"


# --- Group.CallbackBeforeCreateGroup ----------------------------------------------------


def test_a_group_with_a_clean_name_and_introduction_is_created(make_function, fake_ci, sqlite_dsn):
    handler = make_function(AUDIT_DSN=sqlite_dsn)

    answer = send(handler, load_event("im/group_before_create"), CREATE_GROUP)

    assert answer == {"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": ""}
    assert sorted(c.fields["Input/Content"] for c in fake_ci.calls_of("text")) == ["MyFirstGroup", "weekend hiking"]
    [row] = stored(sqlite_dsn)
    assert (row["scene"], row["action"], row["sender"]) == ("group_create", "allow", "leckie")


@pytest.mark.parametrize("custom, expected", [(None, 1), ("10150", 10150)])
def test_a_group_whose_introduction_violates_is_refused(make_function, fake_ci, rules_file, sqlite_dsn,
                                                        custom, expected):
    handler = make_function(RULES_PATH=rules_file, AUDIT_DSN=sqlite_dsn, GROUP_REJECT_ERROR_CODE=custom,
                            BLOCK_ACTION="silent")
    body = load_event("im/group_before_create")
    body["Introduction"] = "网上赌博"

    answer = send(handler, body, CREATE_GROUP)

    # Creation has no silent drop: BLOCK_ACTION=silent still refuses in the open
    assert answer["ErrorCode"] == expected
    [row] = stored(sqlite_dsn)
    assert row["action"] == "block"
    [reason] = [r for r in row["reasons"] if r.get("rule")]
    assert reason["rule"] == "block:赌博"
    assert row["details"]["error_code"] == expected


# --- after-only: profiles and group info ------------------------------------------------


def test_a_violating_nickname_is_recorded_and_left_alone_without_remediation(make_function, fake_ci, fake_im,
                                                                            sqlite_dsn):
    fake_ci.flag_word("nick1", label="Abuse")
    handler = make_function(AUDIT_DSN=sqlite_dsn)

    answer = send(handler, load_event("im/profile_portrait_set"), PORTRAIT_SET)

    assert answer == {"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": ""}
    # only string text tags are judged: nickname and custom data, not gender or allow-type
    assert sorted(c.fields["Input/Content"] for c in fake_ci.calls_of("text")) == ["nick1", "your custom data"]
    [row] = stored(sqlite_dsn)
    assert (row["scene"], row["action"], row["sender"]) == ("profile", "block", "id1")
    assert row["details"]["remediation"] == {"status": "off", "fields": ["Tag_Profile_IM_Nick"]}
    assert [r["field"] for r in row["reasons"] if r["outcome"] == "block"] == ["Tag_Profile_IM_Nick"]
    assert fake_im.requests == []


def test_with_remediation_a_violating_nickname_is_overwritten_and_a_masked_one_rewritten(
        make_function, fake_ci, fake_im, rules_file, sqlite_dsn):
    # GIVEN remediation on, CI flagging the nickname, and a custom field with a word on the replace list
    fake_ci.flag_word("nick1", label="Abuse")
    handler = make_function(AUDIT_DSN=sqlite_dsn, RULES_PATH=rules_file, PROFILE_REMEDIATE="true",
                            PROFILE_PLACEHOLDER="用户", IM_SECRET_KEY=IM_SECRET_KEY, IM_API_BASE=fake_im.base_url)
    body = load_event("im/profile_portrait_set")
    body["ProfileItem"][3]["Value"] = "一堆垃圾"
    fake_im.apply_profile_change(body)  # IM made the change before calling back

    # WHEN the after-callback arrives
    send(handler, body, PORTRAIT_SET)

    # THEN IM's REST API overwrote the nickname with the placeholder and masked the custom field
    assert fake_im.profiles["id1"]["Tag_Profile_IM_Nick"] == "用户"
    assert fake_im.profiles["id1"]["Tag_Profile_Custom_Data"] == "一堆**"
    [row] = stored(sqlite_dsn)
    assert row["details"]["remediation"]["status"] == "updated"
    assert row["details"]["remediation"]["fields"] == ["Tag_Profile_Custom_Data", "Tag_Profile_IM_Nick"]
    # AND IM was asked for the current values first
    [read] = fake_im.calls_to(fake_im.PORTRAIT_GET)
    assert read == {"To_Account": ["id1"], "TagList": ["Tag_Profile_Custom_Data", "Tag_Profile_IM_Nick"]}


def test_a_forged_profile_callback_overwrites_nothing(make_function, fake_ci, fake_im, sqlite_dsn):
    # GIVEN remediation on and a victim whose real nickname is harmless
    fake_ci.flag_word("nick1", label="Abuse")
    fake_im.profiles["id1"] = {"Tag_Profile_IM_Nick": "Alice", "Tag_Profile_Custom_Data": "your custom data"}
    handler = make_function(AUDIT_DSN=sqlite_dsn, PROFILE_REMEDIATE="true", IM_SECRET_KEY=IM_SECRET_KEY,
                            IM_API_BASE=fake_im.base_url)

    # WHEN a stranger (with a captured Sign) posts a PortraitSet claiming the victim set a violating nickname
    send(handler, load_event("im/profile_portrait_set"), PORTRAIT_SET)

    # THEN IM's own record disagrees, so nothing is overwritten, and the trail says why
    assert fake_im.calls_to(fake_im.PORTRAIT_SET) == []
    assert fake_im.profiles["id1"]["Tag_Profile_IM_Nick"] == "Alice"
    [row] = stored(sqlite_dsn)
    assert row["details"]["remediation"]["status"] == "unconfirmed"
    assert row["details"]["remediation"]["superseded"] == ["Tag_Profile_IM_Nick"]


def test_a_field_changed_again_since_the_callback_is_left_alone(make_function, fake_ci, fake_im, sqlite_dsn):
    # GIVEN a violating nickname that the user has already replaced by the time imguard reads it back
    fake_ci.flag_word("nick1", label="Abuse")
    body = load_event("im/profile_portrait_set")
    fake_im.apply_profile_change(body)
    fake_im.profiles["id1"]["Tag_Profile_IM_Nick"] = "a newer, harmless nick"
    handler = make_function(AUDIT_DSN=sqlite_dsn, PROFILE_REMEDIATE="true", IM_SECRET_KEY=IM_SECRET_KEY,
                            IM_API_BASE=fake_im.base_url)

    send(handler, body, PORTRAIT_SET)

    assert fake_im.profiles["id1"]["Tag_Profile_IM_Nick"] == "a newer, harmless nick"
    assert fake_im.calls_to(fake_im.PORTRAIT_SET) == []


def test_a_profile_im_cannot_show_is_not_overwritten(make_function, fake_ci, fake_im, sqlite_dsn):
    # GIVEN an account IM does not know (portrait_get answers ResultCode 40003 for it)
    fake_ci.flag_word("nick1", label="Abuse")
    handler = make_function(AUDIT_DSN=sqlite_dsn, PROFILE_REMEDIATE="true", IM_SECRET_KEY=IM_SECRET_KEY,
                            IM_API_BASE=fake_im.base_url)

    send(handler, load_event("im/profile_portrait_set"), PORTRAIT_SET)

    assert fake_im.calls_to(fake_im.PORTRAIT_SET) == []
    [row] = stored(sqlite_dsn)
    assert row["details"]["remediation"] == {"status": "unconfirmed", "fields": ["Tag_Profile_IM_Nick"],
                                             "detail": "IM could not show the current values"}


def test_a_failed_remediation_is_recorded_as_failed(make_function, fake_ci, fake_im, sqlite_dsn, capsys):
    fake_ci.flag_word("nick1", label="Abuse")
    fake_im.script("/v4/profile/portrait_set", {"ActionStatus": "FAIL", "ErrorCode": 40003, "ErrorInfo": "no user"})
    handler = make_function(AUDIT_DSN=sqlite_dsn, PROFILE_REMEDIATE="true", IM_SECRET_KEY=IM_SECRET_KEY,
                            IM_API_BASE=fake_im.base_url)
    fake_im.apply_profile_change(load_event("im/profile_portrait_set"))

    answer = send(handler, load_event("im/profile_portrait_set"), PORTRAIT_SET)

    assert answer["ErrorCode"] == 0
    [row] = stored(sqlite_dsn)
    assert row["details"]["remediation"]["status"] == "failed"
    assert row["details"]["remediation"]["im_error_code"] == 40003
    [line] = [l for l in log_lines(capsys) if l["event"] == "callback.profile"]
    assert line["remediation"]["status"] == "failed"


def test_remediation_without_the_im_secret_key_fails_at_start_up(make_function):
    from imguard.config import ConfigError

    with pytest.raises(ConfigError) as caught:
        make_function(PROFILE_REMEDIATE="true")
    assert caught.value.variable == "IM_SECRET_KEY"


def test_a_violating_group_notification_is_overwritten_through_modify_group_base_info(
        make_function, fake_ci, fake_im, sqlite_dsn):
    fake_ci.flag_word("meet at 9", label="Ads")
    handler = make_function(AUDIT_DSN=sqlite_dsn, PROFILE_REMEDIATE="true", IM_SECRET_KEY=IM_SECRET_KEY,
                            IM_API_BASE=fake_im.base_url)

    fake_im.apply_group_change(load_event("im/group_after_info_changed"))

    send(handler, load_event("im/group_after_info_changed"), GROUP_INFO)

    group = fake_im.groups["@TGS#2J4SZEAEL"]
    assert group["Notification"] == "***"
    assert group["Name"] == load_event("im/group_after_info_changed")["Name"]  # the name was clean: untouched
    [modify] = fake_im.calls_to(fake_im.MODIFY_GROUP)
    assert modify == {"GroupId": "@TGS#2J4SZEAEL", "Notification": "***"}


def test_a_forged_group_info_callback_overwrites_nothing(make_function, fake_ci, fake_im, sqlite_dsn):
    # GIVEN a group whose real notification is harmless
    fake_ci.flag_word("meet at 9", label="Ads")
    fake_im.groups["@TGS#2J4SZEAEL"] = {"Name": "Book club", "Notification": "Chapter 3 on Friday"}
    handler = make_function(AUDIT_DSN=sqlite_dsn, PROFILE_REMEDIATE="true", IM_SECRET_KEY=IM_SECRET_KEY,
                            IM_API_BASE=fake_im.base_url)

    # WHEN a forged AfterGroupInfoChanged claims the notification now violates
    send(handler, load_event("im/group_after_info_changed"), GROUP_INFO)

    # THEN get_group_info shows otherwise and modify_group_base_info is never called
    assert fake_im.calls_to(fake_im.MODIFY_GROUP) == []
    assert fake_im.groups["@TGS#2J4SZEAEL"]["Notification"] == "Chapter 3 on Friday"
    [row] = stored(sqlite_dsn)
    assert row["details"]["remediation"]["status"] == "unconfirmed"
    [row] = stored(sqlite_dsn)
    assert (row["scene"], row["action"], row["group_id"]) == ("group_info", "block", "@TGS#2J4SZEAEL")


def test_a_whitelisted_user_is_recorded_as_whitelisted_and_not_judged(make_function, fake_ci, sqlite_dsn):
    handler = make_function(AUDIT_DSN=sqlite_dsn, WHITELIST_USERS="id1")

    send(handler, load_event("im/profile_portrait_set"), PORTRAIT_SET)

    assert fake_ci.calls == []
    [row] = stored(sqlite_dsn)
    assert row["whitelisted"] is True and row["action"] == "allow"


# --- ContentCallback.ResultNotify -------------------------------------------------------


@pytest.mark.parametrize("text_content", [["aaabbbccc", "1234567"], "aaabbbccc\n1234567"])
def test_im_cloud_audit_results_are_recorded_whether_text_content_is_an_array_or_a_string(
        make_function, fake_ci, sqlite_dsn, text_content):
    # GIVEN IM's sample result, which has no CallbackCommand in its body
    handler = make_function(AUDIT_DSN=sqlite_dsn, AUDIT_STORE_CONTENT="true")
    body = load_event("im/content_callback_result")
    body["TextContent"] = text_content
    assert "CallbackCommand" not in body

    # WHEN it arrives, named only by the query string
    answer = send(handler, body, RESULT_NOTIFY)

    # THEN it is acknowledged and recorded with IM's labels as an im_cloud reason
    assert answer == {"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": ""}
    assert fake_ci.calls == []
    [row] = stored(sqlite_dsn)
    assert (row["scene"], row["action"], row["sender"], row["receiver"]) == ("c2c", "block", "jared", "Jonh")
    assert row["msg_key"] == "1434460578_4137340972_1661154487"
    assert row["content"]["text"] == "aaabbbccc\n1234567"
    [reason] = row["reasons"]
    assert (reason["source"], reason["label"], reason["sub_label"]) == ("im_cloud", "Sexy", "InsinuationPorn")
    assert reason["keywords"] == ["aaabbbccc", "1234567"]
    assert row["details"]["im_scene"] == "C2C"


def test_a_group_cloud_audit_result_keeps_the_msg_seq(make_function, sqlite_dsn):
    handler = make_function(AUDIT_DSN=sqlite_dsn)
    body = load_event("im/content_callback_result")
    body.update(Scene="Group", ContactItem={"ContactType": 2, "ToGroupId": "@TGS#1"}, MsgID="4121", CtxcbResult=0)

    send(handler, body, RESULT_NOTIFY)

    [row] = stored(sqlite_dsn)
    assert (row["scene"], row["action"], row["group_id"], row["msg_seq"]) == ("group", "allow", "@TGS#1", 4121)


# --- the trail across commands ----------------------------------------------------------


def test_a_message_decision_is_recorded_with_the_digest_of_its_text_not_the_text(make_function, fake_ci, sqlite_dsn):
    # GIVEN CI flags the sample text
    fake_ci.flag_word("red packet", label="Ads", score=88)
    handler = make_function(AUDIT_DSN=sqlite_dsn)

    # WHEN the message arrives
    send(handler, load_event("im/c2c_before_text"), "C2C.CallbackBeforeSendMsg")

    # THEN the record says who, what and why, and the digest an operator can recompute; not the text
    [row] = stored(sqlite_dsn)
    assert (row["function"], row["command"], row["action"]) == ("im_callback", "C2C.CallbackBeforeSendMsg", "block")
    assert (row["sender"], row["receiver"], row["msg_key"]) == ("jared", "Jonh", load_event("im/c2c_before_text")["MsgKey"])
    assert row["reasons"][0]["label"] == "Ads" and row["reasons"][0]["score"] == 88
    assert row["content_sha256"] == hashlib.sha256("red packet".encode()).hexdigest()
    assert row["content"] is None and row["latency_ms"] > 0
    assert row["details"]["error_code"] == 1


def test_a_degraded_decision_is_recorded_with_the_fail_policy(make_function, fake_ci, sqlite_dsn):
    fake_ci.fail(status=503)
    handler = make_function(AUDIT_DSN=sqlite_dsn, FAIL_MODE="closed")

    answer = send(handler, load_event("im/c2c_before_text"), "C2C.CallbackBeforeSendMsg")

    assert answer["ErrorCode"] == 1
    [row] = stored(sqlite_dsn)
    assert (row["action"], row["degraded"]) == ("block", "error")
    assert row["details"]["fail_mode"] == "closed"
    assert row["reasons"][0]["outcome"] == "error"


def test_remediation_never_acts_on_the_fail_policys_guess(make_function, fake_ci, fake_im, sqlite_dsn):
    # GIVEN CI failing and FAIL_MODE=closed, so every field is "blocked" without a verdict
    fake_ci.fail(status=503)
    handler = make_function(AUDIT_DSN=sqlite_dsn, FAIL_MODE="closed", PROFILE_REMEDIATE="true",
                            IM_SECRET_KEY=IM_SECRET_KEY, IM_API_BASE=fake_im.base_url)

    send(handler, load_event("im/profile_portrait_set"), PORTRAIT_SET)

    # THEN nobody's nickname is overwritten; the record says the decision was degraded
    assert fake_im.requests == []
    [row] = stored(sqlite_dsn)
    assert (row["action"], row["degraded"]) == ("block", "error")
    assert "remediation" not in row["details"]


def test_an_admins_change_is_judged_and_recorded_but_never_overwritten(make_function, fake_ci, fake_im, sqlite_dsn):
    # GIVEN a violating nickname set by the admin account imguard itself uses (e.g. our own overwrite)
    fake_ci.flag_word("nick1", label="Abuse")
    handler = make_function(AUDIT_DSN=sqlite_dsn, PROFILE_REMEDIATE="true", IM_SECRET_KEY=IM_SECRET_KEY,
                            IM_API_BASE=fake_im.base_url)
    body = dict(load_event("im/profile_portrait_set"), Operator_Account="administrator")

    send(handler, body, PORTRAIT_SET)

    assert fake_im.requests == []
    [row] = stored(sqlite_dsn)
    assert row["action"] == "block" and row["details"]["operator"] == "administrator"


def test_a_result_notify_with_a_strange_msg_id_is_still_recorded(make_function, sqlite_dsn):
    handler = make_function(AUDIT_DSN=sqlite_dsn)
    body = load_event("im/content_callback_result")
    body.update(Scene="Group", ContactItem={"ContactType": 2, "ToGroupId": "@TGS#1"}, MsgID="²")

    answer = send(handler, body, RESULT_NOTIFY)

    assert answer["ErrorCode"] == 0
    [row] = stored(sqlite_dsn)
    assert row["msg_seq"] is None and row["group_id"] == "@TGS#1"


def test_a_groups_custom_fields_and_picture_are_judged_and_remediated(make_function, fake_ci, fake_im, sqlite_dsn,
                                                                      tmp_path):
    # GIVEN a documented change of every group field (tests/events/im/real), with a custom field on the block
    # list and a new group picture CI flags
    rules = tmp_path / "rules.yaml"
    rules.write_text("block: [赌博]\n", encoding="utf-8")
    body = load_event("im/real/group_aftergroupinfochanged_03")
    body["UserDefinedDataList"][1]["Value"] = "网上赌博群"
    body["FaceUrl"] = "https://img.example.com/group-face.jpg"
    fake_ci.flag_image(body["FaceUrl"])
    fake_im.apply_group_change(body)
    handler = make_function(AUDIT_DSN=sqlite_dsn, RULES_PATH=str(rules), PROFILE_REMEDIATE="true",
                            IM_SECRET_KEY=IM_SECRET_KEY, IM_API_BASE=fake_im.base_url)

    # WHEN IM reports the change
    send(handler, body, GROUP_INFO)

    # THEN the custom field is overwritten with the placeholder and the picture removed, through the REST API
    [modify] = fake_im.calls_to(fake_im.MODIFY_GROUP)
    assert modify == {"GroupId": body["GroupId"], "FaceUrl": "",
                      "AppDefinedData": [{"Key": "UserDefinedKey2", "Value": "***"}]}
    [read] = fake_im.calls_to(fake_im.GROUP_INFO)
    assert read["ResponseFilter"] == {"GroupBaseInfoFilter": ["FaceUrl"], "AppDefinedDataFilter_Group": ["UserDefinedKey2"]}
    [row] = stored(sqlite_dsn)
    assert row["action"] == "block"
    assert sorted(r["field"] for r in row["reasons"] if r["outcome"] == "block") == [
        "AppDefinedData.UserDefinedKey2", "FaceUrl"]
