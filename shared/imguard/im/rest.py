"""IM REST API: withdrawing and recalling messages (im-callback-protocol.md §5), reading messages,
profiles and group info back before acting on them (§5.4a), and overwriting profile and group
fields that failed moderation after the fact."""
from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Tuple

from imguard.config import Settings
from imguard.im.callbacks import mappings
from imguard.im.fields import APP_DEFINED
from imguard.logs import clip
from imguard.im.usersig import UserSigCache

WITHDRAWN = "withdrawn"
UPDATED = "updated"
READ = "read"
ALREADY_WITHDRAWN = "already_withdrawn"
NOT_FOUND = "not_found"
FAILED = "failed"

# Topic callbacks say Name where the topic REST APIs say TopicName.
_TOPIC_NAMES = {"Name": "TopicName"}
_CALLBACK_NAMES = {v: k for k, v in _TOPIC_NAMES.items()}

# Codes worth another try after a pause: internal errors and rate limits.
TRANSIENT_CODES = frozenset({91000, 10002, 60007, 60011, 60018, 60019})
USERSIG_CODES = range(70001, 70017)
_RETRY, _NEW_SIG = "retry", "new_sig"

# IM's REST server gives up after 3 s; waiting a little longer sees its answer.
CONNECT_TIMEOUT_S = 2.0
READ_TIMEOUT_S = 5.0
# The least time an attempt is given; the deadline is overrun by at most twice this (connect + read).
MIN_ATTEMPT_S = 0.2


@dataclass(frozen=True)
class RestResult:
    status: str  # withdrawn, updated, read, already_withdrawn, not_found or failed
    error_code: Optional[int] = None
    attempts: int = 1
    detail: str = ""
    answer: Mapping[str, Any] = field(default_factory=dict, repr=False)  # IM's JSON, for reads

    @property
    def done(self) -> bool:
        """Nothing left to do: the message is gone (or the field overwritten), one way or another."""
        return self.status != FAILED


def _classify(code: Any, not_found_code: Optional[int], success: str = WITHDRAWN) -> str:
    if code == 0:
        return success
    if code == 20023:
        return ALREADY_WITHDRAWN
    if code == not_found_code:
        return NOT_FOUND
    if code in USERSIG_CODES:
        return _NEW_SIG
    if code in TRANSIENT_CODES:
        return _RETRY
    return FAILED


def _c2c_outcome(answer: Mapping[str, Any]) -> Tuple[str, Any]:
    code = answer.get("ErrorCode")
    return _classify(code, 20022), code


def _update_outcome(answer: Mapping[str, Any]) -> Tuple[str, Any]:
    code = answer.get("ErrorCode")
    return _classify(code, None, success=UPDATED), code


def _read_outcome(answer: Mapping[str, Any]) -> Tuple[str, Any]:
    code = answer.get("ErrorCode")
    return _classify(code, None, success=READ), code


def _recall_outcome(msg_seq: int) -> Callable[[Mapping[str, Any]], Tuple[str, Any]]:
    def outcome(answer: Mapping[str, Any]) -> Tuple[str, Any]:
        code = answer.get("ErrorCode")
        if code != 0:
            return _classify(code, 10030), code
        # ErrorCode 0 only says the request was read: the RetCode of the MsgSeq we asked for is the
        # answer, and without one nothing is known to be recalled.
        for item in mappings(answer.get("RecallRetList")):
            if item.get("MsgSeq") == msg_seq and isinstance(item.get("RetCode"), int):
                return _classify(item["RetCode"], 10030), item["RetCode"]
        return FAILED, None

    return outcome


