"""A view of ``ContentCallback.ResultNotify``: IM's own cloud audit reporting a verdict
(im-callback-protocol.md §7). The body has no CallbackCommand, and TextContent is an
array in the current docs but a string in an older one; both are read."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional, Tuple

from imguard.im.callbacks import integer, text

# IM's Scene values, folded onto imguard's scenes; the rest keep their own name, lower-cased.
_SCENES = {"C2C": "c2c", "C2CCustom": "c2c", "Group": "group", "GroupCustom": "group"}


def _texts(value: Any) -> Tuple[str, ...]:
    if isinstance(value, str):
        return (value,) if value else ()
    if isinstance(value, list):
        return tuple(text(v) for v in value if text(v))
    return ()


@dataclass(frozen=True)
class CloudAuditResult:
    im_scene: str  # C2C, Group, UserInfo, ...
    sender: str
    receiver: str
    group_id: str
    content_type: str  # Text, Image, Audio, Video
    texts: Tuple[str, ...]
    file_url: str
    msg_id: str  # C2C: the MsgKey; group: the MsgSeq
    blocked: bool
    audit_request_id: str
    keywords: Tuple[str, ...] = ()
    suggestion: str = ""
    label: str = ""
    sub_label: str = ""
    lib_name: str = ""

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> "CloudAuditResult":
        contact = body.get("ContactItem") if isinstance(body.get("ContactItem"), Mapping) else {}
        return cls(
            im_scene=text(body.get("Scene")),
            sender=text(body.get("From_Account")),
            receiver=text(contact.get("To_Account")),
            group_id=text(contact.get("ToGroupId")),
            content_type=text(body.get("ContentType")),
            texts=_texts(body.get("TextContent")),
            file_url=text(body.get("FileURL")),
            msg_id=text(body.get("MsgID")),
            blocked=integer(body.get("CtxcbResult")) == 1,
            audit_request_id=text(body.get("CtxcbRequestId")),
            keywords=_texts(body.get("CtxcbKeywords")),
            suggestion=text(body.get("CtxcbSuggestion")),
            label=text(body.get("CtxcbLabel")),
            sub_label=text(body.get("CtxcbSubLabel")),
            lib_name=text(body.get("CtxcbLibName")),
        )

    @property
    def scene(self) -> str:
        return _SCENES.get(self.im_scene, self.im_scene.lower() or "unknown")

    @property
    def msg_key(self) -> str:
        return self.msg_id if self.scene == "c2c" else ""

    @property
    def msg_seq(self) -> Optional[int]:
        return integer(self.msg_id) if self.scene == "group" else None
