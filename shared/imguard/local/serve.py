"""``imguard serve`` (``make run``): both functions behind the API Gateway stand-in, with a local cloud.

The banner says plainly what is real and what is a stand-in: which functions answer and, for one that
does not, every variable that stops it; where CI and IM are (the stand-ins unless .env points at real
ones); where the audit trail is and the command that reads it.
"""
from __future__ import annotations

import argparse
import errno
import json
import os
import shlex
import sys
from pathlib import Path
from typing import Optional
from urllib.parse import urlencode

from imguard.audit import open_store

LOCAL_SDKAPPID = "1400000000"
# What the local cloud sets, unless the environment or .env already says: an operator's real CI or IM wins.
CLOUD_VARIABLES = ("COS_BUCKET", "COS_REGION", "COS_SECRET_ID", "COS_SECRET_KEY", "CI_DOMAIN", "CI_SCHEME",
                   "IM_API_BASE", "IM_SECRET_KEY", "IM_ADMIN_IDENTIFIER", "RESULT_CALLBACK_URL", "JOB_SIGNING_KEY",
                   "IM_CALLBACK_TOKEN")


def local_token(url: str) -> Optional[str]:
    """The local cloud's callback token, for a replay aimed at a server on this machine."""
    from urllib.parse import urlsplit

    from imguard.local.cloud.stage import LOCAL_CALLBACK_TOKEN

    return LOCAL_CALLBACK_TOKEN if urlsplit(url).hostname in ("127.0.0.1", "localhost", "::1") else None


def imguard_command() -> str:
    """How to run ``imguard`` from this shell: the venv's script (it is not on PATH), else the module."""
    script = Path(sys.executable).with_name("imguard")
    return str(script.relative_to(Path.cwd())) if script.is_file() and Path.cwd() in script.parents else (
        str(script) if script.is_file() else f"{sys.executable} -m imguard")


def serve(args: argparse.Namespace) -> int:
    from imguard.local.gateway import LocalGateway, build_routes

    open_store.load_env_file(args.env_file)
    os.environ.setdefault("IM_SDKAPPID", LOCAL_SDKAPPID)
    if not os.environ.get("AUDIT_DSN", "").strip():  # `AUDIT_DSN=` in a copied .env means "not chosen"
        os.environ["AUDIT_DSN"] = args.audit_dsn or open_store.LOCAL_AUDIT_DSN
    cloud = _local_cloud(args)
    try:
        routes = build_routes(args.functions)
        if not routes:
            print(f"no functions found under {args.functions}/*/index.py", file=sys.stderr)
            return 2
        try:
            server = LocalGateway((args.host, args.port), routes, observer=cloud.observe if cloud else None)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            print(f"imguard serve: port {args.port} on {args.host} is already in use (another `make run`?). "
                  f"Stop that one, or choose another: PORT={args.port + 1} make run", file=sys.stderr)
            return 2
        _banner(server, routes, cloud)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
        return 0
    finally:
        if cloud is not None:
            cloud.stop()


def _local_cloud(args: argparse.Namespace):
    """The stand-in CI and IM, unless turned off (--no-local-cloud) or replaced by real ones in .env."""
    if args.no_local_cloud:
        return None
    from imguard.local.cloud.stage import LocalCloud

    cloud = LocalCloud(int(os.environ["IM_SDKAPPID"]), f"http://{args.host}:{args.port}")
    for name, value in cloud.environment().items():
        os.environ.setdefault(name, value)
    return cloud


def _banner(server, routes, cloud) -> None:
    from sqlalchemy.engine import make_url

    from imguard.local.replay import callback_query

    base = f"http://{server.server_address[0]}:{server.server_address[1]}"
    print(f"imguard serving on {base}")
    for path, (name, handler) in routes.items():
        problem = getattr(handler, "config_problems", None)
        state = "ready" if problem is None else "NOT CONFIGURED, answers 503: " + "; ".join(
            f"{var}: {text}" for var, text in problem.items())
        print(f"  POST {base}{path}    {name}: {state}")
    print("\nWhat is real and what is a stand-in:")
    for line in _parts(cloud):
        print(f"  {line}")
    audit = os.environ["AUDIT_DSN"].strip()
    print(f"  audit trail: {make_url(audit).render_as_string(hide_password=True)}"
          f"  (read it: {imguard_command()} audit list; or {imguard_command()} console)")

    token = os.environ.get("IM_CALLBACK_TOKEN", "").strip()
    query = callback_query(os.environ["IM_SDKAPPID"], "C2C.CallbackBeforeSendMsg", token)
    sample = {"CallbackCommand": "C2C.CallbackBeforeSendMsg", "From_Account": "alice", "To_Account": "bob",
              "MsgSeq": 1, "MsgRandom": 2, "MsgTime": 1700000000, "MsgKey": "1_2_1700000000",
              "MsgBody": [{"MsgType": "TIMTextElem", "MsgContent": {"Text": "hello"}}]}
    print("\nTry it:")
    print(f"  curl -s {shlex.quote(base + '/im_callback?' + urlencode(query))} \\")
    print(f"       -d {shlex.quote(json.dumps(sample, ensure_ascii=False))}")
    if token:
        print("  (signed as IM signs it; the Sign is good for CALLBACK_MAX_SKEW_S seconds)")
    print(f"  {imguard_command()} replay tests/events/im       # every recorded IM callback, with what and why")
    print("  make demo     # its own server and rules: allow, block, rewrite, a withdrawal, a mute, a review")
    print("\nCtrl-C stops.", flush=True)


def _parts(cloud) -> list:
    env = os.environ
    lines = []
    if not env.get("COS_BUCKET"):
        lines.append("CI: OFF (no COS_BUCKET): images, audio and video are allowed unjudged")
    elif cloud is not None and env.get("CI_DOMAIN") == cloud.ci.domain:
        lines.append(f"CI: STAND-IN at http://{cloud.ci.domain} (fixed demo verdicts, not CI models)")
    else:
        lines.append(f"CI: REAL, bucket {env['COS_BUCKET']}")
    im_base = env.get("IM_API_BASE") or "https://console.tim.qq.com"
    if not env.get("IM_SECRET_KEY"):
        lines.append("IM REST API: OFF (no IM_SECRET_KEY): nothing is withdrawn or muted")
    elif cloud is not None and im_base == cloud.im.base_url:
        lines.append(f"IM REST API (withdrawals, mutes): STAND-IN at {im_base} (keeps what it delivers)")
    else:
        lines.append(f"IM REST API (withdrawals, mutes): REAL, {im_base}")
    redis = env.get("REDIS_URL", "").strip()
    lines.append(f"flood and sanction counters: {'Redis' if redis else 'this process only (no REDIS_URL)'}")
    lines.append("callbacks: signed (IM_CALLBACK_TOKEN set)" if env.get("IM_CALLBACK_TOKEN", "").strip()
                 else "callbacks: UNSIGNED (no IM_CALLBACK_TOKEN): flood checks and sanctions are off")
    return lines
