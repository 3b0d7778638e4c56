"""The ``imguard`` command (also ``python -m imguard``)."""
from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path
from typing import List, Optional
from urllib.parse import urlencode

LOCAL_SDKAPPID = "1400000000"


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="imguard", description="Content moderation for Tencent Cloud IM")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="serve the functions locally behind an API Gateway stand-in")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=9000)
    serve.add_argument("--functions", type=Path, default=Path("functions"), help="folder of <name>/index.py")
    serve.add_argument("--env-file", type=Path, default=Path(".env"), help="KEY=VALUE lines (default .env)")
    serve.set_defaults(run=_serve)

    check = commands.add_parser("check", help="apply local rules to texts; one JSON line per text")
    check.add_argument("--rules", type=Path, default=None, help="rules file (default RULES_PATH)")
    check.add_argument("texts", nargs="+", metavar="TEXT")
    check.set_defaults(run=_check)

    args = parser.parse_args(argv)
    return args.run(args)


def load_env_file(path: Path) -> None:
    """Export KEY=VALUE lines; the real environment wins over the file."""
    if not path.is_file():
        return
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        key = key.strip().removeprefix("export ").strip()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        os.environ.setdefault(key, value)


def _check(args: argparse.Namespace) -> int:
    from imguard.rules.ruleset import RulesError
    from imguard.rules.source import load_file

    path = args.rules or os.environ.get("RULES_PATH")
    if not path:
        print("no rules: pass --rules PATH or set RULES_PATH", file=sys.stderr)
        return 2
    try:
        rules = load_file(str(path))
    except (OSError, RulesError) as exc:
        print(f"cannot load rules from {path}: {exc}", file=sys.stderr)
        return 2
    for text in args.texts:
        print(json.dumps(rules.scan(text).as_dict(text), ensure_ascii=False))
    return 0


def _serve(args: argparse.Namespace) -> int:
    from imguard.im.auth import expected_sign
    from imguard.local.gateway import LocalGateway, build_routes

    load_env_file(args.env_file)
    os.environ.setdefault("IM_SDKAPPID", LOCAL_SDKAPPID)
    routes = build_routes(args.functions)
    if not routes:
        print(f"no functions found under {args.functions}/*/index.py", file=sys.stderr)
        return 2
    server = LocalGateway((args.host, args.port), routes)
    base = f"http://{args.host}:{server.server_address[1]}"
    print(f"imguard serving {len(routes)} function(s) on {base}")
    for path, (name, _) in routes.items():
        print(f"  POST {base}{path}    -> functions/{name}/index.main_handler")

    query = {
        "SdkAppid": os.environ["IM_SDKAPPID"],
        "CallbackCommand": "C2C.CallbackBeforeSendMsg",
        "contenttype": "json",
        "ClientIP": "127.0.0.1",
        "OptPlatform": "RESTAPI",
    }
    token = os.environ.get("IM_CALLBACK_TOKEN", "").strip()
    if token:
        request_time = str(int(time.time()))
        query.update(RequestTime=request_time, Sign=expected_sign(token, request_time))
    sample = {
        "CallbackCommand": "C2C.CallbackBeforeSendMsg",
        "From_Account": "alice",
        "To_Account": "bob",
        "MsgKey": "1_2_3",
        "MsgBody": [{"MsgType": "TIMTextElem", "MsgContent": {"Text": "hello"}}],
    }
    print("\nTry it:")
    print(f"  curl -s {shlex.quote(base + '/im_callback?' + urlencode(query))} \\")
    print(f"       -d {shlex.quote(json.dumps(sample, ensure_ascii=False))}")
    if token:
        print("  (the Sign above is valid for CALLBACK_MAX_SKEW_S seconds)")
    print("\nCtrl-C stops.", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
