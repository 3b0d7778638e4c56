"""Structured logging: one JSON object per line on stdout (SCF ships stdout to CLS).

Message text and secrets never go through here in clear; use ``fingerprint``.
"""
import hashlib
import json
import logging
import sys
import traceback
from typing import Any, Dict, Optional


class _StdoutHandler(logging.StreamHandler):
    """Writes to whatever sys.stdout is now (SCF and pytest both replace it)."""

    @property
    def stream(self):
        return sys.stdout

    @stream.setter
    def stream(self, value):
        pass


_logger = logging.getLogger("imguard")
if not _logger.handlers:
    _handler = _StdoutHandler()
    _handler.setFormatter(logging.Formatter("%(message)s"))
    _logger.addHandler(_handler)
    _logger.setLevel(logging.INFO)
    # SCF's runtime configures the root logger too; one copy of each line is enough.
    _logger.propagate = False

_LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def emit(event: str, level: str = "info", **fields: Any) -> None:
    record = {"event": event, **{k: v for k, v in fields.items() if v is not None}}
    line = json.dumps(record, ensure_ascii=False, default=str, separators=(",", ":"))
    _logger.log(_LEVELS[level], line)


def failure(event: str, exc: BaseException, **fields: Any) -> None:
    """An error line with the exception type and the frames, but not its arguments
    (exception messages can quote message text)."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = [f"{frame.filename.rsplit('/', 1)[-1]}:{frame.lineno}:{frame.name}" for frame in frames[-5:]]
    emit(event, level="error", exception=type(exc).__name__, where=where, **fields)


def text_sha256(text: str) -> str:
    """The one digest of user text imguard uses: logs, audit records, the CLI's --text and the verdict cache."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def safe_url(url: str) -> str:
    """A URL as a log may show it: scheme, host and path, never the query string or fragment
    (presigned COS links carry their credentials there), nor a user and password before the host
    (redis://:PASSWORD@host)."""
    bare = url.split("?", 1)[0].split("#", 1)[0]
    scheme, sep, rest = bare.partition("://")
    if sep and "@" in rest.split("/", 1)[0]:
        userinfo, host = rest.split("@", 1)
        user, has_password, _ = userinfo.partition(":")
        shown = (f"{user}:***" if user else "***") if has_password else user  # the user names the account
        rest = f"{shown}@{host}"
    return f"{scheme}{sep}{rest}"


def clip(text: str, size: int = 200) -> str:
    """An error text short enough for a log line: a parser's message can quote a whole document."""
    return text if len(text) <= size else text[: size - 1] + "…"


def fingerprint(text: str, sha256: Optional[str] = None) -> Dict[str, Any]:
    """What a log may say about user text: its length and digest, never the text."""
    return {"len": len(text), "sha256": sha256 or text_sha256(text)}
