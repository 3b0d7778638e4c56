"""``imguard replay``: post recorded IM callback bodies to a running im_callback, as IM would.

Each body goes out with the query string IM adds (SdkAppid, CallbackCommand,
contenttype, ClientIP, OptPlatform, and Sign/RequestTime when a token is
configured), and each answer is summarised in one table row: what IM would do, the
rewritten text, and why, read from the audit trail by the request id the local gateway
returns (when there is a store to read).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence

import requests

from imguard.im.auth import expected_sign
from imguard.audit.report import milliseconds
from imguard.im.callbacks import Command
from imguard.local.gateway import REQUEST_ID_HEADER
from imguard.tables import table


def callback_query(sdk_app_id: str, command: str, token: Optional[str] = None,
                   now: Optional[float] = None) -> Dict[str, str]:
    """The query string IM appends to the callback URL (im-callback-protocol.md §1.1)."""
    query = {"SdkAppid": sdk_app_id, "CallbackCommand": command, "contenttype": "json",
             "ClientIP": "127.0.0.1", "OptPlatform": "RESTAPI"}
    if token:
        request_time = str(int(time.time() if now is None else now))
        query.update(RequestTime=request_time, Sign=expected_sign(token, request_time))
    return query


def command_of(body: Any) -> Optional[str]:
    """The command a recorded body belongs to. ResultNotify bodies name none; their fields give them away."""
    if not isinstance(body, dict):
        return None
    command = body.get("CallbackCommand")
    if isinstance(command, str) and command:
        return command
    if "CtxcbResult" in body:
        return Command.CLOUD_AUDIT_RESULT
    return None


def event_files(paths: Iterable[Path]) -> List[Path]:
    files: List[Path] = []
    for path in paths:
        files.extend(sorted(path.rglob("*.json")) if path.is_dir() else [path])
    return files


def _shown(path: Path) -> str:
    try:
        return path.resolve().relative_to(Path.cwd()).as_posix()
    except ValueError:
        return path.as_posix()


def summarise(status: int, answer: Any) -> str:
    """What IM would do with the answer."""
    if not isinstance(answer, dict):
        return f"HTTP {status}, not JSON"
    if status != 200:
        return f"HTTP {status}: {answer.get('error', '')} {answer.get('message', '')}".strip()
    items = answer.get("ResultItem")
    if isinstance(items, list):
        denied = [i.get("To_Account") for i in items if isinstance(i, dict) and i.get("ResultCode")]
        return f"denied {len(denied)} of {len(items)}" if denied else f"allowed {len(items)}"
    code = answer.get("ErrorCode")
    if code == 0:
        if "MsgBody" not in answer:
            return "allow"
        texts = [(e.get("MsgContent") or {}).get("Text") for e in answer["MsgBody"] if isinstance(e, dict)]
        shown = " | ".join(t for t in texts if isinstance(t, str))
        return f"rewrite: {shown}" if shown else "rewrite"
    if code == 2:
        return "silent drop"
    return "reject"


@dataclass(frozen=True)
class Replayed:
    file: str
    command: str
    action: str
    error_code: Any = ""
    latency_ms: Optional[float] = None
    ok: bool = True
    why: str = ""


def replay(files: Sequence[Path], url: str, sdk_app_id: str, token: Optional[str] = None,
           wait_s: float = 0.0, session: Optional[requests.Session] = None,
           why: Callable[[str], str] = lambda request_id: "") -> List[Replayed]:
    """``why(request_id)``: the decision's reasons, as the audit trail has them."""
    session = session or requests.Session()
    results: List[Replayed] = []
    wait_until = time.monotonic() + wait_s
    for path in files:
        name = _shown(path)
        try:
            body = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            results.append(Replayed(name, "-", f"unreadable: {type(exc).__name__}", ok=False))
            continue
        command = command_of(body)
        if command is None:
            results.append(Replayed(name, "-", "skipped: not an IM callback body"))
            continue
        while True:
            started = time.monotonic()
            try:
                response = session.post(url, params=callback_query(sdk_app_id, command, token),
                                        data=json.dumps(body, ensure_ascii=False).encode("utf-8"), timeout=10)
                break
            except requests.ConnectionError:
                if time.monotonic() >= wait_until:
                    results.append(Replayed(name, command, f"no server at {url}", ok=False))
                    response = None
                    break
                time.sleep(0.2)
        if response is None:
            continue
        latency = round((time.monotonic() - started) * 1000, 1)
        try:
            answer = response.json()
        except ValueError:
            answer = None
        code = answer.get("ErrorCode", "") if isinstance(answer, dict) else ""
        request_id = response.headers.get(REQUEST_ID_HEADER, "")
        results.append(Replayed(name, command, summarise(response.status_code, answer), code, latency,
                                ok=response.status_code == 200, why=why(request_id) if request_id else ""))
    return results


def report(results: Sequence[Replayed]) -> str:
    rows = [(r.file, r.command, r.action, r.error_code, milliseconds(r.latency_ms), r.why or "-") for r in results]
    return table(("FILE", "COMMAND", "ACTION", "ERRORCODE", "MS", "WHY"), rows)


def reasons_from(store: Any, wait_s: float = 1.0) -> Callable[[str], str]:
    """Reads a decision's reasons from ``store`` by request id; the writer stores it just after the answer."""
    from imguard.audit.report import why

    def lookup(request_id: str) -> str:
        end = time.monotonic() + wait_s
        while True:
            rows = store.recent(request_id=request_id, limit=5)
            if rows or time.monotonic() > end:
                # The decision first, then what it led to (a mute shares its request id).
                rows.sort(key=lambda row: row["scene"] == "sanction")
                return "; ".join(why(row) if row["scene"] != "sanction" else f"then {row['action']}: {why(row)}"
                                 for row in rows)
            time.sleep(0.05)

    return lookup
