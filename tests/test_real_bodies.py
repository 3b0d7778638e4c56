"""Every callback body Tencent's documentation and other IM projects publish (tests/events/im/real/, each with
its source in the README there), answered well-formed, and every user-visible text in it judged.

The second test walks every string field of every body, puts a blocked word in it, and asserts that imguard
catches it. What it leaves out is listed in NOT_SHOWN_TO_USERS with the reason.
"""
from __future__ import annotations

import copy
from typing import Any, Iterator, List, Tuple

import pytest

from tests.conftest import EVENTS, answer_of, im_query, load_event, log_lines, scf_context, trigger_event

# The published bodies, and the documented ones of the callbacks those do not cover (tests/events/im/README.md).
REAL = sorted(f"real/{path.stem}" for path in (EVENTS / "im" / "real").glob("*.json")) + [
    "group_before_apply_join", "group_after_member_field_changed", "group_before_create_topic",
    "group_after_topic_info_changed"]
BLOCKED = "网上赌博"

# String fields that carry no user text anyone else reads, each with why.
NOT_SHOWN_TO_USERS = {
    "CallbackCommand": "the command, not content",
    **dict.fromkeys(["From_Account", "To_Account", "Operator_Account", "Owner_Account", "Requester_Account",
                     "Member_Account", "GroupAt_Account", "Requestor_Account", "Modified_Account"],
                    "UserIDs: chosen by the app's server when it imports accounts, not typed by users"),
    **dict.fromkeys(["GroupId", "TopicId", "MsgKey", "MsgId", "MsgID", "UUID", "ThumbUUID", "VideoUUID"],
                    "identifiers IM assigns"),
    **dict.fromkeys(["URL", "Url", "VideoUrl", "ThumbUrl", "FaceUrl"],
                    "URLs: images are judged as pictures, audio and video reviewed by CI"),
    **dict.fromkeys(["Type", "MsgType", "ImageFormat", "ThumbFormat", "VideoFormat", "AddType", "AddSource", "Tag",
                     "Role"],
                    "enumerations"),
    "EventTime": "a time",
    "CloudCustomData": "app-private data that the app's own client interprets; IM shows none of it",
    "Sound": "the push sound file name of a custom element",
    "ErrorInfo": "IM's own result text for the send",
    "Key": "the name of a custom group field, defined by the app",
    "GroupName": "the friend-list group the requester files the new friend under; only the requester sees it",
}
# Profile values are user text only for these tags; the rest are enums, numbers and the avatar URL.
PROFILE_TEXT_TAGS = ("Tag_Profile_IM_Nick", "Tag_Profile_IM_SelfSignature")
# Commands whose texts imguard records but does not judge, with why.
NOT_JUDGED = {"ContentCallback.ResultNotify": "IM's own cloud audit has already judged the content it reports"}


AFTER_THE_FACT = ("Group.CallbackAfterGroupInfoChanged", "Profile.CallbackPortraitSet",
                  "Group.CallbackAfterMemberFieldChanged", "Group.CallbackAfterTopicInfoChanged")


def command_of(name: str, body: dict) -> str:
    return body.get("CallbackCommand") or "ContentCallback.ResultNotify"


def judged_as(command: str) -> str:
    """After-send bodies carry the message as it was when before-send judged it: judge them as that."""
    return command.replace("AfterSendMsg", "BeforeSendMsg")


def text_fields(node: Any, path: Tuple = ()) -> Iterator[Tuple]:
    """Paths of every string a user may see."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Value" and "Tag" in node and not str(node["Tag"]).startswith(PROFILE_TEXT_TAGS + ("Tag_Profile_Custom_",)):
                continue
            if isinstance(value, str):
                if key not in NOT_SHOWN_TO_USERS and value.strip():
                    yield path + (key,)
            else:
                yield from text_fields(value, path + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            if isinstance(value, str):
                if value.strip() and (path[-1] if path else "") not in NOT_SHOWN_TO_USERS:
                    yield path + (index,)
            else:
                yield from text_fields(value, path + (index,))


def with_value(body: dict, path: Tuple, value: str) -> dict:
    changed = copy.deepcopy(body)
    node = changed
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return changed


CASES: List[Tuple[str, Tuple]] = [
    (name, path) for name in REAL
    for body in [load_event(f"im/{name}")] if command_of(name, body) not in NOT_JUDGED
    for path in text_fields(body)
]


@pytest.fixture
def handler(make_function, tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text("block: [赌博]\n", encoding="utf-8")
    return make_function(ci=False, RULES_PATH=str(rules))


@pytest.mark.parametrize("name", REAL)
def test_every_documented_body_gets_a_well_formed_answer(handler, name):
    body = load_event(f"im/{name}")

    response = handler(trigger_event(body, im_query(command_of(name, body))), scf_context())

    assert response["statusCode"] == 200
    answer = answer_of(response)
    assert answer["ActionStatus"] == "OK" and isinstance(answer["ErrorCode"], int)


def caught(handler, capsys, command: str, body: dict) -> bool:
    answer = answer_of(handler(trigger_event(body, im_query(command)), scf_context()))
    if command == "Sns.CallbackPrevFriendAdd":
        return any(item["ResultCode"] != 0 for item in answer["ResultItem"])
    if command in AFTER_THE_FACT:  # cannot be refused: recorded
        return any(line.get("action") == "block" for line in log_lines(capsys) if line["event"].startswith("callback."))
    return answer["ErrorCode"] != 0


@pytest.mark.parametrize("name, path", CASES, ids=[f"{n}:{'.'.join(map(str, p))}" for n, p in CASES])
def test_a_blocked_word_in_any_user_visible_field_is_caught(handler, capsys, name, path):
    # GIVEN a published body with the blocked word put into one of its text fields
    body = load_event(f"im/{name}")
    command = judged_as(command_of(name, body))

    # THEN the untouched body passes, and the changed one is caught
    assert not caught(handler, capsys, command, body), "the published body itself should pass"
    capsys.readouterr()
    assert caught(handler, capsys, command, with_value(body, path, BLOCKED)), f"{'.'.join(map(str, path))} not judged"


def test_the_walk_covers_every_command_and_element_type_published():
    commands = {judged_as(command_of(n, load_event(f"im/{n}"))) for n, _ in CASES}
    element_fields = {path[-1] for _, path in CASES if "MsgContent" in path}

    assert {"C2C.CallbackBeforeSendMsg", "Group.CallbackBeforeSendMsg", "Sns.CallbackPrevFriendAdd",
            "Group.CallbackBeforeCreateGroup", "Group.CallbackAfterGroupInfoChanged",
            "Profile.CallbackPortraitSet", "Group.CallbackBeforeApplyJoinGroup", "Group.CallbackBeforeCreateTopic",
            *AFTER_THE_FACT} <= commands
    assert {"Text", "Data", "Desc", "Ext", "FileName", "Title", "CompatibleText"} <= element_fields
    assert len(CASES) >= 80  # a guard: the walk must not quietly find nothing
