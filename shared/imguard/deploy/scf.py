"""The SCF API (version 2018-04-16) through tencentcloud-sdk-python-scf: one client, typed results.

SCF's write actions are asynchronous: the function goes ``Creating``/``Updating`` and refuses
the next change until it is ``Active`` again (583/37883, "Function and Layer Status"), so every
write is followed by :meth:`ScfApi.wait_active`.
"""
from __future__ import annotations

import json
import time
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import urlsplit

from imguard.deploy.errors import DeployError
from imguard.deploy.inputs import Credentials
from imguard.deploy.plan import FunctionSpec, FunctionState, TriggerState, UrlSpec
from imguard.deploy.upload import CodeSource

# GetFunction's answer for a function that does not exist (both codes are in the SDK's errorcodes).
MISSING = ("ResourceNotFound.Function", "ResourceNotFound.FunctionName")

_ROLE_HINT = "create the execution role (CAM -> 角色, carrier scf.qcloud.com) or deploy with --role ''"
# What to do about the errors an operator meets first. Exact codes, then code prefixes.
_HINTS = {
    "AuthFailure.SignatureFailure": "the secret key does not belong to the secret id: check the deploy key",
    "AuthFailure.SecretIdNotFound": "no such API key: check the deploy secret id",
    "AuthFailure.SignatureExpire": "this machine's clock is more than 5 minutes off",
    "ResourceNotFound.Role": _ROLE_HINT,
    "ResourceNotFound.RoleCheck": _ROLE_HINT,
    "InvalidParameterValue.Role": _ROLE_HINT,
    "FailedOperation.QcsRoleNotFound": "SCF's service role SCF_QcsRole is missing: open the SCF console once "
                                       "and accept its service authorization",
    "UnauthorizedOperation.Role": "SCF_QcsRole cannot read the code's COS bucket",
    "RequestSizeLimitExceeded": "the code is too big to send inline: use --code-bucket",
}
_PREFIX_HINTS = (
    ("AuthFailure.UnauthorizedOperation", "the deploying key lacks a CAM permission for this SCF action"),
    ("UnauthorizedOperation", "the deploying key lacks a CAM permission for this SCF action"),
)


class ApiError(DeployError):
    """An SCF API call failed; ``code`` is Tencent Cloud's error code."""

    def __init__(self, action: str, code: str, message: str, request_id: Optional[str]):
        hint = _HINTS.get(code) or next((h for prefix, h in _PREFIX_HINTS if code.startswith(prefix)), "")
        text = f"{action} failed: {code}: {message}" + (f" ({hint})" if hint else "")
        super().__init__(text + (f" [RequestId {request_id}]" if request_id else ""), exit_code=1)
        self.action, self.code = action, code


