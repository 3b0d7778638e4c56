"""The audit store as the command line opens it (`imguard audit`, `review`, `sanctions`): AUDIT_DSN, from the
environment or an env file, else the local store of `make run`; failures as one clear line."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, Callable

from imguard.envfile import read_env_file

# `make run` keeps its audit trail here, and the commands read it when AUDIT_DSN is unset.
LOCAL_AUDIT_DSN = "sqlite:///.imguard/audit.db"


def load_env_file(path: Path) -> None:
    """Export KEY=VALUE lines; the real environment wins over the file."""
    if not path.is_file():
        return
    for key, value in read_env_file(path).items():
        os.environ.setdefault(key, value)


def add_store_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dsn", help="default AUDIT_DSN, else the local store of `make run`")
    parser.add_argument("--env-file", type=Path, default=Path(".env"), help="KEY=VALUE lines (default .env)")


def open_store(args: argparse.Namespace) -> Any:
    from imguard.audit.store import AuditStore
    from imguard.config import ConfigError, audit_dsn

    load_env_file(args.env_file)
    try:
        dsn = audit_dsn(args.dsn or os.environ.get("AUDIT_DSN") or LOCAL_AUDIT_DSN)
    except ConfigError as exc:
        raise SystemExit(f"imguard: {exc}") from None
    return AuditStore(dsn)


def read(args: argparse.Namespace, work: Callable[[Any, Any], int]) -> int:
    """Run ``work(store, now)``; a store that cannot be reached is one clear line, not a traceback."""
    from datetime import datetime, timezone

    from sqlalchemy.exc import SQLAlchemyError

    store = open_store(args)
    try:
        return work(store, datetime.now(timezone.utc).replace(tzinfo=None))
    except ValueError as exc:
        print(f"imguard: {exc}", file=sys.stderr)
        return 2
    except SQLAlchemyError as exc:
        print(f"imguard: cannot read {store.display_name}: {type(exc.orig or exc).__name__}", file=sys.stderr)
        return 1
    finally:
        store.dispose()
