"""What the operator gave ``imguard deploy``: ``.env`` and the shell, read once into plain values.

The deploy credentials and the functions' environment come from the same file (as for
``serverless deploy``), so this module is also where they are kept apart: only variables
imguard itself reads (``imguard.config.VARIABLES``) can reach a function.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Mapping, Optional, Tuple

from imguard.config import VARIABLES
from imguard.envfile import read_env_file
from imguard.deploy.errors import DeployError

APP = "imguard"

# (id, key, token) variable names, in the order they are looked for: the Serverless CLI's names
# (.env.example), then the Tencent Cloud SDKs' own.
CREDENTIAL_NAMES = (
    ("TENCENT_SECRET_ID", "TENCENT_SECRET_KEY", "TENCENT_TOKEN"),
    ("TENCENTCLOUD_SECRET_ID", "TENCENTCLOUD_SECRET_KEY", "TENCENTCLOUD_SESSION_TOKEN"),
)
DEPLOY_NAMES = ("STAGE", "REGION") + tuple(name for names in CREDENTIAL_NAMES for name in names)

# Values that must never be printed: deploy credentials and the functions' own secrets.
SECRET_NAMES = tuple(name for names in CREDENTIAL_NAMES for name in names) + (
    "IM_CALLBACK_TOKEN", "IM_SECRET_KEY", "JOB_SIGNING_KEY", "JOB_SIGNING_KEY_PREVIOUS",
    "COS_SECRET_ID", "COS_SECRET_KEY", "AUDIT_DSN",
)

_STAGE_RE = re.compile(r"^[A-Za-z0-9_-]{1,20}$")


def gather(env_file: Optional[Path], environ: Mapping[str, str]) -> Dict[str, str]:
    """The file's values, overridden by the shell's (as for ``make run``: CI pipelines export
    variables instead of writing a file). Only names deploy or the functions read are kept."""
    values = read_env_file(env_file) if env_file is not None and env_file.is_file() else {}
    wanted = set(VARIABLES) | set(DEPLOY_NAMES)
    values = {name: value for name, value in values.items() if name in wanted}
    values.update({name: value for name, value in environ.items() if name in wanted})
    return values


@dataclass(frozen=True)
class Credentials:
    """The account that deploys. Never the functions' credentials: those come from their role."""

    secret_id: str = field(repr=False)
    secret_key: str = field(repr=False)
    token: Optional[str] = field(default=None, repr=False)


def credentials(values: Mapping[str, str]) -> Credentials:
    for id_name, key_name, token_name in CREDENTIAL_NAMES:
        secret_id, secret_key = values.get(id_name, "").strip(), values.get(key_name, "").strip()
        if secret_id and secret_key:
            token = values.get(token_name, "").strip() or None
            return Credentials(secret_id, secret_key, token)
        if secret_id or secret_key:
            raise DeployError(f"{id_name} and {key_name} go together, and only one of them is set")
    raise DeployError(
        "no deploy credentials: set TENCENT_SECRET_ID and TENCENT_SECRET_KEY in .env (an API key of the "
        "account that deploys; the functions themselves get theirs from their role), or export "
        "TENCENTCLOUD_SECRET_ID and TENCENTCLOUD_SECRET_KEY")


def stage(values: Mapping[str, str], override: Optional[str]) -> str:
    chosen = (override or values.get("STAGE") or "dev").strip()
    if not _STAGE_RE.match(chosen):
        raise DeployError(f"STAGE: {chosen!r} cannot be part of a function name (letters, digits, - and _)")
    return chosen


def region(values: Mapping[str, str], override: Optional[str]) -> str:
    chosen = (override or values.get("REGION") or "").strip()
    if not chosen:
        raise DeployError("REGION: required (in .env or --region), for example ap-guangzhou")
    return chosen


def function_name(app: str, stage_name: str) -> str:
    # The naming of functions/*/serverless.yml (``${name}-${stage}-${app}``): a project deployed
    # with `serverless deploy` before is updated in place, not duplicated.
    return f"{app}-{stage_name}-{APP}"


def function_environment(values: Mapping[str, str]) -> Tuple[Tuple[str, str], ...]:
    """Every imguard variable that has a value, in VARIABLES order. Empty ones are left out:
    SCF refuses empty values, and imguard reads a missing variable as its default anyway."""
    return tuple((name, values[name]) for name in VARIABLES if values.get(name, "").strip())


def secret_values(values: Mapping[str, str]) -> Tuple[str, ...]:
    """Values to scrub from anything printed (short ones would blank out ordinary words); the deploy
    credentials are among SECRET_NAMES."""
    found = {values[name].strip() for name in SECRET_NAMES if values.get(name, "").strip()}
    return tuple(sorted((v for v in found if len(v) >= 6), key=len, reverse=True))
