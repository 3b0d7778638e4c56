"""What a deployment will do, worked out from what is wanted and what SCF has now. Pure: no I/O.

A plan is a list of SCF API actions per function. ``--dry-run`` prints it; a real run executes
it (``imguard.deploy.apply``). Running the same deployment twice plans updates, never a second
function or a second Function URL.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from imguard.deploy.errors import DeployError

HANDLER = "index.main_handler"
RUNTIMES = ("Python3.9", "Python3.10")
# What the URL serves. Deploy updates $LATEST (no versions are published), so the URL follows
# every deployment at once; one Function URL per version or alias is allowed (583/100227).
URL_QUALIFIER = "$LATEST"
URL_TRIGGER_NAME = "imguard-url"


@dataclass(frozen=True)
class Profile:
    """The fixed shape of one function."""

    app: str
    memory_mb: int
    timeout_s: int
    description: str  # SCF allows letters, digits, spaces, commas, periods, newlines and Chinese


PROFILES: Tuple[Profile, ...] = (
    # IM waits 2 s; DEADLINE_MS keeps the answer inside that, 3 s is the platform's margin.
    # 128 MB: measured peak is 90 MiB (README, "Speed and robustness").
    Profile("im_callback", 128, 3, "imguard IM callback. Judges messages before IM delivers them."),
    # Room for IM REST retries with backoff while withdrawing.
    Profile("audio_result", 128, 30, "imguard audio and video results. Withdraws what CI flags."),
)


@dataclass(frozen=True)
class FunctionSpec:
    """One function as it should be."""

    app: str
    name: str
    runtime: str
    memory_mb: int
    timeout_s: int
    role: Optional[str]
    description: str
    environment: Tuple[Tuple[str, str], ...] = field(repr=False)  # values may be secrets
    handler: str = HANDLER

    @property
    def variables(self) -> Dict[str, str]:
        return dict(self.environment)


@dataclass(frozen=True)
class UrlSpec:
    """The Function URL: public (IM and CI cannot sign SCF requests), no SCF authentication:
    imguard checks IM's Sign and its own HMAC in CI's DataId itself (README, Threat model)."""

    qualifier: str = URL_QUALIFIER
    trigger_name: str = URL_TRIGGER_NAME
    auth_type: str = "NONE"
    extranet: bool = True
    intranet: bool = False

    def trigger_desc(self) -> Dict[str, Any]:
        # CreateTrigger's TriggerDesc for Type "http" (583/100227): AuthType and NetConfig required.
        return {"AuthType": self.auth_type,
                "NetConfig": {"EnableIntranet": self.intranet, "EnableExtranet": self.extranet}}

    def satisfied_by(self, desc: Mapping[str, Any]) -> bool:
        net = desc.get("NetConfig") or {}
        return (desc.get("AuthType") == self.auth_type and bool(net.get("EnableExtranet")) == self.extranet
                and bool(net.get("EnableIntranet")) == self.intranet)


@dataclass(frozen=True)
class FunctionState:
    """One function as GetFunction reports it."""

    name: str
    status: str
    runtime: str
    handler: str
    memory_mb: int
    timeout_s: int
    role: str
    environment: Tuple[Tuple[str, str], ...] = field(repr=False)
    reasons: Tuple[str, ...] = ()  # StatusReasons, when an update failed


@dataclass(frozen=True)
class TriggerState:
    """One trigger as ListTriggers reports it; ``desc`` is its TriggerDesc JSON."""

    name: str
    type: str
    qualifier: str
    desc: str

    def parsed(self) -> Dict[str, Any]:
        try:
            value = json.loads(self.desc or "{}")
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    @property
    def url(self) -> Optional[str]:
        # Where the assigned address shows up in an http trigger's TriggerDesc. Not in the API
        # reference; read back by the Tencent tools that automate Function URLs.
        net = self.parsed().get("NetConfig") or {}
        url = net.get("ExtranetUrl") if isinstance(net, dict) else None
        return url.rstrip("/") if isinstance(url, str) and url.startswith("http") else None


@dataclass(frozen=True)
class Step:
    action: str  # the SCF API action that carries it out
    detail: str


@dataclass(frozen=True)
class FunctionPlan:
    spec: FunctionSpec
    current: Optional[FunctionState]
    url_trigger: Optional[TriggerState]  # the Function URL there is now, kept or updated
    steps: Tuple[Step, ...]


@dataclass(frozen=True)
class Plan:
    region: str
    namespace: str
    url: UrlSpec
    functions: Tuple[FunctionPlan, ...]
    notes: Tuple[str, ...] = ()


def plan_function(spec: FunctionSpec, url: UrlSpec, current: Optional[FunctionState],
                  triggers: Sequence[TriggerState], code: str) -> FunctionPlan:
    """``code`` says how the code travels (size, inline or COS), for the printed plan."""
    existing = next((t for t in triggers if t.type == "http" and t.qualifier == url.qualifier), None)
    if current is None:
        steps = [Step("CreateFunction", f"{_shape(spec)}; code {code}")]
    else:
        if current.runtime and current.runtime != spec.runtime:
            # UpdateFunctionConfiguration: "Runtime: 函数运行环境，创建时指定，目前不支持修改".
            raise DeployError(f"{spec.name} runs {current.runtime} and SCF cannot change a function's runtime: "
                              f"deploy with --runtime {current.runtime}, or delete the function first")
        if current.status.endswith("Failed"):
            raise DeployError(f"{spec.name} is {current.status} ({'; '.join(current.reasons) or 'no reason given'}): "
                              f"fix or delete it in the SCF console, then deploy again")
        steps = [Step("UpdateFunctionCode", f"code {code}")]
        changes = configuration_changes(spec, current)
        if changes:
            steps.append(Step("UpdateFunctionConfiguration", "; ".join(changes)))
    if existing is None:
        steps.append(Step("CreateTrigger", f"Function URL on {url.qualifier}: public, AuthType {url.auth_type}"))
    elif not url.satisfied_by(existing.parsed()):
        steps.append(Step("UpdateTrigger", f"Function URL {existing.name}: make it public, AuthType {url.auth_type}"))
    return FunctionPlan(spec, current, existing, tuple(steps))


def configuration_changes(spec: FunctionSpec, current: FunctionState) -> List[str]:
    """What UpdateFunctionConfiguration would change; variable names only, never values."""
    changes = []
    if current.memory_mb != spec.memory_mb:
        changes.append(f"memory {current.memory_mb} -> {spec.memory_mb} MB")
    if current.timeout_s != spec.timeout_s:
        changes.append(f"timeout {current.timeout_s} -> {spec.timeout_s} s")
    if (current.role or None) != spec.role:
        changes.append(f"role {current.role or '(none)'} -> {spec.role or '(none)'}")
    old, new = dict(current.environment), spec.variables
    added = sorted(set(new) - set(old))
    removed = sorted(set(old) - set(new))
    changed = sorted(k for k in set(new) & set(old) if new[k] != old[k])
    marked = [sign + name for sign, names in (("+", added), ("-", removed), ("~", changed)) for name in names]
    if marked:
        changes.append("variables " + " ".join(marked))
    return changes


def describe(plan: Plan, dry_run: bool) -> str:
    lines = [f"{'Plan (dry run: nothing is changed)' if dry_run else 'Plan'}: region {plan.region}, "
             f"namespace {plan.namespace}"]
    for fp in plan.functions:
        state = f"exists, {fp.current.status}" if fp.current is not None else "new"
        lines.append(f"  {fp.spec.name} ({state})")
        for step in fp.steps:
            lines.append(f"    {step.action}: {step.detail}")
        if fp.url_trigger is not None and not any(s.action == "UpdateTrigger" for s in fp.steps):
            lines.append(f"    Function URL kept: {fp.url_trigger.url or fp.url_trigger.name}")
    lines.extend(f"  note: {note}" for note in plan.notes)
    return "\n".join(lines)


def _shape(spec: FunctionSpec) -> str:
    names = ", ".join(name for name, _ in spec.environment) or "none"
    return (f"{spec.runtime}, {spec.handler}, {spec.memory_mb} MB, {spec.timeout_s} s, "
            f"role {spec.role or '(none)'}, variables {names}")