class ImRestClient:
    """One per warm instance: one keep-alive session, one cached UserSig."""

    def __init__(
        self,
        base_url: str,
        sdk_app_id: int,
        identifier: str,
        usersig: UserSigCache,
        session: Any = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self._base = base_url.rstrip("/")
        self._sdk_app_id = sdk_app_id
        self._identifier = identifier
        self._usersig = usersig
        # Imported here, not at module level: a function that never calls IM never pays for requests.
        import requests

        self._session = session or requests.Session()
        self._network_errors = requests.RequestException
        self._sleep = sleep

    @classmethod
    def from_settings(cls, settings: Settings) -> "ImRestClient":
        api = settings.im_api
        return cls(api.base_url, settings.sdk_app_id, api.admin,
                   UserSigCache(settings.sdk_app_id, api.secret_key, api.admin))

    @classmethod
    def from_env(cls, environ: Optional[Mapping[str, str]] = None) -> "ImRestClient":
        """For the command line: IM_SDKAPPID, IM_SECRET_KEY, ... from the environment (ConfigError names what
        is missing)."""
        return cls.from_settings(Settings.from_env(environ).require("IM_SECRET_KEY"))

    def withdraw_c2c(self, sender: str, receiver: str, msg_key: str, deadline: float) -> RestResult:
        body = {"From_Account": sender, "To_Account": receiver, "MsgKey": msg_key}
        return self._call("v4/openim/admin_msgwithdraw", body, _c2c_outcome, deadline)

    def recall_group(self, group_id: str, msg_seq: int, topic_id: str, deadline: float) -> RestResult:
        body: Dict[str, Any] = {"GroupId": group_id, "MsgSeqList": [{"MsgSeq": msg_seq}]}
        if topic_id:
            body["TopicId"] = topic_id
        return self._call("v4/group_open_http_svc/group_msg_recall", body, _recall_outcome(msg_seq), deadline)

    def c2c_history(self, operator: str, peer: str, min_time: int, max_time: int, deadline: float,
                    last_msg_key: str = "") -> RestResult:
        """One page of the conversation between two users, newest first (admin_getroammsg)."""
        body: Dict[str, Any] = {"Operator_Account": operator, "Peer_Account": peer, "MaxCnt": 100,
                                "MinTime": min_time, "MaxTime": max_time}
        if last_msg_key:
            body["LastMsgKey"] = last_msg_key
        return self._call("v4/openim/admin_getroammsg", body, _read_outcome, deadline)

    def group_history(self, group_id: str, msg_seq: Optional[int], topic_id: str, deadline: float,
                      count: int = 1) -> RestResult:
        """``count`` group messages up to ``msg_seq``, recalled ones too (group_msg_get_simple); without a
        ``msg_seq``, the latest ones (the page documents ReqMsgSeq as optional: the newest come first)."""
        body: Dict[str, Any] = {"GroupId": group_id, "ReqMsgNumber": count, "WithRecalledMsg": 1}
        if msg_seq is not None:
            body["ReqMsgSeq"] = msg_seq
        if topic_id:
            body["TopicId"] = topic_id
        return self._call("v4/group_open_http_svc/group_msg_get_simple", body, _read_outcome, deadline)

    def set_no_speaking(self, account: str, mute_s: int, deadline: float) -> RestResult:
        """IM's global mute, C2C and group messages alike (setnospeaking; 0 lifts it). A muted sender is
        refused by IM itself (20012 / 10017) and no before-send callback fires."""
        body = {"Set_Account": account, "C2CmsgNospeakingTime": mute_s, "GroupmsgNospeakingTime": mute_s}
        return self._call("v4/openconfigsvr/setnospeaking", body, _update_outcome, deadline)

    def forbid_send_msg(self, group_id: str, account: str, mute_s: int, deadline: float) -> RestResult:
        """A mute in one group (forbid_send_msg; 0 lifts it). Work groups do not support it."""
        body = {"GroupId": group_id, "Members_Account": [account], "MuteTime": mute_s}
        return self._call("v4/group_open_http_svc/forbid_send_msg", body, _update_outcome, deadline)

    def get_member_card(self, group_id: str, deadline: float) -> RestResult:
        """Every member's name card (get_group_member_info pages only Communities; others answer whole)."""
        body = {"GroupId": group_id, "MemberInfoFilter": ["NameCard"]}
        return self._call("v4/group_open_http_svc/get_group_member_info", body, _read_outcome, deadline)

    def modify_member_card(self, group_id: str, member: str, fields: Mapping[str, str], deadline: float) -> RestResult:
        body = {"GroupId": group_id, "Member_Account": member, **fields}
        return self._call("v4/group_open_http_svc/modify_group_member_info", body, _update_outcome, deadline)

    def get_topic(self, group_id: str, topic_id: str, fields: Sequence[str], deadline: float) -> RestResult:
        body = {"GroupId": group_id, "From_Account": self._identifier, "TopicIdList": [topic_id],
                "ResponseFilter": [_TOPIC_NAMES.get(name, name) for name in fields]}
        return self._call("v4/million_group_open_http_svc/get_topic", body, _read_outcome, deadline)

    def modify_topic(self, group_id: str, topic_id: str, fields: Mapping[str, str], deadline: float) -> RestResult:
        body = {"GroupId": group_id, "TopicId": topic_id, **{_TOPIC_NAMES.get(k, k): v for k, v in fields.items()}}
        return self._call("v4/million_group_open_http_svc/modify_topic", body, _update_outcome, deadline)

    def get_profile(self, account: str, tags: Sequence[str], deadline: float) -> RestResult:
        body = {"To_Account": [account], "TagList": list(tags)}
        return self._call("v4/profile/portrait_get", body, _read_outcome, deadline)

    def get_group(self, group_id: str, fields: Sequence[str], deadline: float) -> RestResult:
        base = [name for name in fields if not name.startswith(APP_DEFINED)]
        custom = [name[len(APP_DEFINED):] for name in fields if name.startswith(APP_DEFINED)]
        wanted: Dict[str, Any] = {"GroupBaseInfoFilter": base}
        if custom:
            wanted["AppDefinedDataFilter_Group"] = custom
        body = {"GroupIdList": [group_id], "ResponseFilter": wanted}
        return self._call("v4/group_open_http_svc/get_group_info", body, _read_outcome, deadline)

    def set_profile(self, account: str, items: Mapping[str, str], deadline: float) -> RestResult:
        body = {"From_Account": account, "ProfileItem": [{"Tag": tag, "Value": value} for tag, value in items.items()]}
        return self._call("v4/profile/portrait_set", body, _update_outcome, deadline)

    def modify_group(self, group_id: str, fields: Mapping[str, str], deadline: float) -> RestResult:
        body: Dict[str, Any] = {"GroupId": group_id}
        custom = [{"Key": name[len(APP_DEFINED):], "Value": value} for name, value in fields.items()
                  if name.startswith(APP_DEFINED)]
        body.update({name: value for name, value in fields.items() if not name.startswith(APP_DEFINED)})
        if custom:
            body["AppDefinedData"] = custom
        return self._call("v4/group_open_http_svc/modify_group_base_info", body, _update_outcome, deadline)

    def _call(self, path: str, body: Mapping[str, Any], outcome_of, deadline: float) -> RestResult:
        """POST until the answer is final or ``deadline`` (time.monotonic()) is near.
        A UserSig complaint gets one new signature; transient trouble gets backoff."""
        attempts, pause, new_sig_tried = 0, 0.25, False
        last_code: Any = None
        detail = ""
        while True:
            attempts += 1
            status, last_code, detail, answer = self._attempt(path, body, outcome_of, deadline)
            if status in (WITHDRAWN, UPDATED, READ, ALREADY_WITHDRAWN, NOT_FOUND):
                return RestResult(status, last_code, attempts, answer=answer)
            if status == _NEW_SIG and not new_sig_tried and time.monotonic() + MIN_ATTEMPT_S < deadline:
                new_sig_tried = True
                self._usersig.invalidate()
                continue
            if status != _RETRY or time.monotonic() + pause + 1.0 > deadline:
                return RestResult(FAILED, last_code, attempts, detail)
            self._sleep(pause + random.uniform(0, pause / 2))
            pause = min(pause * 2, 4.0)

    def _attempt(self, path, body, outcome_of, deadline) -> Tuple[str, Any, str, Mapping[str, Any]]:
        remaining = max(MIN_ATTEMPT_S, deadline - time.monotonic())
        params = {
            "sdkappid": self._sdk_app_id,
            "identifier": self._identifier,
            "usersig": self._usersig.get(),
            "random": random.randint(0, 4294967295),
            "contenttype": "json",
        }
        try:
            response = self._session.post(
                f"{self._base}/{path}",
                params=params,
                json=body,
                timeout=(min(CONNECT_TIMEOUT_S, remaining), min(READ_TIMEOUT_S, remaining)),
            )
        except self._network_errors as exc:
            return _RETRY, None, f"network: {type(exc).__name__}", {}
        if response.status_code != 200:
            return _RETRY, None, f"HTTP {response.status_code}", {}
        try:
            answer = response.json()
        except (ValueError, RecursionError):
            return _RETRY, None, "answer is not JSON", {}
        if not isinstance(answer, Mapping):
            return _RETRY, None, "answer is not a JSON object", {}
        status, code = outcome_of(answer)
        info = clip(str(answer.get("ErrorInfo")), 120)
        return status, code, f"ErrorCode {code}: {info}" if status not in (WITHDRAWN, UPDATED, READ) else "", answer


def profile_values(answer: Mapping[str, Any], account: str) -> Optional[Dict[str, Any]]:
    """Tag → value of ``account`` in a portrait_get answer; None when IM did not return that user
    (the top level says OK even when a user failed: each has its own ResultCode)."""
    for item in mappings(answer.get("UserProfileItem")):
        if item.get("To_Account") == account and item.get("ResultCode") == 0:
            return {p.get("Tag"): p.get("Value") for p in mappings(item.get("ProfileItem"))}
    return None


def member_card_values(answer: Mapping[str, Any], member: str) -> Optional[Dict[str, Any]]:
    """The member's fields in a get_group_member_info answer; None when IM did not list the member."""
    for item in mappings(answer.get("MemberList")):
        if item.get("Member_Account") == member:
            return dict(item)
    return None


def topic_values(answer: Mapping[str, Any], topic_id: str) -> Optional[Dict[str, Any]]:
    """The topic's fields (named as the callbacks name them) in a get_topic answer; None when missing."""
    for item in mappings(answer.get("TopicAndSelfInfo")):
        info = item.get("TopicInfo") if item.get("ErrorCode") == 0 else None
        if isinstance(info, Mapping) and info.get("TopicId") == topic_id:
            return {_CALLBACK_NAMES.get(k, k): v for k, v in info.items()}
    return None


def group_values(answer: Mapping[str, Any], group_id: str) -> Optional[Dict[str, Any]]:
    """The group's fields in a get_group_info answer; None when IM did not return it
    (the top-level ErrorCode means nothing here: each group has its own)."""
    for item in mappings(answer.get("GroupInfo")):
        if item.get("GroupId") == group_id and item.get("ErrorCode") == 0:
            values = dict(item)
            for custom in mappings(item.get("AppDefinedData")):
                values[APP_DEFINED + str(custom.get("Key"))] = custom.get("Value")
            return values
    return None
