"""Typed, read-only views of IM callback bodies (im-callback-protocol.md §2).

IM's bodies are trusted for shape only after these views have read them: every
field has a safe default and a wrong type never raises.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional, Tuple


class Command:
    C2C_BEFORE_SEND = "C2C.CallbackBeforeSendMsg"
    C2C_AFTER_SEND = "C2C.CallbackAfterSendMsg"
    GROUP_BEFORE_SEND = "Group.CallbackBeforeSendMsg"
    GROUP_AFTER_SEND = "Group.CallbackAfterSendMsg"
    FRIEND_ADD = "Sns.CallbackPrevFriendAdd"
    CREATE_GROUP = "Group.CallbackBeforeCreateGroup"
    GROUP_INFO_CHANGED = "Group.CallbackAfterGroupInfoChanged"
    PORTRAIT_SET = "Profile.CallbackPortraitSet"
    CLOUD_AUDIT_RESULT = "ContentCallback.ResultNotify"  # the body has no CallbackCommand: the query names it
    APPLY_JOIN_GROUP = "Group.CallbackBeforeApplyJoinGroup"
    MEMBER_FIELD_CHANGED = "Group.CallbackAfterMemberFieldChanged"
    CREATE_TOPIC = "Group.CallbackBeforeCreateTopic"
    TOPIC_INFO_CHANGED = "Group.CallbackAfterTopicInfoChanged"


def text(value: Any) -> str:
    """A string field as IM documents it; numbers are tolerated, anything else is empty."""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return ""


def mappings(value: Any) -> Tuple[Mapping[str, Any], ...]:
    """The objects of a list field (FriendItem, MsgList, GroupInfo, ...); anything else in it, or a field
    that is not a list, is nothing."""
    return tuple(item for item in value if isinstance(item, Mapping)) if isinstance(value, list) else ()


def integer(value: Any) -> Optional[int]:
    """An integer field; IM sometimes sends numbers as strings (EventTime)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        digits = value.strip()
        # isdigit() alone admits "²" and other digits int() refuses
        if digits.isascii() and digits.isdigit() and len(digits) <= 20:
            return int(digits)
    return None


@dataclass(frozen=True)
class MessageCallback:
    """A C2C or group send callback, before or after delivery."""

    command: str
    scene: str  # "c2c" or "group"
    sender: str
    receiver: str = ""  # C2C only
    group_id: str = ""  # group only
    topic_id: str = ""
    msg_key: str = ""  # C2C: what admin_msgwithdraw needs
    msg_seq: Optional[int] = None  # group after-send only: what group_msg_recall needs
    msg_body: Tuple[Mapping[str, Any], ...] = ()
    group_type: str = ""  # Public, Work, Meeting, AVChatRoom, Community (or their older names)
    random: Optional[int] = None  # C2C MsgRandom, group Random: finds the message in IM's history later
    mentioned: int = 0  # GroupAtInfo: accounts @-mentioned
    at_all: bool = False  # GroupAtInfo: @all (GroupAtAllFlag 1)

    @classmethod
    def from_body(cls, command: str, body: Mapping[str, Any]) -> "MessageCallback":
        scene = "group" if command.startswith("Group.") else "c2c"
        at_info = mappings(body.get("GroupAtInfo"))
        return cls(
            command=command,
            scene=scene,
            sender=text(body.get("From_Account")),
            receiver=text(body.get("To_Account")) if scene == "c2c" else "",
            group_id=text(body.get("GroupId")) if scene == "group" else "",
            topic_id=text(body.get("TopicId")),
            msg_key=text(body.get("MsgKey")),
            msg_seq=integer(body.get("MsgSeq")),
            msg_body=mappings(body.get("MsgBody")),
            group_type=text(body.get("Type")) if scene == "group" else "",
            random=integer(body.get("MsgRandom" if scene == "c2c" else "Random")),
            mentioned=len({text(at.get("GroupAt_Account")) for at in at_info} - {""}),
            at_all=any(at.get("GroupAtAllFlag") == 1 for at in at_info),
        )

    @property
    def target(self) -> str:
        return self.group_id if self.scene == "group" else self.receiver
