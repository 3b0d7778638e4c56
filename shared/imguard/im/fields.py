"""Views of the callbacks that carry user text outside messages (im-callback-protocol.md §2.5):
friend requests, group creation and group changes, profile changes.

Each exposes the texts worth judging as ``TextField``s named after the IM field
they came from, so that a verdict, a log line and a remediation can all say
"the nickname" rather than "some text".
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Tuple

from imguard.im.callbacks import mappings, text
from imguard.im.messages import MessageContent, TextPiece

GROUP_TEXT_FIELDS = ("Name", "Introduction", "Notification")
FRIEND_TEXT_FIELDS = ("AddWording", "Remark")
PROFILE_TEXT_TAGS = ("Tag_Profile_IM_Nick", "Tag_Profile_IM_SelfSignature")
PROFILE_CUSTOM_PREFIX = "Tag_Profile_Custom_"
# The REST friend_add API takes at most 100 friends; more items than this is not IM talking.
MAX_FRIEND_ITEMS = 1000


# Custom group fields (UserDefinedDataList in callbacks, AppDefinedData in the REST API): shown to members.
APP_DEFINED = "AppDefinedData."
IMAGE, TEXT = "image", "text"


@dataclass(frozen=True)
class TextField:
    name: str  # the IM field or profile tag: AddWording, Name, Tag_Profile_IM_Nick, AppDefinedData.<Key>, ...
    text: str  # the text, or for an image field its URL
    kind: str = TEXT  # "image": a URL to judge as a picture (a group's FaceUrl)


def content_of(fields: Iterable[TextField]) -> MessageContent:
    """The fields as moderation sees a message: each text at a path named after its field, each
    image field's URL among the images."""
    fields = list(fields)
    return MessageContent(texts=[TextPiece((f.name,), f.text) for f in fields if f.kind == TEXT],
                          images=[f.text for f in fields if f.kind == IMAGE], types=[f.name for f in fields])


def _fields(body: Mapping[str, Any], names: Iterable[str]) -> Tuple[TextField, ...]:
    return tuple(TextField(name, body[name]) for name in names if isinstance(body.get(name), str) and body[name].strip())


def _custom_fields(body: Mapping[str, Any]) -> Tuple[TextField, ...]:
    """Custom group fields' values: UserDefinedDataList (callbacks) or AppDefinedData (where IM sends it)."""
    items = mappings(body.get("UserDefinedDataList")) + mappings(body.get("AppDefinedData"))
    return tuple(TextField(APP_DEFINED + text(item.get("Key")), item["Value"]) for item in items
                 if isinstance(item.get("Value"), str) and item["Value"].strip())


def _image(body: Mapping[str, Any], name: str) -> Tuple[TextField, ...]:
    url = text(body.get(name))
    return (TextField(name, url, IMAGE),) if url.startswith(("http://", "https://")) else ()


@dataclass(frozen=True)
class FriendRequest:
    to_account: str
    fields: Tuple[TextField, ...]


@dataclass(frozen=True)
class FriendAddCallback:
    """``Sns.CallbackPrevFriendAdd``: answered with one ResultItem per To_Account."""

    sender: str  # From_Account: who asks to be a friend
    requester: str  # Requester_Account: who made the call (an admin, for REST)
    requests: Tuple[FriendRequest, ...]

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> "FriendAddCallback":
        items = mappings(body.get("FriendItem"))[:MAX_FRIEND_ITEMS]
        return cls(
            sender=text(body.get("From_Account")),
            requester=text(body.get("Requester_Account")),
            requests=tuple(FriendRequest(text(i.get("To_Account")), _fields(i, FRIEND_TEXT_FIELDS)) for i in items),
        )


@dataclass(frozen=True)
class GroupCallback:
    """``Group.CallbackBeforeCreateGroup`` and ``Group.CallbackAfterGroupInfoChanged``."""

    operator: str
    owner: str
    group_id: str  # empty before creation
    group_type: str
    # Only the ones present (after a change: only the changed ones): the texts, custom fields' values,
    # and the group's picture (FaceUrl) as an image.
    fields: Tuple[TextField, ...]

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> "GroupCallback":
        return cls(
            operator=text(body.get("Operator_Account")),
            owner=text(body.get("Owner_Account")),
            group_id=text(body.get("GroupId")),
            group_type=text(body.get("Type")),
            fields=_fields(body, GROUP_TEXT_FIELDS) + _custom_fields(body) + _image(body, "FaceUrl"),
        )


@dataclass(frozen=True)
class ProfileCallback:
    """``Profile.CallbackPortraitSet``: the string-valued text tags among ProfileItem."""

    operator: str
    account: str  # whose profile changed
    fields: Tuple[TextField, ...]

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> "ProfileCallback":
        fields = []
        for item in mappings(body.get("ProfileItem")):
            tag, value = text(item.get("Tag")), item.get("Value")
            is_text_tag = tag in PROFILE_TEXT_TAGS or tag.startswith(PROFILE_CUSTOM_PREFIX)
            if is_text_tag and isinstance(value, str) and value.strip():
                fields.append(TextField(tag, value))
        return cls(operator=text(body.get("Operator_Account")), account=text(body.get("From_Account")),
                   fields=tuple(fields))


@dataclass(frozen=True)
class JoinRequest:
    """``Group.CallbackBeforeApplyJoinGroup``: answered 0 or refused; ``ApplyMsg`` only on newer pages."""

    requester: str
    group_id: str
    group_type: str
    fields: Tuple[TextField, ...]

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> "JoinRequest":
        return cls(requester=text(body.get("Requestor_Account")), group_id=text(body.get("GroupId")),
                   group_type=text(body.get("Type")), fields=_fields(body, ("ApplyMsg",)))


@dataclass(frozen=True)
class MemberFieldCallback:
    """``Group.CallbackAfterMemberFieldChanged``: a member's name card (群名片) after it changed."""

    operator: str
    member: str
    group_id: str
    fields: Tuple[TextField, ...]

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> "MemberFieldCallback":
        # cloud.tencent.com documents Modified_Account, tencentcloud.com Member_Account: read either.
        member = text(body.get("Member_Account")) or text(body.get("Modified_Account"))
        return cls(operator=text(body.get("Operator_Account")), member=member, group_id=text(body.get("GroupId")),
                   fields=_fields(body, ("NameCard",)))


@dataclass(frozen=True)
class TopicCallback:
    """``Group.CallbackBeforeCreateTopic`` and ``Group.CallbackAfterTopicInfoChanged`` (Communities).
    The documented after-change body names no TopicId; one is read when IM sends it."""

    operator: str
    group_id: str
    topic_id: str
    fields: Tuple[TextField, ...]

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> "TopicCallback":
        return cls(operator=text(body.get("Operator_Account")), group_id=text(body.get("GroupId")),
                   topic_id=text(body.get("TopicId")),
                   fields=_fields(body, GROUP_TEXT_FIELDS) + _custom_fields(body) + _image(body, "FaceUrl"))
