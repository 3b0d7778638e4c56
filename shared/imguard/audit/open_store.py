"""The audit store as the command line opens it (`imguard audit`, `review`, `sanctions`): AUDIT_DSN, from the
environment or an env file, else the local store of `make run`; failures as one clear line."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, Callable, Optional

from imguard.envfile import read_env_file

# `make run` keeps its audit trail here, and the commands read it when AUDIT_DSN is unset.
LOCAL_AUDIT_DSN = "sqlite:///.imguard/audit.db"
LOCAL_STORE = Path(".imguard") / "audit.db"


def load_env_file(path: Path) -> None:
    """Export KEY=VALUE lines; the real environment wins over the file."""
    if not path.is_file():
        return
    for key, value in read_env_file(path).items():
        os.environ.setdefault(key, value)


def add_store_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dsn", help="default AUDIT_DSN, else the local store of `make run`")
    parser.add_argument("--env-file", type=Path, default=Path(".env"), help="KEY=VALUE lines (default .env)")


def local_store(start: Path) -> Path:
    """``make run``'s store: .imguard/audit.db here or in a folder above, as git finds .git. Reading a new
    empty store in whatever folder the command was run from would say "nothing recorded", wrongly."""
    for folder in (start, *start.parents):
        if (folder / LOCAL_STORE).is_file():
            return folder / LOCAL_STORE
    raise SystemExit(f"imguard: no AUDIT_DSN, and no {LOCAL_STORE} in {start} or a folder above it (make run keeps "
                     f"one in the project folder): run this from there, or set AUDIT_DSN / --dsn")


def chosen_dsn(explicit: Optional[str] = None) -> str:
    """The store the command line reads: ``explicit`` (--dsn), else AUDIT_DSN, else `make run`'s found from
    here (SystemExit when there is none)."""
    return explicit or os.environ.get("AUDIT_DSN", "").strip() or f"sqlite:///{local_store(Path.cwd())}"


def open_store(args: argparse.Namespace) -> Any:
    from imguard.audit.store import AuditStore
    from imguard.config import ConfigError, audit_dsn

    load_env_file(args.env_file)
    try:
        return AuditStore(audit_dsn(chosen_dsn(args.dsn)))
    except ConfigError as exc:
        raise SystemExit(f"imguard: {exc}") from None


def existing_store() -> Optional[Any]:
    """AUDIT_DSN's store, or `make run`'s if there is one; None rather than a new empty store."""
    from imguard.audit.store import AuditStore
    from imguard.config import ConfigError, audit_dsn

    try:
        return AuditStore(audit_dsn(chosen_dsn()))
    except (SystemExit, ConfigError):
        return None


def store_error(exc: Exception, store: Any) -> str:
    """What went wrong with the store, in the driver's words (its message names host and port, never the
    password, which is scrubbed anyway), not just the exception's class."""
    from imguard import logs

    original = getattr(exc, "orig", None) or exc
    detail = " ".join(str(original).split())
    password = store.engine.url.password
    if password:
        detail = detail.replace(str(password), "***")
    return f"cannot read {store.display_name}: {type(original).__name__}: {logs.clip(detail, 300)}"


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
        print(f"imguard: {store_error(exc, store)}", file=sys.stderr)
        return 1
    finally:
        store.dispose()