class ScfApi:
    def __init__(self, creds: Credentials, region: str, namespace: str = "default", endpoint: Optional[str] = None,
                 poll_s: float = 2.0, wait_s: float = 300.0, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic):
        from tencentcloud.common import credential
        from tencentcloud.common.profile.client_profile import ClientProfile
        from tencentcloud.common.profile.http_profile import HttpProfile
        from tencentcloud.scf.v20180416 import models, scf_client

        http = HttpProfile(reqTimeout=120)  # a 7 MB inline zip takes a while on a slow uplink
        if endpoint:
            # The SDK signs "host:<endpoint>" and sends Host: <endpoint>; only the scheme is ours to set.
            parts = urlsplit(endpoint if "://" in endpoint else "https://" + endpoint)
            http = HttpProfile(protocol=parts.scheme, endpoint=parts.netloc, reqTimeout=120)
        profile = ClientProfile(httpProfile=http, language="en-US")
        self._client = scf_client.ScfClient(credential.Credential(creds.secret_id, creds.secret_key, creds.token),
                                            region, profile)
        self._models = models
        self.namespace = namespace
        self._poll_s, self._wait_s, self._sleep, self._clock = poll_s, wait_s, sleep, clock

    # -- reads -----------------------------------------------------------------

    def get_function(self, name: str) -> Optional[FunctionState]:
        try:
            answer = self._call("GetFunction", FunctionName=name)
        except ApiError as exc:
            if exc.code in MISSING:
                return None
            raise
        variables = ((answer.get("Environment") or {}).get("Variables")) or []
        return FunctionState(
            name=name,
            status=answer.get("Status") or "",
            runtime=answer.get("Runtime") or "",
            handler=answer.get("Handler") or "",
            memory_mb=int(answer.get("MemorySize") or 0),
            timeout_s=int(answer.get("Timeout") or 0),
            role=answer.get("Role") or "",
            environment=tuple((v["Key"], v.get("Value") or "") for v in variables),
            reasons=tuple(f"{r.get('ErrorCode')}: {r.get('ErrorMessage')}" for r in answer.get("StatusReasons") or []),
        )

    def list_triggers(self, name: str) -> Tuple[TriggerState, ...]:
        found: List[TriggerState] = []
        while True:
            answer = self._call("ListTriggers", FunctionName=name, Offset=len(found), Limit=100)
            page = answer.get("Triggers") or []
            found.extend(TriggerState(t.get("TriggerName") or "", t.get("Type") or "", t.get("Qualifier") or "",
                                      t.get("TriggerDesc") or "") for t in page)
            if not page or len(found) >= int(answer.get("TotalCount") or 0):
                return tuple(found)

    # -- writes ----------------------------------------------------------------

    def create_function(self, spec: FunctionSpec, code: CodeSource) -> None:
        self._call("CreateFunction", FunctionName=spec.name, Handler=spec.handler, Runtime=spec.runtime,
                   MemorySize=spec.memory_mb, Timeout=spec.timeout_s, Description=spec.description,
                   Environment=_environment(spec), Type="Event", **_role(spec), **code.create_fields())

    def update_code(self, spec: FunctionSpec, code: CodeSource) -> None:
        self._call("UpdateFunctionCode", FunctionName=spec.name, Handler=spec.handler, **code.update_fields())

    def update_configuration(self, spec: FunctionSpec) -> None:
        # Environment is the whole set: a variable removed from .env is removed from the function.
        self._call("UpdateFunctionConfiguration", FunctionName=spec.name, MemorySize=spec.memory_mb,
                   Timeout=spec.timeout_s, Description=spec.description, Environment=_environment(spec),
                   Role=spec.role or "")

    def create_url(self, name: str, url: UrlSpec) -> None:
        self._call("CreateTrigger", FunctionName=name, TriggerName=url.trigger_name, Type="http",
                   TriggerDesc=json.dumps(url.trigger_desc()), Qualifier=url.qualifier, Enable="OPEN")

    def update_url(self, name: str, trigger_name: str, url: UrlSpec) -> None:
        self._call("UpdateTrigger", FunctionName=name, TriggerName=trigger_name, Type="http",
                   TriggerDesc=json.dumps(url.trigger_desc()), Qualifier=url.qualifier, Enable="OPEN")

    # -- waiting ---------------------------------------------------------------

    def wait_active(self, name: str) -> FunctionState:
        deadline = self._clock() + self._wait_s
        while True:
            state = self.get_function(name)
            if state is None:
                raise DeployError(f"{name} disappeared while deploying", exit_code=1)
            if state.status == "Active":
                return state
            if state.status.endswith("Failed"):
                raise DeployError(f"{name} is {state.status}: {'; '.join(state.reasons) or 'SCF gave no reason'}",
                                  exit_code=1)
            if self._clock() >= deadline:
                raise DeployError(f"{name} is still {state.status} after {self._wait_s:.0f} s: look at it in the "
                                  f"SCF console, then deploy again", exit_code=1)
            self._sleep(self._poll_s)

    def read_url(self, name: str, trigger_name: str, tries: int = 10) -> Optional[str]:
        """The Function URL's address, once SCF has assigned it."""
        for attempt in range(tries):
            trigger = next((t for t in self.list_triggers(name) if t.name == trigger_name), None)
            if trigger is not None and trigger.url:
                return trigger.url
            if attempt + 1 < tries:
                self._sleep(self._poll_s)
        return None

    # -- the wire --------------------------------------------------------------

    def _call(self, action: str, **params: Any) -> Dict[str, Any]:
        from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException

        request = getattr(self._models, f"{action}Request")()
        request.from_json_string(json.dumps(dict(params, Namespace=self.namespace)))
        try:
            response = getattr(self._client, action)(request)
        except TencentCloudSDKException as exc:
            raise ApiError(action, str(exc.code or "Error"), str(exc.message or ""), exc.requestId) from None
        return json.loads(response.to_json_string())


def _environment(spec: FunctionSpec) -> Dict[str, Any]:
    return {"Variables": [{"Key": k, "Value": v} for k, v in spec.environment]}


def _role(spec: FunctionSpec) -> Dict[str, str]:
    return {"Role": spec.role} if spec.role else {}
