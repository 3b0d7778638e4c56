"""``imguard sanctions list | lift USER``: the mutes the ladder applied, and undoing one through IM."""
from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import Any

from imguard.audit import open_store


def add_parser(commands: Any) -> None:
    sanctions = commands.add_parser("sanctions", help="mutes applied by the sanctions ladder")
    actions = sanctions.add_subparsers(dest="sanctions_command", required=True)
    listing = actions.add_parser("list", help="sanctions, newest first")
    listing.add_argument("--user", help="one sender's")
    listing.add_argument("--since", help="30m, 1h, 7d, 2w or an ISO time (UTC); default: all")
    listing.add_argument("--limit", type=int, default=50)
    lift = actions.add_parser("lift", help="lift a mute through IM (the global one, or one group's)")
    lift.add_argument("user")
    lift.add_argument("--group", default="", help="the GroupId of a group mute")
    lift.add_argument("--by", default=None, help="who lifts it (default: your login name)")
    for sub in (listing, lift):
        open_store.add_store_arguments(sub)
    listing.set_defaults(run=_list)
    lift.set_defaults(run=_lift)


def _list(args: argparse.Namespace) -> int:
    from imguard.audit import report

    def work(store: Any, now: Any) -> int:
        since = report.parse_since(args.since, now) if args.since else None
        for row in store.recent(since=since, user=args.user, scene="sanction", limit=args.limit):
            print(json.dumps({k: row[k] for k in ("id", "created_at", "action", "sender", "group_id", "details")},
                             ensure_ascii=False, default=str))
        return 0

    return open_store.read(args, work)


def _lift(args: argparse.Namespace) -> int:
    from imguard.config import ConfigError
    from imguard.im.rest import ImRestClient
    from imguard.sanctions.enforce import FAILED, lift

    def work(store: Any, now: Any) -> int:
        try:
            im = ImRestClient.from_env()
        except ConfigError as exc:
            raise SystemExit(f"imguard sanctions: {exc}") from None
        action = lift(im, store, args.user, args.group, args.by or getpass.getuser(), via="cli")
        print(json.dumps({"user": args.user, "group": args.group or None, "status": action}))
        if action == FAILED:
            print("imguard sanctions: IM did not lift the mute; see the log above", file=sys.stderr)
            return 1
        return 0

    return open_store.read(args, work)
