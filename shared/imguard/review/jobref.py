"""The job reference: what to withdraw, signed, carried through CI in ``DataId``.

CI's result callbacks are unsigned (cos-ci-moderation.md §5.3), so the only
thing a forger cannot fake is our own HMAC over the message coordinates and the
media CI was asked about. No database is needed: the reference itself says
which message and which file the verdict is for, and IM's own records are read
back before anything is withdrawn (imguard.review.confirm).

``v2.<payload>.<mac>``: both parts unpadded URL-safe base64, the MAC over the
payload's text. The MAC is checked before the payload is decoded or parsed, and
both parts must be in their one canonical encoding, so nothing an attacker
writes reaches a parser unless we signed it.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

from imguard.im.callbacks import MessageCallback
from imguard.im.messages import extract

VERSION = "v2"
MAX_DATA_ID_BYTES = 512  # CI's DataId limit
_MAC_BYTES = 16
_MEDIA_DIGEST_BYTES = 16
# CI retries a callback every 30 minutes for a day (cos-ci-moderation.md §5); a long video's review
# takes a while before that. Older references are refused: a leaked one does not stay useful for ever.
MAX_AGE_S = 3 * 86400
MAX_FUTURE_S = 300  # clocks of two SCF instances disagree a little, never by minutes
_SHAPE = re.compile(r"v2\.([A-Za-z0-9_-]{1,486})\.([A-Za-z0-9_-]{22})")


class InvalidJobRef(ValueError):
    """The DataId is missing, malformed, stale, or not signed with our key."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    """Strict: the one canonical encoding only (a lenient decoder accepts several spellings of one value)."""
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64(data) != text:
        raise binascii.Error("not canonical base64")
    return data


def media_digest(url: str) -> str:
    """What the reference binds: a digest of the reviewed file's URL (the URL itself may be long)."""
    return _b64(hashlib.sha256(url.encode("utf-8", "surrogatepass")).digest()[:_MEDIA_DIGEST_BYTES])


@dataclass(frozen=True)
class JobRef:
    scene: str  # "c2c" or "group"
    kind: str  # "audio" or "video": which CI query confirms the verdict
    sender: str
    media: str  # media_digest() of the URL CI reviews
    receiver: str = ""  # C2C
    msg_key: str = ""  # C2C
    group_id: str = ""  # group
    msg_seq: int = 0  # group
    topic_id: str = ""  # group, topic-enabled communities
    issued: int = 0  # Unix seconds

    random = None  # a job's group message always has its MsgSeq (submitted after sending)
    what = "reviewed file"

    def carried_by(self, msg_body: Any) -> bool:
        """Does a message IM holds carry the file this job reviews?"""
        return any(media_digest(item.url) == self.media for item in extract(msg_body).media)

    @classmethod
    def for_message(cls, message: MessageCallback, kind: str, url: str,
                    clock: Callable[[], float] = time.time) -> "JobRef":
        return cls(
            scene=message.scene,
            kind=kind,
            sender=message.sender,
            media=media_digest(url),
            receiver=message.receiver,
            msg_key=message.msg_key,
            group_id=message.group_id,
            msg_seq=message.msg_seq or 0,
            topic_id=message.topic_id,
            issued=int(clock()),
        )

    def _fields(self) -> list:
        return [self.scene, self.kind, self.sender, self.media, self.receiver, self.msg_key,
                self.group_id, self.msg_seq, self.topic_id, self.issued]

    def sign(self, key: str) -> str:
        payload = _b64(json.dumps(self._fields(), ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
        data_id = f"{VERSION}.{payload}.{_mac(key, payload)}"
        if len(data_id) > MAX_DATA_ID_BYTES:
            raise InvalidJobRef(f"job reference is {len(data_id)} bytes, over CI's {MAX_DATA_ID_BYTES}")
        return data_id

    @classmethod
    def verify(cls, data_id: Optional[str], keys: Sequence[str],
               clock: Callable[[], float] = time.time) -> "JobRef":
        """The reference inside ``data_id`` if one of ``keys`` signed it and it is not stale;
        InvalidJobRef otherwise."""
        if not data_id or not isinstance(data_id, str):
            raise InvalidJobRef("no DataId")
        shape = _SHAPE.fullmatch(data_id) if len(data_id) <= MAX_DATA_ID_BYTES else None
        if shape is None:
            raise InvalidJobRef("DataId is not an imguard job reference")
        payload, mac = shape.groups()
        if not any(hmac.compare_digest(mac, _mac(key, payload)) for key in keys):
            raise InvalidJobRef("DataId signature does not match")
        # Signed by us: from here on the payload is our own writing.
        try:
            scene, kind, sender, media, receiver, msg_key, group_id, msg_seq, topic_id, issued = json.loads(
                _unb64(payload).decode("utf-8"))
            ref = cls(scene, kind, sender, media, receiver, msg_key, group_id, int(msg_seq), topic_id, int(issued))
        except (binascii.Error, ValueError, TypeError):
            raise InvalidJobRef("DataId payload has the wrong shape") from None
        if ref.scene not in ("c2c", "group") or ref.kind not in ("audio", "video"):
            raise InvalidJobRef("DataId names an unknown scene or kind")
        age = clock() - ref.issued
        if age > MAX_AGE_S or age < -MAX_FUTURE_S:
            raise InvalidJobRef("DataId is too old (or from the future)")
        return ref


def _mac(key: str, payload: str) -> str:
    return _b64(hmac.new(key.encode("utf-8"), payload.encode("ascii"), hashlib.sha256).digest()[:_MAC_BYTES])
