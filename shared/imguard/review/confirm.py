"""Before a withdrawal: does IM itself hold the message the verdict is about?

The job reference proves imguard signed it and CI's query proves the verdict,
but what imguard signed came from a callback body that IM's Sign does not
cover. So the message is read back from IM (im-callback-protocol.md §5.4a): it
must exist, come from the named sender (to the named receiver), and carry what
was judged: the file CI reviewed, or the text a moderator read in the review
queue. Anything short of that withdraws nothing.

What is confirmed is a ``Target``: a JobRef (audio and video) or a queued review
item. A group message queued before delivery has no MsgSeq yet; it is found
among the group's latest messages by its sender and Random.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional, Protocol

from imguard.im.callbacks import integer, mappings, text
from imguard.im.rest import READ, TRANSIENT_CODES, USERSIG_CODES, ImRestClient, RestResult

CONFIRMED = "confirmed"  # withdraw it
ALREADY_WITHDRAWN = "already_withdrawn"  # IM shows it recalled: nothing left to do
UNCONFIRMED = "unconfirmed"  # IM does not show this message as described: never withdraw
UNAVAILABLE = "unavailable"  # IM could not be asked just now: try again when CI calls again

RECALLED_FLAG = 8  # admin_getroammsg MsgFlagBits: 8 = recalled
PLACEHOLDER_GONE, PLACEHOLDER_RECALLED = 1, 2  # group_msg_get_simple IsPlaceMsg
# C2C history is asked for around the message's own time; a page holds at most 100 messages
# (and 13 KB), and a busy second may need a few.
WINDOW_S = 60
MAX_PAGES = 5
GROUP_PAGE = 20  # group_msg_get_simple answers at most 20 messages a call


class Target(Protocol):
    scene: str  # c2c or group
    sender: str
    receiver: str
    msg_key: str
    group_id: str
    msg_seq: int  # 0: not known yet
    topic_id: str
    random: Optional[int]
    what: str  # what was judged, for the reason: "reviewed file", ...

    def carried_by(self, msg_body: Any) -> bool: ...


@dataclass(frozen=True)
class Confirmation:
    status: str
    reason: str = ""
    im_error_code: Optional[int] = None
    msg_seq: Optional[int] = None  # a group message found by its Random: what recalls it

    @property
    def confirmed(self) -> bool:
        return self.status == CONFIRMED


def confirm(im: ImRestClient, ref: Target, deadline: float) -> Confirmation:
    if ref.scene == "group":
        return _confirm_group(im, ref, deadline) if ref.msg_seq else _find_group_message(im, ref, deadline)
    return _confirm_c2c(im, ref, deadline)


def withdraw(im: ImRestClient, ref: Target, deadline: float, msg_seq: Optional[int] = None) -> RestResult:
    """Withdraw what ``confirm`` confirmed (``msg_seq``: the one it found, for a group message without one)."""
    if ref.scene == "group":
        return im.recall_group(ref.group_id, msg_seq or ref.msg_seq, ref.topic_id, deadline)
    return im.withdraw_c2c(ref.sender, ref.receiver, ref.msg_key, deadline)


def _confirm_c2c(im: ImRestClient, ref: Target, deadline: float) -> Confirmation:
    # MsgKey is documented only as an opaque id; every example (and IM's servers) spell it
    # MsgSeq_MsgRandom_MsgTime, and the time is what lets us ask for a small window.
    sent_at = integer(ref.msg_key.rsplit("_", 1)[-1]) if "_" in ref.msg_key else None
    if sent_at is None:
        return Confirmation(UNCONFIRMED, "MsgKey carries no time to look the message up by")
    max_time, last_key = sent_at + WINDOW_S, ""
    for _ in range(MAX_PAGES):
        result = im.c2c_history(ref.sender, ref.receiver, sent_at - WINDOW_S, max_time, deadline, last_key)
        failure = _read_failure(result, "C2C history")
        if failure is not None:
            return failure
        page = result.answer
        for message in mappings(page.get("MsgList")):
            if text(message.get("MsgKey")) == ref.msg_key:
                return _judge_c2c(message, ref)
        last_key, last_time = text(page.get("LastMsgKey")), integer(page.get("LastMsgTime"))
        if page.get("Complete") == 1 or not last_key or last_time is None:
            break
        max_time = last_time  # IM pages backwards in time: the next page ends where this one did
    return Confirmation(UNCONFIRMED, "IM's history has no message with this MsgKey (history off, expired, or never sent)")


def _judge_c2c(message: Mapping[str, Any], ref: Target) -> Confirmation:
    if text(message.get("From_Account")) != ref.sender or text(message.get("To_Account")) != ref.receiver:
        return Confirmation(UNCONFIRMED, "IM's message has another sender or receiver")
    flags = integer(message.get("MsgFlagBits")) or 0
    if flags & RECALLED_FLAG:
        return Confirmation(ALREADY_WITHDRAWN, "IM shows the message as recalled")
    return _carries(message.get("MsgBody"), ref)


def _confirm_group(im: ImRestClient, ref: Target, deadline: float) -> Confirmation:
    result = im.group_history(ref.group_id, ref.msg_seq, ref.topic_id, deadline)
    failure = _read_failure(result, "group history")
    if failure is not None:
        return failure
    for message in mappings(result.answer.get("RspMsgList")):
        if integer(message.get("MsgSeq")) != ref.msg_seq:
            continue
        return _judge_group(message, ref)
    return Confirmation(UNCONFIRMED, "IM's history has no message with this MsgSeq (an AVChatRoom keeps none)")


def _find_group_message(im: ImRestClient, ref: Target, deadline: float) -> Confirmation:
    """A group message judged before delivery: among the group's latest, the one from its sender with its Random."""
    if ref.random is None:
        return Confirmation(UNCONFIRMED, "no MsgSeq and no Random to find the group message by")
    below: Optional[int] = None
    for _ in range(MAX_PAGES):
        result = im.group_history(ref.group_id, below, ref.topic_id, deadline, count=GROUP_PAGE)
        failure = _read_failure(result, "group history")
        if failure is not None:
            return failure
        page = mappings(result.answer.get("RspMsgList"))
        for message in page:
            if integer(message.get("MsgRandom")) == ref.random and text(message.get("From_Account")) == ref.sender:
                found = _judge_group(message, ref)
                return Confirmation(found.status, found.reason, found.im_error_code, integer(message.get("MsgSeq")))
        seqs = [seq for seq in (integer(m.get("MsgSeq")) for m in page) if seq is not None]
        # IsFinished is not read: whether it means "the whole history" or "the range asked for" is not
        # settled in the docs, and the second would end the search after one page. An empty page does.
        if not seqs or min(seqs) <= 1:
            break
        below = min(seqs) - 1  # IM's own advice: the next page ends just below this one
    return Confirmation(UNCONFIRMED, f"not among the group's latest {MAX_PAGES * GROUP_PAGE} messages "
                                     f"(history off, an AVChatRoom, or long ago)")


