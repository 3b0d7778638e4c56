"""The ``imguard`` command (also ``python -m imguard``)."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import List, Optional

from imguard.audit import open_store
from imguard.local import serve as local_serve
from imguard.deploy import cli as deploy_cli
from imguard.review import cli as review_cli
from imguard.sanctions import cli as sanctions_cli



def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="imguard", description="Content moderation for Tencent Cloud IM")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="serve the functions locally behind an API Gateway stand-in")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=9000)
    serve.add_argument("--functions", type=Path, default=Path("functions"), help="folder of <name>/index.py")
    serve.add_argument("--env-file", type=Path, default=Path(".env"), help="KEY=VALUE lines (default .env)")
    serve.add_argument("--no-local-cloud", action="store_true",
                       help="no stand-in CI and IM: CI and withdrawals only where .env configures real ones")
    serve.add_argument("--audit-dsn", help="the audit store when AUDIT_DSN is unset (default .imguard/audit.db)")
    serve.set_defaults(run=lambda args: local_serve.serve(args))

    check = commands.add_parser("check", help="apply local rules to texts; one JSON line per text")
    check.add_argument("--rules", type=Path, default=None, help="rules file (default RULES_PATH)")
    check.add_argument("--scene", help="judge as in this scene: c2c, group:AVChatRoom, group_id:@TGS#..., friend, "
                                       "profile, group_info (the rules file's scenes apply, and are shown)")
    check.add_argument("--file", type=Path, help="judge each line of this file (UTF-8)")
    check.add_argument("texts", nargs="*", metavar="TEXT", help="texts to judge; - reads one per line from stdin")
    check.set_defaults(run=_check)

    replay = commands.add_parser("replay", help="post recorded IM callback bodies to a running im_callback")
    replay.add_argument("events", nargs="+", type=Path, metavar="EVENT", help="JSON bodies, or folders of them")
    replay.add_argument("--url", default=None, help="default the local server: http://127.0.0.1:$PORT/im_callback "
                                                    "(PORT from the environment or .env, else 9000)")
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
        sub.add_argument("--tz", help="show times in this zone (default CONSOLE_TZ, else Asia/Shanghai)")
        sub.add_argument("--json", action="store_true", help="JSON for scripts instead of a table")
    listing.set_defaults(run=_audit_list)
    stats.set_defaults(run=_audit_stats)

    console = commands.add_parser("console", help="the web console over the audit store (AUDIT_DSN)")
    console.add_argument("--host", default="127.0.0.1", help="default loopback; anything else needs CONSOLE_TOKEN")
    console.add_argument("--port", type=int, default=8800)
    open_store.add_store_arguments(console)
    console.set_defaults(run=_console)
    review_cli.add_parser(commands)  # the human review queue (imguard.review.queue)
    sanctions_cli.add_parser(commands)  # mutes the ladder applied, and lifting them
    deploy_cli.add_parser(commands)  # both functions and their Function URLs on SCF (imguard.deploy)

    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except BrokenPipeError:
        # `imguard audit list --json | head`: the reader has gone, which is not an error. stdout is pointed
        # at /dev/null so that the interpreter's own flush at exit does not complain either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


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
    texts = _texts(args)
    if not texts:
        print("nothing to check: give TEXT..., - for stdin, or --file PATH", file=sys.stderr)
        return 2
    if args.scene:
        from imguard.rules.book import Scene

        try:
            policy = rules.policy(Scene.parse(args.scene))
        except ValueError as exc:
            print(f"--scene: {exc}", file=sys.stderr)
            return 2
        for text in texts:
            print(json.dumps(dict(policy.scan(text).as_dict(text), scene=args.scene, policy=policy.describe()),
                             ensure_ascii=False))
        return 0
    for text in texts:
        print(json.dumps(rules.scan(text).as_dict(text), ensure_ascii=False))
    return 0


def _texts(args: argparse.Namespace) -> List[str]:
    """The texts to check: arguments, stdin's lines for ``-``, a file's lines with --file."""
    texts: List[str] = []
    for text in args.texts:
        texts.extend(line.rstrip("\r\n") for line in sys.stdin) if text == "-" else texts.append(text)
    if args.file:
        try:
            texts.extend(args.file.read_text(encoding="utf-8").splitlines())
        except (OSError, UnicodeDecodeError) as exc:
            raise SystemExit(f"imguard check: cannot read {args.file}: {exc}") from None
    return [text for text in texts if text.strip()]


def _console(args: argparse.Namespace) -> int:
    from werkzeug.serving import make_server

    from imguard.config import ConfigError
    from imguard.console.app import create_app
    from imguard.console.settings import ConsoleSettings

    open_store.load_env_file(args.env_file)
    env = dict(os.environ, AUDIT_DSN=open_store.chosen_dsn(args.dsn))
    try:
        settings = ConsoleSettings.from_env(env, host=args.host)
    except ConfigError as exc:
        print("imguard console: " + "; ".join(f"{k}: {v}" for k, v in exc.problems.items()), file=sys.stderr)
        return 2
    try:
        from imguard.console.settings import LOOPBACK

        app = create_app(settings, secure_cookies=args.host not in LOOPBACK)  # elsewhere: behind HTTPS
        server = make_server(args.host, args.port, app, threaded=True)
    except OSError as exc:
        print(f"imguard console: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 2
    print(f"imguard console on http://{args.host}:{server.server_port}/ (times in {settings.tz_name}; "
          f"{'sign in with CONSOLE_TOKEN' if settings.token else 'no sign-in: loopback only'}). Ctrl-C stops.",
          flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


def _audit_list(args: argparse.Namespace) -> int:
    from imguard.audit import report
    from imguard.logs import text_sha256

    def read(store, now) -> int:
        tz = report.zone(args.tz)
        since = report.parse_since(args.since, now) if args.since else None
        sha = text_sha256(args.text) if args.text else None
        rows = store.recent(since=since, user=args.user, action=args.action, sha256=sha, limit=args.limit)
        if not rows and args.action:
            known = store.actions()
            if args.action not in known:  # a typo (blocked for block) would otherwise just find nothing
                print(f"imguard audit: no decision has the action {args.action!r}; this store has: "
                      f"{', '.join(known) or 'no decisions yet'}", file=sys.stderr)
                return 2
        print(report.as_json(rows) if args.json else report.list_table(rows, tz))
        return 0

    return open_store.read(args, read)


def _audit_stats(args: argparse.Namespace) -> int:
    from imguard.audit import report

    def read(store, now) -> int:
        since = report.parse_since(args.since, now)
        stats = store.stats(since=since, top=args.top)
        tz = report.zone(args.tz)
        print(report.as_json(dict(stats, since=since)) if args.json else report.stats_text(stats, since, tz))
        return 0

    return open_store.read(args, read)


def _replay(args: argparse.Namespace) -> int:
    from imguard.local.replay import event_files, reasons_from, replay, report

    open_store.load_env_file(args.env_file)
    files = event_files(args.events)
    if not files:
        print("no .json events found", file=sys.stderr)
        return 2
    url = args.url or f"http://127.0.0.1:{os.environ.get('PORT') or 9000}/im_callback"
    token = os.environ.get("IM_CALLBACK_TOKEN", "").strip() or local_serve.local_token(url)
    store = open_store.existing_store()
    why = reasons_from(store) if store is not None else (lambda request_id: "")
    try:
        results = replay(files, url, os.environ.get("IM_SDKAPPID") or local_serve.LOCAL_SDKAPPID, token, args.wait,
                         why=why)
    finally:
        if store is not None:
            store.dispose()
    print(report(results))
    return 0 if all(r.ok for r in results) else 1
