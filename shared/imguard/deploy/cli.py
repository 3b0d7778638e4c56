"""``imguard deploy``: create or update both functions and their Function URLs, then say what to
set in the IM and CI consoles. ``imguard.cli`` only calls :func:`add_parser`.

This module imports nothing heavy at the top: ``imguard --help`` must not need the Tencent SDKs.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, Dict, List, Mapping, Tuple

from imguard.deploy.errors import DeployError
from imguard.deploy.plan import RUNTIMES  # pure: no SDK behind it

DEFAULT_ROLE = "imguard-scf"


def add_parser(commands: Any) -> None:
    """Add ``deploy`` to the subcommands of ``imguard``."""
    deploy = commands.add_parser(
        "deploy", help="create or update both functions and their Function URLs on SCF",
        description="Deploy build/im_callback and build/audio_result (made by `make build`) to SCF with the "
                    "official SDK, give each a public Function URL, and print what to set in the IM and CI "
                    "consoles. Running it again updates; --dry-run only reads and prints the plan.")
    deploy.add_argument("--env-file", type=Path, default=Path(".env"), help="KEY=VALUE lines (default .env)")
    deploy.add_argument("--build", type=Path, default=Path("build"), help="folder of the `make build` output")
    deploy.add_argument("--stage", help="default STAGE, else dev; functions are <function>-<stage>-imguard")
    deploy.add_argument("--region", help="default REGION")
    deploy.add_argument("--namespace", default="default", help="SCF namespace (default: default)")
    deploy.add_argument("--runtime", choices=RUNTIMES, default="Python3.9")
    deploy.add_argument("--role", default=DEFAULT_ROLE,
                        help=f"execution role (运行角色) of both functions, default {DEFAULT_ROLE}; '' for none")
    deploy.add_argument("--code-bucket", help="BucketName-APPID for code too big to send inline (default COS_BUCKET)")
    deploy.add_argument("--dry-run", action="store_true", help="read what exists, print the plan, change nothing")
    deploy.add_argument("--show-token", action="store_true", help="print IM_CALLBACK_TOKEN for the IM console")
    deploy.add_argument("--endpoint", help="SCF API endpoint, e.g. http://127.0.0.1:8080 "
                                           "(default IMGUARD_SCF_ENDPOINT, else scf.tencentcloudapi.com)")
    deploy.add_argument("--cos-endpoint", help=argparse.SUPPRESS)  # tests: IMGUARD_COS_ENDPOINT
    deploy.add_argument("--wait", type=float, default=300.0, help="seconds to wait for a function to be Active")
    deploy.add_argument("--poll", type=float, default=2.0, help=argparse.SUPPRESS)
    deploy.set_defaults(run=run)


class _Output:
    """Prints, with every known secret value blanked out, whatever text it comes in."""

    def __init__(self) -> None:
        self.secrets: Tuple[str, ...] = ()

    def say(self, text: str) -> None:
        print(self._clean(text), flush=True)

    def error(self, text: str) -> None:
        print(self._clean(text), file=sys.stderr, flush=True)

    def _clean(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text


def run(args: argparse.Namespace, environ: Mapping[str, str] = os.environ) -> int:
    out = _Output()
    try:
        return _deploy(args, environ, out)
    except DeployError as exc:
        out.error(f"imguard deploy: {exc}")
        return exc.exit_code


def _deploy(args: argparse.Namespace, environ: Mapping[str, str], out: _Output) -> int:
    from imguard.deploy import inputs, package, plan, preflight, upload

    values = inputs.gather(args.env_file, environ)
    try:
        creds = inputs.credentials(values)
    except DeployError as exc:
        if args.env_file.is_file():
            raise
        raise DeployError(f"{exc} ({args.env_file} does not exist)") from None
    secrets = inputs.secret_values(values)
    if args.show_token:
        secrets = tuple(s for s in secrets if s != values.get("IM_CALLBACK_TOKEN", "").strip())
    out.secrets = secrets
    region = inputs.region(values, args.region)
    stage = inputs.stage(values, args.stage)
    role = args.role.strip() or None
    # Code too big to send inline goes through COS: by default the CI bucket, already in .env.
    code_bucket = (args.code_bucket or values.get("COS_BUCKET") or "").strip() or None
    same_bucket = code_bucket == (values.get("COS_BUCKET") or "").strip()
    code_region = ((values.get("COS_REGION") or "").strip() if same_bucket else "") or region

    # Everything that can be checked without the cloud, before the first call.
    specs: List[plan.FunctionSpec] = []
    code: Dict[str, upload.CodeSource] = {}
    packages: Dict[str, package.CodePackage] = {}
    notes: List[str] = []
    for profile in plan.PROFILES:
        pkg = package.package(args.build, profile.app)
        package.check_runtime(pkg, args.runtime)
        spec = plan.FunctionSpec(profile.app, inputs.function_name(profile.app, stage), args.runtime,
                                 profile.memory_mb, profile.timeout_s, role, profile.description,
                                 inputs.function_environment(values))
        notes += preflight.check(spec, pkg.folder)
        specs.append(spec)
        packages[profile.app] = pkg
        code[profile.app] = upload.planned(pkg, code_bucket, code_region)

    api = _api(args, creds, region, environ)
    url = plan.UrlSpec()
    plans = []
    for spec in specs:
        current = api.get_function(spec.name)
        triggers = api.list_triggers(spec.name) if current is not None else ()
        how = package.describe(packages[spec.app], code[spec.app].describe())
        plans.append(plan.plan_function(spec, url, current, triggers, how))
    the_plan = plan.Plan(region, args.namespace, url, tuple(plans), tuple(notes))
    out.say(plan.describe(the_plan, args.dry_run))
    if args.dry_run:
        return 0

    cos_endpoint = args.cos_endpoint or environ.get("IMGUARD_COS_ENDPOINT") or None
    for app, source in code.items():
        if source.zip_base64 is None:
            out.say(f"  uploading {app} to cos://{source.bucket}/{source.key} ...")
            upload.upload(packages[app], source, creds, cos_endpoint)

    from imguard.deploy.apply import apply
    from imguard.deploy.console import instructions

    deployed = apply(the_plan, api, code, out.say)
    out.say(instructions({d.spec.app: d for d in deployed}, values, role, args.show_token))
    return 0


def _api(args: argparse.Namespace, creds: Any, region: str, environ: Mapping[str, str]) -> Any:
    try:
        import tencentcloud.scf.v20180416  # noqa: F401  (a dev dependency: say so instead of a traceback)

        from imguard.deploy.scf import ScfApi
    except ImportError:
        raise DeployError("the Tencent Cloud SDK is missing: pip install tencentcloud-sdk-python-scf "
                          "(or `make venv`, which installs it)") from None
    endpoint = args.endpoint or environ.get("IMGUARD_SCF_ENDPOINT") or None
    return ScfApi(creds, region, args.namespace, endpoint, poll_s=args.poll, wait_s=args.wait)
