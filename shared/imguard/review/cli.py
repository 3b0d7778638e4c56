"""``imguard review list | keep ID | withdraw ID``: the human review queue from the command line."""
from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import Any

from imguard.audit import open_store


def add_parser(commands: Any) -> None:
    review = commands.add_parser("review", help="the human review queue in the audit store")
    actions = review.add_subparsers(dest="review_command", required=True)
    listing = actions.add_parser("list", help="queued messages, newest first")
    listing.add_argument("--status", default="pending", help="pending (default), kept, withdrawn, unconfirmed, or all")
    listing.add_argument("--limit", type=int, default=50)
    keep = actions.add_parser("keep", help="leave a queued message delivered")
    withdraw = actions.add_parser("withdraw", help="withdraw a queued message through IM, once IM confirms it")
    for sub in (keep, withdraw):
        sub.add_argument("id", type=int)
        sub.add_argument("--by", default=None, help="who decides (default: your login name)")
    for sub in (listing, keep, withdraw):
        open_store.add_store_arguments(sub)
    listing.set_defaults(run=_list)
    keep.set_defaults(run=_keep)
    withdraw.set_defaults(run=_withdraw)


def _list(args: argparse.Namespace) -> int:
    from imguard.review.queue import ReviewQueue

    def work(store: Any, now: Any) -> int:
        rows = ReviewQueue(store).list(None if args.status == "all" else args.status, args.limit)
        for row in rows:
            print(json.dumps({k: row[k] for k in ("id", "created_at", "status", "scene", "sender", "receiver",
                                                  "group_id", "content", "reasons", "decided_by", "decided_at",
                                                  "outcome")}, ensure_ascii=False, default=str))
        return 0

    return open_store.read(args, work)


def _keep(args: argparse.Namespace) -> int:
    return _decide(args, lambda queue: queue.keep(args.id, _who(args)))


def _withdraw(args: argparse.Namespace) -> int:
    from imguard.config import ConfigError
    from imguard.im.rest import ImRestClient

    def act(queue: Any) -> str:
        try:
            im = ImRestClient.from_env()
        except ConfigError as exc:
            raise SystemExit(f"imguard review: {exc}") from None
        return queue.withdraw(args.id, _who(args), im)

    return _decide(args, act)


def _decide(args: argparse.Namespace, act: Any) -> int:
    from imguard.review.queue import ReviewError, ReviewQueue

    def work(store: Any, now: Any) -> int:
        try:
            status = act(ReviewQueue(store))
        except ReviewError as exc:
            print(f"imguard review: {exc}", file=sys.stderr)
            return 1
        print(json.dumps({"id": args.id, "status": status}))
        return 0

    return open_store.read(args, work)


def _who(args: argparse.Namespace) -> str:
    return args.by or getpass.getuser()
