"""Checks made before any cloud call, so that a deployment does not ship a function that fails
at its first cold start, or that SCF would refuse halfway through."""
from __future__ import annotations

import re
from pathlib import Path
from typing import List

from imguard.config import ROLE_KEYS, ConfigError, Settings
from imguard.deploy.errors import DeployError
from imguard.deploy.plan import FunctionSpec

# 583/11637: at most 4 KB of environment variables per function.
ENVIRONMENT_LIMIT = 4096
# CreateFunction: letters, digits, - and _, a letter first, not ending in - or _, 2..60 long.
_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,58}[A-Za-z0-9]$")
# The temporary keys SCF gives a function with an execution role, present at run time only.
_ROLE_KEYS = {name: "role" for name in ROLE_KEYS}


def check(spec: FunctionSpec, folder: Path) -> List[str]:
    """Raise DeployError for what would break the function; return warnings for the rest.
    ``folder`` is what is uploaded: the code root of the function in SCF."""
    if not _NAME_RE.match(spec.name):
        raise DeployError(f"{spec.name}: not a valid SCF function name (letters, digits, - and _, "
                          f"2 to 60 characters, a letter first)")
    size = sum(len(k.encode()) + len(v.encode()) for k, v in spec.environment)
    if size > ENVIRONMENT_LIMIT:
        raise DeployError(f"{spec.name}: its variables take {size} bytes and SCF allows 4 KB; shorten the "
                          f"longest values (WHITELIST_USERS, REJECT_ERROR_INFO) or move rules to RULES_URL")
    return _check_rules_path(spec, folder) + _check_audit_store(spec) + _check_configuration(spec)


def _check_audit_store(spec: FunctionSpec) -> List[str]:
    # `make run` keeps its trail in SQLite; in SCF only /tmp is writable, and per instance.
    if spec.variables.get("AUDIT_DSN", "").strip().lower().startswith("sqlite"):
        return [f"{spec.name}: AUDIT_DSN is SQLite, which SCF cannot keep (only /tmp is writable, one per "
                f"instance): use PostgreSQL or MySQL, or leave it unset to keep the trail in the log"]
    return []


def _check_rules_path(spec: FunctionSpec, folder: Path) -> List[str]:
    # `make build` copies no rules file: a RULES_PATH that works under `make run` names a file
    # of the repository, which SCF does not have. Absolute paths (a layer's /opt/...) are not ours to check.
    path = spec.variables.get("RULES_PATH", "").strip()
    if not path or Path(path).is_absolute() or (folder / path).is_file():
        return []
    return [f"{spec.name}: RULES_PATH={path} is not in {folder}, so the function cannot read it (it runs from its "
            f"code folder): copy the file there after `make build`, or serve it from RULES_URL"]


def _check_configuration(spec: FunctionSpec) -> List[str]:
    # The same parsing the function does at cold start (imguard.config), on the same values.
    environ = dict(spec.environment)
    if spec.role:
        environ.update(_ROLE_KEYS)
    try:
        settings = Settings.from_env(environ)
    except ConfigError as exc:
        raise DeployError(f"{spec.name} would fail at cold start: {exc}") from None
    if spec.app != "audio_result":
        return []
    # audio_result's own requirements (imguard.apps.audio_result.create_handler). Until
    # RESULT_CALLBACK_URL is set nothing calls it, so a gap is a warning, not a refusal.
    missing = [name for name, ok in (("JOB_SIGNING_KEY", settings.review.signing_key),
                                     ("IM_SECRET_KEY", settings.im_api.secret_key),
                                     ("COS_BUCKET", settings.cos.enabled or not settings.review.verify_with_query))
               if not ok]
    if not missing:
        return []
    message = f"{spec.name} fails at cold start until {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} set"
    if settings.review.enabled:
        raise DeployError(message + " (RESULT_CALLBACK_URL is set, so CI will call it)")
    return [message + " (fine while RESULT_CALLBACK_URL is unset: nothing calls it)"]
