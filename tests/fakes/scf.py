"""A fake Tencent Cloud SCF API (version 2018-04-16), for ``imguard deploy`` driving the real SDK.

It refuses any request whose TC3-HMAC-SHA256 signature it cannot recompute from the secret key,
following Tencent's documented algorithm (API 3.0 "签名方法 v3"), and answers the documented
``{"Response": {..., "RequestId": ...}}`` shapes. It keeps functions and triggers, moves a
function through Creating/Updating to Active only as it is polled, and refuses a change to a
function that is not Active, as SCF does. PUT requests are a minimal COS bucket for code uploads.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import io
import itertools
import json
import re
import threading
import time
import uuid
import zipfile
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional, Set, Tuple

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

VERSION = "2018-04-16"
SERVICE = "scf"
MAX_BODY = 10 * 1024 * 1024  # TC3-signed POST limit
MAX_SKEW_S = 300  # a signature more than 5 minutes old is expired
READS = ("GetFunction", "ListTriggers")
RUNTIMES = ("Python2.7", "Python3.6", "Python3.7", "Python3.9", "Python3.10", "Nodejs18.15", "Go1", "Java8")
# Trigger model (GetFunction.Triggers) and TriggerInfo (ListTriggers.Triggers): the SDK warns about any other key.
TRIGGER_FIELDS = ("ModTime", "Type", "TriggerDesc", "TriggerName", "AddTime", "Enable", "CustomArgument",
                  "AvailableStatus", "ResourceId", "BindStatus", "TriggerAttribute", "Qualifier", "Description")
TRIGGER_INFO_FIELDS = TRIGGER_FIELDS + ("BoundResources",)

_AUTH_RE = re.compile(r"^TC3-HMAC-SHA256 Credential=([^/]+)/(\d{4}-\d{2}-\d{2})/([a-z]+)/tc3_request, "
                      r"SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$")
_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,58}[A-Za-z0-9]$")
_HANDLER_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*\.[A-Za-z][A-Za-z0-9_]*$")
_KEY_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
# Letters, digits, spaces, commas, periods, newlines and Chinese (CreateFunction's Description).
_DESCRIPTION_RE = re.compile(r"^[A-Za-z0-9 ,.\n\u4e00-\u9fff]{0,1000}$")


class Refused(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message


@dataclass
class ApiCall:
    action: str
    params: Dict[str, Any]
    region: str
    error: Optional[str] = None  # the error code answered, if any

    @property
    def is_write(self) -> bool:
        return self.action not in READS


def tc3_signature(secret_key: str, date: str, service: str, string_to_sign: str) -> str:
    """Tencent's derived-key chain: "TC3"+key -> date -> service -> "tc3_request", then the string."""
    key = ("TC3" + secret_key).encode()
    for part in (date, service, "tc3_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


class FakeScf:
    def __init__(self, server: HTTPServer, secret_id: str, secret_key: str, region: str = "ap-guangzhou",
                 appid: str = "1250000000", settle_polls: int = 1):
        self.server = server
        self.secret_id, self.secret_key = secret_id, secret_key
        self.region, self.appid = region, appid
        self.settle_polls = settle_polls  # GetFunction polls a function stays Creating/Updating after a write
        self.roles: Optional[Set[str]] = None  # CAM roles that exist; None: any
        self.functions: Dict[Tuple[str, str], Dict[str, Any]] = {}
        self.triggers: Dict[Tuple[str, str], List[Dict[str, Any]]] = {}
        self.objects: Dict[str, bytes] = {}  # COS object key -> bytes
        self.calls: List[ApiCall] = []
        self.refused: List[str] = []  # requests refused before any action: signature and the like
        self.last_signed: Optional[Tuple[Dict[str, str], bytes]] = None  # headers and body of the last API request
        self._urls = itertools.count(1)
        self._lock = threading.Lock()
        server.expect_request(re.compile(".*")).respond_with_handler(self._handle)

    @property
    def endpoint(self) -> str:
        return f"http://{self.server.host}:{self.server.port}"

    # -- what tests look at and set up -----------------------------------------

    def function(self, name: str, namespace: str = "default") -> Dict[str, Any]:
        return self.functions[(namespace, name)]

    def variables(self, name: str) -> Dict[str, str]:
        return {v["Key"]: v["Value"] for v in self.function(name)["Environment"]["Variables"]}

    def triggers_of(self, name: str, namespace: str = "default") -> List[Dict[str, Any]]:
        return self.triggers.get((namespace, name), [])

    def actions(self) -> List[str]:
        return [c.action for c in self.calls if c.error is None]

    def writes(self) -> List[ApiCall]:
        return [c for c in self.calls if c.is_write]

    def seed_function(self, name: str, **fields: Any) -> Dict[str, Any]:
        """A function that exists before the test, as if made in the console."""
        fn = self._new_function(dict({"FunctionName": name, "Runtime": "Python3.9", "Handler": "index.main_handler",
                                      "MemorySize": 256, "Timeout": 3}, **fields))
        fn.update(Status="Active", _pending=0)
        return fn

    def seed_url(self, name: str, trigger_name: str, desc: Dict[str, Any], qualifier: str = "$LATEST") -> str:
        return self._add_trigger(("default", name), trigger_name, qualifier, desc)

    # -- the wire ----------------------------------------------------------------

    def _handle(self, request: Request) -> Response:
        if request.method == "PUT":
            return self._put_object(request)
        request_id = str(uuid.uuid4())
        body = request.get_data()
        with self._lock:
            self.last_signed = (dict(request.headers), body)
            try:
                self._authenticate(request, body)
                if request.headers.get("X-TC-Version") != VERSION:
                    raise Refused("NoSuchVersion", f"version {request.headers.get('X-TC-Version')} of scf")
                if len(body) > MAX_BODY:
                    raise Refused("RequestSizeLimitExceeded", "the request body is larger than 10 MB")
            except Refused as refusal:
                self.refused.append(refusal.code)
                return self._answer({"Error": {"Code": refusal.code, "Message": refusal.message}}, request_id)
            action = request.headers.get("X-TC-Action", "")
            params = json.loads(body or b"{}")
            call = ApiCall(action, params, request.headers.get("X-TC-Region", ""))
            self.calls.append(call)
            handler = getattr(self, f"_{action}", None)
            try:
                if call.region != self.region:
                    raise Refused("UnsupportedRegion", f"region {call.region!r} is not served here")
                if handler is None:
                    raise Refused("InvalidAction", f"no such action: {action}")
                result = handler(params)
            except Refused as refusal:
                call.error = refusal.code
                return self._answer({"Error": {"Code": refusal.code, "Message": refusal.message}}, request_id)
        return self._answer(result, request_id)

    @staticmethod
    def _answer(content: Dict[str, Any], request_id: str) -> Response:
        # Tencent Cloud answers errors with HTTP 200 too; the SDK reads Response.Error.
        return Response(json.dumps({"Response": dict(content, RequestId=request_id)}), status=200,
                        content_type="application/json")

    def _authenticate(self, request: Request, body: bytes) -> None:
        match = _AUTH_RE.match(request.headers.get("Authorization", ""))
        if match is None:
            raise Refused("AuthFailure.InvalidAuthorization", "Authorization is not a TC3-HMAC-SHA256 header")
        secret_id, date, service, signed_headers, signature = match.groups()
        if secret_id != self.secret_id:
            raise Refused("AuthFailure.SecretIdNotFound", "The SecretId is not found")
        stamp = request.headers.get("X-TC-Timestamp", "")
        if not stamp.isdigit() or abs(time.time() - int(stamp)) > MAX_SKEW_S:
            raise Refused("AuthFailure.SignatureExpire", "The signature has expired")
        names = signed_headers.split(";")
        if service != SERVICE or "content-type" not in names or "host" not in names or \
                datetime.fromtimestamp(int(stamp), timezone.utc).strftime("%Y-%m-%d") != date:
            raise Refused("AuthFailure.SignatureFailure", "The credential scope does not match the request")
        payload = b"UNSIGNED-PAYLOAD" if request.headers.get("X-TC-Content-SHA256") == "UNSIGNED-PAYLOAD" else body
        canonical_headers = "".join(f"{name}:{request.headers.get(name, '').strip().lower()}\n" for name in names)
        canonical_request = "\n".join([request.method, request.path, request.query_string.decode(),
                                       canonical_headers, signed_headers, hashlib.sha256(payload).hexdigest()])
        string_to_sign = "\n".join(["TC3-HMAC-SHA256", stamp, f"{date}/{service}/tc3_request",
                                    hashlib.sha256(canonical_request.encode()).hexdigest()])
        if not hmac.compare_digest(tc3_signature(self.secret_key, date, service, string_to_sign), signature):
            raise Refused("AuthFailure.SignatureFailure",
                          "The provided credentials could not be validated. Please check your signature is correct.")

    def _put_object(self, request: Request) -> Response:
        # Only what a code upload needs; the COS signature is the COS SDK's business, not checked here.
        if not request.headers.get("Authorization", "").startswith("q-sign-algorithm="):
            return Response("<Error><Code>AccessDenied</Code></Error>", status=403, content_type="application/xml")
        data = request.get_data()
        self.objects[request.path.lstrip("/")] = data
        return Response("", status=200, headers={"ETag": f'"{hashlib.md5(data).hexdigest()}"'})

    # -- functions ---------------------------------------------------------------

    def _fn(self, params: Dict[str, Any], active: bool = False) -> Dict[str, Any]:
        key = (params.get("Namespace") or "default", params.get("FunctionName") or "")
        fn = self.functions.get(key)
        if fn is None:
            raise Refused("ResourceNotFound.Function", f"function {key[1]} does not exist")
        if active and fn["Status"] != "Active":
            raise Refused("FailedOperation.FunctionStatusError", f"function {key[1]} is {fn['Status']}: try later")
        return fn

    def _settling(self, fn: Dict[str, Any], status: str) -> None:
        fn.update(Status=status, _pending=self.settle_polls, ModTime=_now())

    def _GetFunction(self, params: Dict[str, Any]) -> Dict[str, Any]:
        fn = self._fn(params)
        if fn["_pending"] > 0:
            fn["_pending"] -= 1
        elif fn["Status"] in ("Creating", "Updating"):
            fn["Status"] = "Active"
        view = {k: v for k, v in fn.items() if not k.startswith("_")}
        view["Triggers"] = [{k: t[k] for k in TRIGGER_FIELDS} for t in self.triggers_of(fn["FunctionName"])]
        return view

    def _CreateFunction(self, params: Dict[str, Any]) -> Dict[str, Any]:
        key = (params.get("Namespace") or "default", params.get("FunctionName") or "")
        if key in self.functions:
            raise Refused("ResourceInUse.FunctionName", f"function {key[1]} already exists")
        self._check_configuration(params, creating=True)
        fields = {k: params[k] for k in ("FunctionName", "Handler", "Runtime", "MemorySize", "Timeout",
                                         "Description", "Environment", "Role", "Type") if k in params}
        fn = self._new_function(dict(fields, Namespace=key[0]))
        fn["_code"] = self._code(params.get("Code") or {}, fn["Handler"])
        self._settling(fn, "Creating")
        return {}

    def _new_function(self, fields: Dict[str, Any]) -> Dict[str, Any]:
        fn = {"Namespace": "default", "Description": "", "Role": "", "Type": "Event", "MemorySize": 128,
              "Timeout": 3, "Environment": {"Variables": []}, "Status": "Active", "StatusDesc": "",
              "StatusReasons": [], "CodeSize": 0, "FunctionVersion": "$LATEST", "Qualifier": "$LATEST",
              "InitTimeout": 65, "AddTime": _now(), "ModTime": _now(), "_pending": 0, "_code": {}}
        fn.update(fields)
        self.functions[(fn["Namespace"], fn["FunctionName"])] = fn
        return fn

    def _UpdateFunctionCode(self, params: Dict[str, Any]) -> Dict[str, Any]:
        fn = self._fn(params, active=True)
        handler = params.get("Handler") or fn["Handler"]
        if not _HANDLER_RE.match(handler):
            raise Refused("InvalidParameterValue.Handler", f"handler {handler!r}")
        code = {k: params[k] for k in ("ZipFile", "CosBucketName", "CosObjectName", "CosBucketRegion") if k in params}
        fn["_code"] = self._code(code or params.get("Code") or {}, handler)
        fn["Handler"] = handler
        self._settling(fn, "Updating")
        return {}

    def _UpdateFunctionConfiguration(self, params: Dict[str, Any]) -> Dict[str, Any]:
        fn = self._fn(params, active=True)
        if params.get("Runtime") and params["Runtime"] != fn["Runtime"]:
            raise Refused("InvalidParameterValue.Runtime", "the runtime cannot be changed")
        self._check_configuration(dict({"Handler": fn["Handler"], "Runtime": fn["Runtime"]}, **params))
        for name in ("MemorySize", "Timeout", "Description", "Environment", "Role"):
            if name in params:
                fn[name] = params[name]  # Environment is replaced whole, not merged
        self._settling(fn, "Updating")
        return {}

    def _check_configuration(self, params: Dict[str, Any], creating: bool = False) -> None:
        if not _NAME_RE.match(params.get("FunctionName") or ""):
            raise Refused("InvalidParameterValue.FunctionName", f"function name {params.get('FunctionName')!r}")
        if creating and not _HANDLER_RE.match(params.get("Handler") or ""):
            raise Refused("InvalidParameterValue.Handler", f"handler {params.get('Handler')!r}")
        if creating and params.get("Runtime") not in RUNTIMES:
            raise Refused("InvalidParameterValue.Runtime", f"runtime {params.get('Runtime')!r}")
        memory = params.get("MemorySize", 128)
        if not (memory == 64 or (128 <= memory <= 3072 and memory % 128 == 0)):
            raise Refused("InvalidParameterValue.MemorySize", f"memory {memory}: 64, or 128 to 3072 in steps of 128")
        if not 1 <= params.get("Timeout", 3) <= 900:
            raise Refused("LimitExceeded.Timeout", "timeout must be 1 to 900 seconds")
        if not _DESCRIPTION_RE.match(params.get("Description", "")):
            raise Refused("InvalidParameterValue.Description", "letters, digits, spaces, commas and periods only")
        role = params.get("Role")
        if role and self.roles is not None and role not in self.roles:
            raise Refused("ResourceNotFound.Role", f"role {role} does not exist")
        variables = (params.get("Environment") or {}).get("Variables") or []
        for variable in variables:
            name, value = variable.get("Key") or "", variable.get("Value") or ""
            if not _KEY_RE.match(name) or not value:
                raise Refused("InvalidParameterValue.Environment", f"variable {name!r} needs a name and a value")
            if name.startswith(("SCF_", "QCLOUD_", "TENCENTCLOUD_")):
                raise Refused("InvalidParameterValue.EnvironmentSystemProtect", f"{name} is reserved")
        if sum(len(v["Key"]) + len(v["Value"]) for v in variables) > 4096:
            raise Refused("InvalidParameterValue.EnvironmentExceededLimit", "more than 4 KB of variables")

    def _code(self, code: Dict[str, Any], handler: str) -> Dict[str, Any]:
        if "ZipFile" in code and "CosObjectName" in code:
            raise Refused("InvalidParameterValue.Cos", "ZipFile and a COS object cannot both be given")
        if "ZipFile" in code:
            try:
                data = base64.b64decode(code["ZipFile"], validate=True)
            except binascii.Error:
                raise Refused("InvalidParameterValue.ZipFileBase64BinasciiError", "ZipFile is not base64") from None
            source = {"ZipFile": hashlib.sha256(data).hexdigest()}
        elif code.get("CosBucketName") and str(code.get("CosObjectName", "")).startswith("/"):
            data = self.objects.get(code["CosObjectName"].lstrip("/"))
            if data is None:
                raise Refused("ResourceNotFound.CosObject", f"no object {code['CosObjectName']}")
            source = {k: code.get(k) for k in ("CosBucketName", "CosObjectName", "CosBucketRegion")}
        else:
            raise Refused("InvalidParameterValue.Cos", "give ZipFile, or CosBucketName and CosObjectName")
        try:
            names = zipfile.ZipFile(io.BytesIO(data)).namelist()
        except zipfile.BadZipFile:
            raise Refused("InvalidParameterValue.ZipFile", "the code is not a zip file") from None
        entry = handler.split(".")[0] + ".py"
        if entry not in names:
            raise Refused("InvalidParameterValue.Handler", f"{entry} is not at the root of the zip")
        return dict(source, files=sorted(names))

    # -- triggers ----------------------------------------------------------------

    def _ListTriggers(self, params: Dict[str, Any]) -> Dict[str, Any]:
        fn = self._fn(params)
        found = self.triggers_of(fn["FunctionName"], fn["Namespace"])
        offset, limit = int(params.get("Offset") or 0), int(params.get("Limit") or 20)
        page = [{k: t[k] for k in TRIGGER_INFO_FIELDS} for t in found[offset:offset + limit]]
        return {"TotalCount": len(found), "Triggers": page}

    def _CreateTrigger(self, params: Dict[str, Any]) -> Dict[str, Any]:
        fn = self._fn(params, active=True)
        if params.get("Type") != "http":
            raise Refused("InvalidParameterValue.Type", "this fake makes Function URLs (Type http) only")
        desc = self._url_desc(params.get("TriggerDesc"))
        qualifier = params.get("Qualifier") or "$LATEST"
        existing = self.triggers_of(fn["FunctionName"], fn["Namespace"])
        if any(t["TriggerName"] == params.get("TriggerName") for t in existing):
            raise Refused("ResourceInUse.TriggerName", f"trigger {params.get('TriggerName')} exists")
        if any(t["Type"] == "http" and t["Qualifier"] == qualifier for t in existing):
            raise Refused("ResourceInUse.Trigger", f"{qualifier} already has a Function URL")
        self._add_trigger((fn["Namespace"], fn["FunctionName"]), params.get("TriggerName") or "", qualifier, desc)
        trigger = self.triggers_of(fn["FunctionName"], fn["Namespace"])[-1]
        return {"TriggerInfo": {k: trigger[k] for k in TRIGGER_FIELDS}}

    def _UpdateTrigger(self, params: Dict[str, Any]) -> Dict[str, Any]:
        fn = self._fn(params, active=True)
        trigger = next((t for t in self.triggers_of(fn["FunctionName"], fn["Namespace"])
                        if t["TriggerName"] == params.get("TriggerName")), None)
        if trigger is None or trigger["Type"] != params.get("Type"):
            raise Refused("ResourceNotFound.Trigger", f"no {params.get('Type')} trigger {params.get('TriggerName')}")
        desc = self._url_desc(params.get("TriggerDesc"))
        old = json.loads(trigger["TriggerDesc"])["NetConfig"]
        desc["NetConfig"].update({k: v for k, v in old.items() if k.endswith("Url")})  # the address stays
        trigger.update(TriggerDesc=json.dumps(desc), ModTime=_now(), Enable=int(params.get("Enable", "OPEN") == "OPEN"))
        return {}

    @staticmethod
    def _url_desc(raw: Any) -> Dict[str, Any]:
        # A Function URL's TriggerDesc (583/100227): AuthType NONE or CAM, NetConfig with both switches.
        try:
            desc = json.loads(raw or "")
        except ValueError:
            raise Refused("InvalidParameterValue.TriggerDesc", "TriggerDesc is not JSON") from None
        net = desc.get("NetConfig") if isinstance(desc, dict) else None
        if desc.get("AuthType") not in ("NONE", "CAM") or not isinstance(net, dict) or \
                not all(isinstance(net.get(k), bool) for k in ("EnableIntranet", "EnableExtranet")):
            raise Refused("InvalidParameterValue.TriggerDesc", "AuthType and NetConfig.EnableIntranet/EnableExtranet")
        return {"AuthType": desc["AuthType"], "NetConfig": dict(net)}

    def _add_trigger(self, key: Tuple[str, str], name: str, qualifier: str, desc: Dict[str, Any]) -> str:
        url = f"https://{self.appid}-{next(self._urls):010d}.{self.region}.tencentscf.com"
        desc = json.loads(json.dumps(desc))
        if desc["NetConfig"].get("EnableExtranet"):
            desc["NetConfig"]["ExtranetUrl"] = url
        self.triggers.setdefault(key, []).append({
            "TriggerName": name, "Type": "http", "Qualifier": qualifier, "TriggerDesc": json.dumps(desc),
            "Enable": 1, "AvailableStatus": "Available", "CustomArgument": "", "Description": "",
            "ResourceId": "", "BindStatus": "", "TriggerAttribute": "", "BoundResources": "",
            "AddTime": _now(), "ModTime": _now(),
        })
        return url


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
