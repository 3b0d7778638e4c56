"""A fake IM REST API: checks every request the way IM does, keeps the messages, profiles and
groups IM would hold, and records withdrawals.

The UserSig is verified by taking it apart: IM's URL-safe base64 variant
(``*`` ``-`` ``_`` for ``+`` ``/`` ``=``), zlib, then the HMAC-SHA256 over the
TLS fields with the app's secret key, and its expiry (im-callback-protocol.md §6).

Read-back answers follow Tencent's documentation (tencentyun/intlcloud-documents @ 02ec31c,
yehe_doc/中间件与通信/即时通信 IM/服务端 API/REST API/): 查询单聊消息 (admin_getroammsg:
MsgFlagBits 8 = recalled, pages backwards with Complete/LastMsgTime/LastMsgKey), 拉取群历史消息
(group_msg_get_simple: IsPlaceMsg 1 = deleted or expired, 2 = recalled, only with WithRecalledMsg),
拉取资料 (portrait_get: a ResultCode per user) and 获取群详细资料 (get_group_info: an ErrorCode per
group, the top-level one meaningless). Errors: 20022 no such C2C message, 10030 no such group
message, 10010 no such group, 10044 the group type keeps no history (AVChatRoom), 40003 no such user.

Mutes (im-callback-protocol.md §5.4a; 设置全局禁言 269/4230, 批量禁言和取消禁言 269/1627, the intl pages
1047/34923 and 34924 with the same fields): setnospeaking takes Set_Account and at least one of
C2CmsgNospeakingTime / GroupmsgNospeakingTime (seconds, 0 lifts, 4294967295 forever; 130008 when neither
is there), getnospeaking reads both back; forbid_send_msg takes GroupId, Members_Account (at most 500)
and MuteTime, and Private/Work groups do not support it (the page says so; its error code is not
documented, 10004 is assumed here).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
import time
import zlib
from collections import defaultdict, deque
from typing import Any, Deque, Dict, List, Optional, Tuple

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response


def decode_usersig(sig: str) -> Dict[str, Any]:
    raw = sig.replace("*", "+").replace("-", "/").replace("_", "=")
    return json.loads(zlib.decompress(base64.b64decode(raw)))


class FakeIM:
    WITHDRAW = "/v4/openim/admin_msgwithdraw"
    RECALL = "/v4/group_open_http_svc/group_msg_recall"
    PORTRAIT_SET = "/v4/profile/portrait_set"
    MODIFY_GROUP = "/v4/group_open_http_svc/modify_group_base_info"
    ROAM = "/v4/openim/admin_getroammsg"
    GROUP_HISTORY = "/v4/group_open_http_svc/group_msg_get_simple"
    PORTRAIT_GET = "/v4/profile/portrait_get"
    GROUP_INFO = "/v4/group_open_http_svc/get_group_info"
    MEMBER_INFO = "/v4/group_open_http_svc/get_group_member_info"
    MODIFY_MEMBER = "/v4/group_open_http_svc/modify_group_member_info"
    TOPIC_GET = "/v4/million_group_open_http_svc/get_topic"
    TOPIC_MODIFY = "/v4/million_group_open_http_svc/modify_topic"
    SET_NO_SPEAKING = "/v4/openconfigsvr/setnospeaking"
    GET_NO_SPEAKING = "/v4/openconfigsvr/getnospeaking"
    FORBID_SEND = "/v4/group_open_http_svc/forbid_send_msg"
    ROAM_PAGE = 100  # messages per admin_getroammsg page (IM's real bound is 13 KB of answer)

    def __init__(self, server: HTTPServer, sdk_app_id: int, secret_key: str, admin: str = "administrator"):
        self.server = server
        self.sdk_app_id = sdk_app_id
        self.secret_key = secret_key
        self.admin = admin
        self.requests: List[Tuple[str, Dict[str, str], Dict[str, Any]]] = []
        self.withdrawn: List[Dict[str, Any]] = []  # what IM really removed
        self.profiles: Dict[str, Dict[str, Any]] = defaultdict(dict)  # account -> tag -> value, as IM holds it
        self.groups: Dict[str, Dict[str, Any]] = defaultdict(dict)  # group -> field -> value, as IM holds it
        self.c2c: Dict[str, Dict[str, Any]] = {}  # MsgKey -> the message as admin_getroammsg shows it
        self.group_msgs: Dict[Tuple[str, str, int], Dict[str, Any]] = {}  # (GroupId, TopicId, MsgSeq) -> message
        self.no_history: set = set()  # groups whose type keeps no history (AVChatRoom)
        self.name_cards: Dict[str, Dict[str, str]] = defaultdict(dict)  # group -> member -> NameCard
        self.topics: Dict[Tuple[str, str], Dict[str, Any]] = {}  # (GroupId, TopicId) -> TopicName, Notification, ...
        self.roam_page = self.ROAM_PAGE
        self.muted: Dict[str, Dict[str, int]] = {}  # account -> {C2C, Group}: seconds of the global mute
        self.group_muted: Dict[Tuple[str, str], int] = {}  # (GroupId, account) -> MuteTime
        self.group_types: Dict[str, str] = {}  # GroupId -> Public, Work, ... (Work refuses forbid_send_msg)
        self.usersigs: List[str] = []
        self._scripted: Dict[str, Deque[Dict[str, Any]]] = defaultdict(deque)
        self._lock = threading.Lock()
        server.expect_request(re.compile("/v4/.*"), method="POST").respond_with_handler(self._handle)

    @property
    def base_url(self) -> str:
        return f"http://{self.server.host}:{self.server.port}"

    # -- what IM holds, as tests say it -------------------------------------------

    def deliver_c2c(self, callback: Dict[str, Any]) -> Dict[str, Any]:
        """Keep a C2C message as IM stores it once delivered, from its send callback's body."""
        stored = {"From_Account": callback["From_Account"], "To_Account": callback["To_Account"],
                  "MsgSeq": callback["MsgSeq"], "MsgRandom": callback["MsgRandom"],
                  "MsgTimeStamp": callback["MsgTime"], "MsgFlagBits": 0, "IsPeerRead": 0,
                  "MsgKey": callback["MsgKey"], "MsgBody": callback["MsgBody"],
                  "CloudCustomData": callback.get("CloudCustomData", "")}
        with self._lock:
            self.c2c[callback["MsgKey"]] = stored
        return stored

    def deliver_group(self, callback: Dict[str, Any]) -> Dict[str, Any]:
        """Keep a group message as IM stores it, from its after-send callback's body (which has the MsgSeq)."""
        stored = {"From_Account": callback["From_Account"], "IsPlaceMsg": 0, "MsgBody": callback["MsgBody"],
                  "MsgPriority": 1, "MsgRandom": callback.get("Random", 0), "MsgSeq": callback["MsgSeq"],
                  "MsgTimeStamp": callback.get("MsgTime", 0)}
        with self._lock:
            self.group_msgs[(callback["GroupId"], callback.get("TopicId") or "", callback["MsgSeq"])] = stored
        return stored

    def apply_profile_change(self, callback: Dict[str, Any]) -> None:
        """What IM holds once a Profile.CallbackPortraitSet change has happened."""
        with self._lock:
            self.profiles[callback["From_Account"]].update({i["Tag"]: i["Value"] for i in callback["ProfileItem"]})

    def apply_group_change(self, callback: Dict[str, Any]) -> None:
        """What IM holds once a Group.CallbackAfterGroupInfoChanged change has happened."""
        with self._lock:
            group = self.groups[callback["GroupId"]]
            group.update({k: v for k, v in callback.items() if k in ("Name", "Introduction", "Notification", "FaceUrl")})
            group.setdefault("AppDefinedData", {}).update(
                {item["Key"]: item["Value"] for item in callback.get("UserDefinedDataList", [])})

    def calls_to(self, path: str) -> List[Dict[str, Any]]:
        """The bodies of the requests made to ``path``."""
        return [body for p, _, body in self.requests if p == path]

    def script(self, path: str, *answers: Any) -> None:
        """Answer the next requests to ``path`` with these bodies (or raw werkzeug Responses), then behave normally."""
        self._scripted[path].extend(answers)

    def _handle(self, request: Request) -> Response:
        query = dict(request.args)
        body = json.loads(request.data or b"{}")
        with self._lock:
            self.requests.append((request.path, query, body))
        problem = self._check_common(query)
        if problem is not None:
            return self._json({"ActionStatus": "FAIL", "ErrorCode": problem[0], "ErrorInfo": problem[1]})
        with self._lock:
            if self._scripted[request.path]:
                answer = self._scripted[request.path].popleft()
                return answer if isinstance(answer, Response) else self._json(answer)
        if request.path == self.WITHDRAW:
            return self._json(self._withdraw(body))
        if request.path == self.RECALL:
            return self._json(self._recall(body))
        if request.path == self.PORTRAIT_SET:
            return self._json(self._portrait_set(body))
        if request.path == self.MODIFY_GROUP:
            return self._json(self._modify_group(body))
        if request.path == self.ROAM:
            return self._json(self._roam(body))
        if request.path == self.GROUP_HISTORY:
            return self._json(self._group_history(body))
        if request.path == self.SET_NO_SPEAKING:
            return self._json(self._set_no_speaking(body))
        if request.path == self.GET_NO_SPEAKING:
            with self._lock:
                mute = self.muted.get(body.get("Get_Account"), {})
            return self._json({"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": "",
                               "C2CmsgNospeakingTime": mute.get("C2C", 0), "GroupmsgNospeakingTime": mute.get("Group", 0)})
        if request.path == self.FORBID_SEND:
            return self._json(self._forbid_send(body))
        if request.path == self.PORTRAIT_GET:
            return self._json(self._portrait_get(body))
        if request.path == self.GROUP_INFO:
            return self._json(self._group_info(body))
        if request.path == self.MEMBER_INFO:
            return self._json(self._member_info(body))
        if request.path == self.MODIFY_MEMBER:
            return self._json(self._modify_member(body))
        if request.path == self.TOPIC_GET:
            return self._json(self._get_topic(body))
        if request.path == self.TOPIC_MODIFY:
            return self._json(self._modify_topic(body))
        return self._json({"ActionStatus": "FAIL", "ErrorCode": 60003, "ErrorInfo": "unknown command"})

    def _check_common(self, query: Dict[str, str]) -> Optional[Tuple[int, str]]:
        if query.get("sdkappid") != str(self.sdk_app_id):
            return 60006, "sdkappid invalid"
        if query.get("identifier") != self.admin:
            return 60010, "admin required"
        if query.get("contenttype") != "json":
            return 60002, "contenttype must be json"
        if not query.get("random", "").isdigit() or not 0 <= int(query["random"]) <= 4294967295:
            return 60002, "random must be a 32-bit unsigned integer"
        sig = query.get("usersig", "")
        self.usersigs.append(sig)
        try:
            doc = decode_usersig(sig)
        except Exception:
            return 70003, "usersig invalid"
        content = (
            f"TLS.identifier:{doc['TLS.identifier']}\nTLS.sdkappid:{doc['TLS.sdkappid']}\n"
            f"TLS.time:{doc['TLS.time']}\nTLS.expire:{doc['TLS.expire']}\n"
        )
        expected = base64.b64encode(hmac.new(self.secret_key.encode(), content.encode(), hashlib.sha256).digest())
        if not hmac.compare_digest(expected.decode(), doc["TLS.sig"]):
            return 70009, "usersig key mismatch"
        if doc["TLS.identifier"] != self.admin:
            return 70013, "usersig identifier mismatch"
        if doc["TLS.sdkappid"] != self.sdk_app_id:
            return 70014, "usersig sdkappid mismatch"
        if doc["TLS.time"] + doc["TLS.expire"] < time.time():
            return 70001, "usersig expired"
        return None

    def _withdraw(self, body: Dict[str, Any]) -> Dict[str, Any]:
        with self._lock:
            message = self.c2c.get(body.get("MsgKey"))
            if message is None or (message["From_Account"], message["To_Account"]) != (
                    body.get("From_Account"), body.get("To_Account")):
                return {"ActionStatus": "FAIL", "ErrorCode": 20022, "ErrorInfo": "msg not found"}
            if message["MsgFlagBits"] & 8:
                return {"ActionStatus": "FAIL", "ErrorCode": 20023, "ErrorInfo": "msg already withdrawn"}
            message["MsgFlagBits"] |= 8
            self.withdrawn.append(dict(body, kind="c2c"))
        return {"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": ""}

    def _recall(self, body: Dict[str, Any]) -> Dict[str, Any]:
        results = []
        with self._lock:
            for item in body.get("MsgSeqList", []):
                message = self.group_msgs.get((body.get("GroupId"), body.get("TopicId") or "", item["MsgSeq"]))
                if message is None or message["IsPlaceMsg"] != 0:
                    results.append({"MsgSeq": item["MsgSeq"], "RetCode": 10030})
                    continue
                message["IsPlaceMsg"] = 2
                self.withdrawn.append({"kind": "group", "GroupId": body.get("GroupId"),
                                       "TopicId": body.get("TopicId"), "MsgSeq": item["MsgSeq"]})
                results.append({"MsgSeq": item["MsgSeq"], "RetCode": 0})
        return {"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": "", "RecallRetList": results}

    def _roam(self, body: Dict[str, Any]) -> Dict[str, Any]:
        pair = {body.get("Operator_Account"), body.get("Peer_Account")}
        if not all(isinstance(body.get(k), int) for k in ("MaxCnt", "MinTime", "MaxTime")):
            return {"ActionStatus": "FAIL", "ErrorCode": 90001, "ErrorInfo": "MaxCnt, MinTime and MaxTime required"}
        with self._lock:
            found = [dict(m) for m in self.c2c.values() if {m["From_Account"], m["To_Account"]} == pair
                     and body["MinTime"] <= m["MsgTimeStamp"] <= body["MaxTime"]]
        found.sort(key=lambda m: (m["MsgTimeStamp"], m["MsgKey"]), reverse=True)  # newest first
        if body.get("LastMsgKey"):
            keys = [m["MsgKey"] for m in found]
            found = found[keys.index(body["LastMsgKey"]) + 1:] if body["LastMsgKey"] in keys else []
        page = found[: min(body["MaxCnt"], self.roam_page)]
        last = page[-1] if page else None
        return {"ActionStatus": "OK", "ErrorInfo": "", "ErrorCode": 0, "Complete": int(len(page) == len(found)),
                "MsgCnt": len(page), "LastMsgTime": last["MsgTimeStamp"] if last else 0,
                "LastMsgKey": last["MsgKey"] if last else "", "MsgList": page}

    def _group_history(self, body: Dict[str, Any]) -> Dict[str, Any]:
        group = body.get("GroupId")
        if group in self.no_history:
            return {"ActionStatus": "FAIL", "ErrorCode": 10044, "ErrorInfo": "group type does not support roaming"}
        with self._lock:
            found = [dict(m) for (g, topic, seq), m in self.group_msgs.items()
                     if g == group and topic == (body.get("TopicId") or "") and seq <= body.get("ReqMsgSeq", 2**32)]
        if not found and not any(g == group for g, _, _ in self.group_msgs) and group not in self.groups:
            return {"ActionStatus": "FAIL", "ErrorCode": 10010, "ErrorInfo": "group not found"}
        if not body.get("WithRecalledMsg"):
            found = [m for m in found if m["IsPlaceMsg"] != 2]
        found.sort(key=lambda m: m["MsgSeq"], reverse=True)
        count = min(body.get("ReqMsgNumber", 20), 20)
        # IsFinished as "the range asked for came back whole" (1 for any full page): the reading under which
        # a reader that stops on it would miss older messages. imguard pages on without it.
        return {"ActionStatus": "OK", "ErrorInfo": "", "ErrorCode": 0, "GroupId": group,
                "IsFinished": 1, "RspMsgList": found[:count]}

    def _set_no_speaking(self, body: Dict[str, Any]) -> Dict[str, Any]:
        if not isinstance(body.get("Set_Account"), str):
            return {"ActionStatus": "FAIL", "ErrorCode": 130004, "ErrorInfo": "Set_Account missing"}
        times = {k: body[k] for k in ("C2CmsgNospeakingTime", "GroupmsgNospeakingTime") if k in body}
        if not times:
            return {"ActionStatus": "FAIL", "ErrorCode": 130008, "ErrorInfo": "neither time given"}
        if not all(isinstance(v, int) and 0 <= v <= 4294967295 for v in times.values()):
            return {"ActionStatus": "FAIL", "ErrorCode": 130006, "ErrorInfo": "bad time"}
        with self._lock:
            mute = self.muted.setdefault(body["Set_Account"], {"C2C": 0, "Group": 0})
            mute["C2C"] = times.get("C2CmsgNospeakingTime", mute["C2C"])
            mute["Group"] = times.get("GroupmsgNospeakingTime", mute["Group"])
        return {"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": ""}

    def _forbid_send(self, body: Dict[str, Any]) -> Dict[str, Any]:
        group, members, mute = body.get("GroupId"), body.get("Members_Account"), body.get("MuteTime")
        if not isinstance(members, list) or not 1 <= len(members) <= 500 or not isinstance(mute, int):
            return {"ActionStatus": "FAIL", "ErrorCode": 10004, "ErrorInfo": "invalid parameters"}
        if self.group_types.get(group) in ("Private", "Work"):
            return {"ActionStatus": "FAIL", "ErrorCode": 10004, "ErrorInfo": "Work groups cannot mute members"}
        with self._lock:
            for member in members:
                self.group_muted[(group, member)] = mute
        return {"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": ""}

    def _portrait_get(self, body: Dict[str, Any]) -> Dict[str, Any]:
        items, failed = [], []
        with self._lock:
            for account in body.get("To_Account") or []:
                if account not in self.profiles:
                    items.append({"To_Account": account, "ResultCode": 40003, "ResultInfo": "account not found"})
                    failed.append(account)
                    continue
                values = self.profiles[account]
                items.append({"To_Account": account, "ResultCode": 0, "ResultInfo": "",
                              "ProfileItem": [{"Tag": t, "Value": values.get(t, "")} for t in body.get("TagList") or []]})
        answer = {"UserProfileItem": items, "ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": "", "ErrorDisplay": ""}
        if failed:
            answer["Fail_Account"] = failed
        return answer

    def _group_info(self, body: Dict[str, Any]) -> Dict[str, Any]:
        wanted = ((body.get("ResponseFilter") or {}).get("GroupBaseInfoFilter")) or ["Name", "Introduction", "Notification"]
        infos = []
        with self._lock:
            for group in body.get("GroupIdList") or []:
                if group not in self.groups:
                    infos.append({"GroupId": group, "ErrorCode": 10010, "ErrorInfo": "group not found"})
                    continue
                info = dict({k: self.groups[group].get(k, "") for k in wanted}, GroupId=group, ErrorCode=0, ErrorInfo="")
                keys = (body.get("ResponseFilter") or {}).get("AppDefinedDataFilter_Group") or []
                custom = self.groups[group].get("AppDefinedData", {})
                if keys:
                    info["AppDefinedData"] = [{"Key": k, "Value": custom[k]} for k in keys if k in custom]
                infos.append(info)
        return {"ActionStatus": "OK", "ErrorInfo": "", "ErrorCode": 0, "GroupInfo": infos}

    def _portrait_set(self, body: Dict[str, Any]) -> Dict[str, Any]:
        items = body.get("ProfileItem")
        if not body.get("From_Account") or not isinstance(items, list) or not items:
            return {"ActionStatus": "FAIL", "ErrorCode": 40001, "ErrorInfo": "From_Account and ProfileItem required"}
        if any(set(item) != {"Tag", "Value"} for item in items):
            return {"ActionStatus": "FAIL", "ErrorCode": 40001, "ErrorInfo": "ProfileItem needs Tag and Value"}
        with self._lock:
            self.profiles[body["From_Account"]].update({item["Tag"]: item["Value"] for item in items})
        return {"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": ""}

    def _modify_group(self, body: Dict[str, Any]) -> Dict[str, Any]:
        if not body.get("GroupId"):
            return {"ActionStatus": "FAIL", "ErrorCode": 10004, "ErrorInfo": "GroupId required"}
        unknown = set(body) - {"GroupId", "Name", "Introduction", "Notification", "FaceUrl", "MaxMemberNum",
                               "ApplyJoinOption", "ShutUpAllMember", "AppDefinedData"}
        if unknown:
            return {"ActionStatus": "FAIL", "ErrorCode": 10004, "ErrorInfo": f"unknown fields {sorted(unknown)}"}
        custom = body.get("AppDefinedData", [])
        if not isinstance(custom, list) or any(set(item) != {"Key", "Value"} for item in custom):
            return {"ActionStatus": "FAIL", "ErrorCode": 10004, "ErrorInfo": "AppDefinedData is a list of Key/Value"}
        with self._lock:
            group = self.groups[body["GroupId"]]
            group.update({k: v for k, v in body.items() if k not in ("GroupId", "AppDefinedData")})
            group.setdefault("AppDefinedData", {}).update({item["Key"]: item["Value"] for item in custom})
        return {"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": ""}

    # 获取群成员详细资料 / 修改群成员资料 / 获取话题资料 / 修改话题资料 (REST API/群组相关/...)

    def _member_info(self, body: Dict[str, Any]) -> Dict[str, Any]:
        group = body.get("GroupId")
        if group not in self.name_cards:
            return {"ActionStatus": "FAIL", "ErrorCode": 10010, "ErrorInfo": "group not found"}
        members = [{"Member_Account": m, "NameCard": card} for m, card in self.name_cards[group].items()]
        return {"ActionStatus": "OK", "ErrorInfo": "", "ErrorCode": 0, "MemberNum": len(members), "MemberList": members}

    def _modify_member(self, body: Dict[str, Any]) -> Dict[str, Any]:
        group, member = body.get("GroupId"), body.get("Member_Account")
        if member not in self.name_cards.get(group, {}):
            return {"ActionStatus": "FAIL", "ErrorCode": 10007, "ErrorInfo": "not a member"}
        with self._lock:
            if "NameCard" in body:
                self.name_cards[group][member] = body["NameCard"]
        return {"ActionStatus": "OK", "ErrorInfo": "", "ErrorCode": 0}

    def _get_topic(self, body: Dict[str, Any]) -> Dict[str, Any]:
        infos = []
        for topic_id in body.get("TopicIdList") or []:
            topic = self.topics.get((body.get("GroupId"), topic_id))
            if topic is None:
                infos.append({"ErrorCode": 10010, "ErrorInfo": "topic not found"})
                continue
            wanted = body.get("ResponseFilter") or list(topic)
            info = {k: topic.get(k, "") for k in wanted}
            info.update(TopicId=topic_id, GroupID=body.get("GroupId"))  # sic: GroupID inside TopicInfo
            infos.append({"ErrorCode": 0, "ErrorInfo": "", "TopicInfo": info})
        return {"ActionStatus": "OK", "ErrorInfo": "", "ErrorCode": 0, "TopicAndSelfInfo": infos}

    def _modify_topic(self, body: Dict[str, Any]) -> Dict[str, Any]:
        key = (body.get("GroupId"), body.get("TopicId"))
        unknown = set(body) - {"GroupId", "TopicId", "From_Account", "TopicName", "FaceUrl", "Notification",
                               "Introduction", "MuteAllMember", "CustomString"}
        if key not in self.topics or unknown:
            return {"ActionStatus": "FAIL", "ErrorCode": 10004, "ErrorInfo": f"bad topic or fields {sorted(unknown)}"}
        with self._lock:
            self.topics[key].update({k: v for k, v in body.items() if k not in ("GroupId", "TopicId", "From_Account")})
        return {"ActionStatus": "OK", "ErrorInfo": "ok", "ErrorCode": 0}

    @staticmethod
    def _json(payload: Dict[str, Any]) -> Response:
        return Response(json.dumps(payload), status=200, content_type="application/json")
