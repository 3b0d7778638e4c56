"""Carry out a plan against SCF, one function at a time, and read the Function URLs back."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Optional, Tuple

from imguard.deploy.plan import FunctionPlan, FunctionSpec, Plan
from imguard.deploy.scf import ScfApi
from imguard.deploy.upload import CodeSource


@dataclass(frozen=True)
class Deployed:
    spec: FunctionSpec
    url: Optional[str]  # None when SCF had not shown the address yet


def apply(plan: Plan, api: ScfApi, code: Mapping[str, CodeSource], say: Callable[[str], None]) -> Tuple[Deployed, ...]:
    """``code`` maps each app (im_callback, audio_result) to where its code comes from."""
    return tuple(_apply_function(fp, plan, api, code[fp.spec.app], say) for fp in plan.functions)


def _apply_function(fp: FunctionPlan, plan: Plan, api: ScfApi, code: CodeSource,
                    say: Callable[[str], None]) -> Deployed:
    spec = fp.spec
    if fp.current is not None and fp.current.status != "Active":
        # A deployment still running from before (or from the console): SCF refuses changes meanwhile.
        api.wait_active(spec.name)
    for step in fp.steps:
        say(f"  {step.action} {spec.name} ...")
        if step.action == "CreateFunction":
            api.create_function(spec, code)
        elif step.action == "UpdateFunctionCode":
            api.update_code(spec, code)
        elif step.action == "UpdateFunctionConfiguration":
            api.update_configuration(spec)
        elif step.action == "CreateTrigger":
            api.create_url(spec.name, plan.url)
        elif step.action == "UpdateTrigger":
            assert fp.url_trigger is not None
            api.update_url(spec.name, fp.url_trigger.name, plan.url)
        else:  # pragma: no cover - plan.py makes only the actions above
            raise AssertionError(step.action)
        # A function write leaves it Creating/Updating and SCF refuses the next change until it is
        # Active again. After a trigger change the wait is one GetFunction, and proves it stayed Active.
        api.wait_active(spec.name)
    trigger_name = fp.url_trigger.name if fp.url_trigger is not None else plan.url.trigger_name
    url = api.read_url(spec.name, trigger_name)
    say(f"  {spec.name}: {url or 'Function URL created; SCF has not shown its address yet'}")
    return Deployed(spec, url)
