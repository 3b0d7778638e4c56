"""The job reference: what to withdraw, signed, carried through CI in ``DataId``.

CI's result callbacks are unsigned (cos-ci-moderation.md §5.3), so the only
thing a forger cannot fake is our own HMAC over the message coordinates. No
database is needed: the reference itself says which message to withdraw.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Callable, Optional

from imguard.im.callbacks import MessageCallback

VERSION = "v1"
MAX_DATA_ID_BYTES = 512  # CI's DataId limit
_MAC_BYTES = 16


class InvalidJobRef(ValueError):
    """The DataId is missing, malformed, or not signed with our key."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class JobRef:
    scene: str  # "c2c" or "group"
    kind: str  # "audio" or "video": which CI query confirms the verdict
    sender: str
    receiver: str = ""  # C2C
    msg_key: str = ""  # C2C
    group_id: str = ""  # group
    msg_seq: int = 0  # group
    topic_id: str = ""  # group, topic-enabled communities
    issued: int = 0  # Unix seconds

    @classmethod
    def for_message(cls, message: MessageCallback, kind: str, clock: Callable[[], float] = time.time) -> "JobRef":
        return cls(
            scene=message.scene,
            kind=kind,
            sender=message.sender,
            receiver=message.receiver,
            msg_key=message.msg_key,
            group_id=message.group_id,
            msg_seq=message.msg_seq or 0,
            topic_id=message.topic_id,
            issued=int(clock()),
        )

    def _fields(self) -> list:
        return [self.scene, self.kind, self.sender, self.receiver, self.msg_key,
                self.group_id, self.msg_seq, self.topic_id, self.issued]

    def sign(self, key: str) -> str:
        payload = _b64(json.dumps(self._fields(), ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
        data_id = f"{VERSION}.{payload}.{_b64(_mac(key, payload))}"
        if len(data_id.encode("ascii")) > MAX_DATA_ID_BYTES:
            raise InvalidJobRef(f"job reference is {len(data_id)} bytes, over CI's {MAX_DATA_ID_BYTES}")
        return data_id

    @classmethod
    def verify(cls, data_id: Optional[str], key: str) -> "JobRef":
        """The reference inside ``data_id``, or InvalidJobRef if we did not sign it."""
        if not data_id or not isinstance(data_id, str):
            raise InvalidJobRef("no DataId")
        parts = data_id.split(".")
        if len(parts) != 3 or parts[0] != VERSION:
            raise InvalidJobRef("DataId is not an imguard job reference")
        _, payload, mac = parts
        try:
            given = _unb64(mac)
            fields = json.loads(_unb64(payload).decode("utf-8"))
        except (binascii.Error, ValueError, UnicodeDecodeError):
            raise InvalidJobRef("DataId is not decodable") from None
        if not hmac.compare_digest(given, _mac(key, payload)):
            raise InvalidJobRef("DataId signature does not match")
        try:
            scene, kind, sender, receiver, msg_key, group_id, msg_seq, topic_id, issued = fields
            ref = cls(scene, kind, sender, receiver, msg_key, group_id, int(msg_seq), topic_id, int(issued))
        except (TypeError, ValueError):
            raise InvalidJobRef("DataId payload has the wrong shape") from None
        if ref.scene not in ("c2c", "group") or ref.kind not in ("audio", "video"):
            raise InvalidJobRef("DataId names an unknown scene or kind")
        return ref


def _mac(key: str, payload: str) -> bytes:
    return hmac.new(key.encode("utf-8"), payload.encode("ascii"), hashlib.sha256).digest()[:_MAC_BYTES]
