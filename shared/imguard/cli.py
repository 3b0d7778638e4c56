"""The ``imguard`` command (also ``python -m imguard``)."""
from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path
from typing import List, Optional
from urllib.parse import urlencode

from imguard.audit import open_store
from imguard.deploy import cli as deploy_cli
from imguard.review import cli as review_cli
from imguard.sanctions import cli as sanctions_cli

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
    check.add_argument("--scene", help="judge as in this scene: c2c, group:AVChatRoom, group_id:@TGS#..., friend, "
                                       "profile, group_info (the rules file's scenes apply, and are shown)")
    check.add_argument("texts", nargs="+", metavar="TEXT")
    check.set_defaults(run=_check)

    replay = commands.add_parser("replay", help="post recorded IM callback bodies to a running im_callback")
    replay.add_argument("events", nargs="+", type=Path, metavar="EVENT", help="JSON bodies, or folders of them")
    replay.add_argument("--url", default="http://127.0.0.1:9000/im_callback", help="default the local server")
    replay.add_argument("--env-file", type=Path, default=Path(".env"), help="KEY=VALUE lines (default .env)")
    replay.add_argument("--wait", type=float, default=0.0, help="seconds to wait for the server to come up")
    replay.set_defaults(run=_replay)

    audit = commands.add_parser("audit", help="read the audit trail at AUDIT_DSN")
    audit_commands = audit.add_subparsers(dest="audit_command", required=True)
    listing = audit_commands.add_parser("list", help="recent decisions, newest first")
    listing.add_argument("--since", help="30m, 1h, 7d, 2w or an ISO time (UTC); default: all")
    listing.add_argument("--user", help="decisions sent by, to, or in the group of this ID")
    listing.add_argument("--action", help="allow, block, rewrite, withdrawn, ...")
    listing.add_argument("--text", help="decisions on exactly this text (matched by its sha256)")
    listing.add_argument("--limit", type=int, default=50)
    stats = audit_commands.add_parser("stats", help="counts by action, scene and label; top senders and rules")
    stats.add_argument("--since", default="1d", help="30m, 1h, 7d, 2w or an ISO time (UTC); default 1d")
    stats.add_argument("--top", type=int, default=10)
    for sub in (listing, stats):
        open_store.add_store_arguments(sub)
        sub.add_argument("--json", action="store_true", help="JSON for scripts instead of a table")
    listing.set_defaults(run=_audit_list)
    stats.set_defaults(run=_audit_stats)

    review_cli.add_parser(commands)  # the human review queue (imguard.review.queue)
    sanctions_cli.add_parser(commands)  # mutes the ladder applied, and lifting them
    deploy_cli.add_parser(commands)  # both functions and their Function URLs on SCF (imguard.deploy)

    args = parser.parse_args(argv)
    return args.run(args)


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
    if args.scene:
        from imguard.rules.book import Scene

        try:
            policy = rules.policy(Scene.parse(args.scene))
        except ValueError as exc:
            print(f"--scene: {exc}", file=sys.stderr)
            return 2
        for text in args.texts:
            print(json.dumps(dict(policy.scan(text).as_dict(text), scene=args.scene, policy=policy.describe()),
                             ensure_ascii=False))
        return 0
    for text in args.texts:
        print(json.dumps(rules.scan(text).as_dict(text), ensure_ascii=False))
    return 0


def _audit_list(args: argparse.Namespace) -> int:
    from imguard.audit import report
    from imguard.logs import text_sha256

    def read(store, now) -> int:
        since = report.parse_since(args.since, now) if args.since else None
        sha = text_sha256(args.text) if args.text else None
        rows = store.recent(since=since, user=args.user, action=args.action, sha256=sha, limit=args.limit)
        print(report.as_json(rows) if args.json else report.list_table(rows))
        return 0

    return open_store.read(args, read)


def _audit_stats(args: argparse.Namespace) -> int:
    from imguard.audit import report

    def read(store, now) -> int:
        since = report.parse_since(args.since, now)
        stats = store.stats(since=since, top=args.top)
        print(report.as_json(dict(stats, since=since)) if args.json else report.stats_text(stats, since))
        return 0

    return open_store.read(args, read)


def _replay(args: argparse.Namespace) -> int:
    from imguard.local.replay import event_files, replay, report

    open_store.load_env_file(args.env_file)
    files = event_files(args.events)
    if not files:
        print("no .json events found", file=sys.stderr)
        return 2
    token = os.environ.get("IM_CALLBACK_TOKEN", "").strip() or None
    results = replay(files, args.url, os.environ.get("IM_SDKAPPID") or LOCAL_SDKAPPID, token, args.wait)
    print(report(results))
    return 0 if all(r.ok for r in results) else 1


def _serve(args: argparse.Namespace) -> int:
    from imguard.local.gateway import LocalGateway, build_routes
    from imguard.local.replay import callback_query
    from sqlalchemy.engine import make_url

    open_store.load_env_file(args.env_file)
    os.environ.setdefault("IM_SDKAPPID", LOCAL_SDKAPPID)
    os.environ.setdefault("AUDIT_DSN", open_store.LOCAL_AUDIT_DSN)
    routes = build_routes(args.functions)
    if not routes:
        print(f"no functions found under {args.functions}/*/index.py", file=sys.stderr)
        return 2
    server = LocalGateway((args.host, args.port), routes)
    base = f"http://{args.host}:{server.server_address[1]}"
    print(f"imguard serving {len(routes)} function(s) on {base}")
    if os.environ["AUDIT_DSN"].strip():
        audit_url = make_url(os.environ["AUDIT_DSN"].strip()).render_as_string(hide_password=True)
        print(f"  audit trail: {audit_url}  (read it with: imguard audit list)")
    else:
        print("  audit trail: log lines only (AUDIT_DSN is empty)")
    for path, (name, _) in routes.items():
        print(f"  POST {base}{path}    -> functions/{name}/index.main_handler")

    token = os.environ.get("IM_CALLBACK_TOKEN", "").strip()
    query = callback_query(os.environ["IM_SDKAPPID"], "C2C.CallbackBeforeSendMsg", token)
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