def _judge_group(message: Mapping[str, Any], ref: Target) -> Confirmation:
    if text(message.get("From_Account")) != ref.sender:
        return Confirmation(UNCONFIRMED, "IM's message has another sender")
    placeholder = integer(message.get("IsPlaceMsg")) or 0
    if placeholder == PLACEHOLDER_RECALLED:
        return Confirmation(ALREADY_WITHDRAWN, "IM shows the message as recalled")
    if placeholder == PLACEHOLDER_GONE:
        return Confirmation(UNCONFIRMED, "IM shows the message as deleted or expired")
    return _carries(message.get("MsgBody"), ref)


def _carries(msg_body: Any, ref: Target) -> Confirmation:
    if ref.carried_by(mappings(msg_body)):
        return Confirmation(CONFIRMED)
    return Confirmation(UNCONFIRMED, f"IM's message does not carry the {ref.what}")


def _read_failure(result: RestResult, what: str) -> Optional[Confirmation]:
    """None when IM answered the read; otherwise whether asking again later could help."""
    if result.status == READ:
        return None
    code = result.error_code
    if code is None or code in TRANSIENT_CODES or code in USERSIG_CODES:
        return Confirmation(UNAVAILABLE, f"could not read {what}: {result.detail}", code)
    # IM answered, and said no: no such group, a type that keeps no history, ...
    return Confirmation(UNCONFIRMED, f"IM refused to show {what}: {result.detail}", code)
