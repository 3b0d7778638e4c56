"""Memory of one warm im_callback instance under the floods of the security review, in one process.

im_callback is imported the way SCF does, with local rules (rules.example.yaml), CI off and an audit
store that is down throughout (nothing listens on 127.0.0.1:9), which is the worst case for the queue.
Then, in sequence: warm C2C text callbacks; messages made of code points never seen before (what a
per-character table in the normalizer would learn one by one); 10 KB texts, which the audit queue must
not keep; and, put directly since CI is off, long-keyword verdicts for long image URLs into the verdict
cache. VmRSS is read after each, VmHWM is the peak. SCF gives the function 128 MB (memorySize).

    python bench/bench_memory.py                    # a markdown table (about ten seconds)
    python bench/bench_memory.py --store-content    # the same with AUDIT_STORE_CONTENT=true
    python bench/bench_memory.py --json out.json    # also the figures as JSON (tests/test_memory_bounds.py)
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "tests" / "events"
SDKAPPID = "1400000000"
COMMAND = "C2C.CallbackBeforeSendMsg"
DOWN_DSN = "postgresql://postgres@127.0.0.1:9/imguard"  # refused at once, like a store that is down
MIB = 1024 * 1024

# The review's floods.
WARM_CALLBACKS = 10_000
NOVEL_MESSAGES, NOVEL_CODE_POINTS = 400, 3_000
LONG_TEXTS, LONG_TEXT_CHARS = 2_000, 10_000
CACHED_IMAGES, KEYWORDS, KEYWORD_CHARS, URL_CHARS = 20_000, 20, 100, 2_000

FIRST_NOVEL, LAST_NOVEL = 0x20000, 0x10FFFF  # CJK Extension B and every plane after it
_LETTERS = bytes(b"abcdefghijklmnopqrstuvwxyz     "[i % 31] for i in range(256))


def memory() -> Dict[str, float]:
    """VmRSS and VmHWM (the peak RSS) of this process, in MiB."""
    found = {}
    with open("/proc/self/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                found[name] = int(value.split()[0]) / 1024  # kB
    return found


def load_im_callback(store_content: bool) -> Callable:
    from imguard.config import VARIABLES
    from imguard.local.gateway import load_handler

    for name in VARIABLES:
        os.environ.pop(name, None)
    os.environ.update(IM_SDKAPPID=SDKAPPID, RULES_PATH=str(ROOT / "rules.example.yaml"), AUDIT_DSN=DOWN_DSN,
                      AUDIT_STORE_CONTENT=str(store_content).lower())
    return load_handler(ROOT / "functions" / "im_callback" / "index.py", "bench_memory_im_callback")


class Caller:
    """Recorded IM callbacks (API Gateway envelope, C2C text body) with the text swapped in."""

    def __init__(self, handler: Callable):
        self.handler = handler
        self.envelope = json.loads((EVENTS / "trigger" / "apigw.json").read_text(encoding="utf-8"))
        self.body = json.loads((EVENTS / "im" / "c2c_before_text.json").read_text(encoding="utf-8"))

    def send(self, text: Optional[str] = None) -> None:
        body = self.body if text is None else dict(self.body, MsgBody=[{"MsgType": "TIMTextElem",
                                                                        "MsgContent": {"Text": text}}])
        event = dict(self.envelope, body=json.dumps(body, ensure_ascii=False),
                     queryString={"SdkAppid": SDKAPPID, "CallbackCommand": COMMAND})
        context = {"request_id": uuid.uuid4().hex, "function_name": "im_callback", "time_limit_in_ms": 3000}
        response = self.handler(event, context)
        # A flood that only produced errors would measure the error path, not the one under review.
        assert response["statusCode"] == 200, response


def novel_texts(count: int, size: int) -> Iterator[str]:
    """Texts of consecutive code points from FIRST_NOVEL on: unseen until the range wraps around."""
    span = LAST_NOVEL + 1 - FIRST_NOVEL
    for i in range(count):
        start = i * size
        yield "".join(chr(FIRST_NOVEL + (start + j) % span) for j in range(size))


def long_text(size: int) -> str:
    """Random words, different every time, so that nothing along the way can share them."""
    return os.urandom(size).translate(_LETTERS).decode("ascii")


def fill_verdict_cache(cache: Any, count: int) -> None:
    from imguard.moderation.cache import image_key
    from imguard.moderation.verdict import Outcome, Verdict

    for i in range(count):
        url = f"https://im-media.example.com/{i}/720?sign=" + "s" * URL_CHARS  # a presigned URL is long
        keywords = tuple(f"{i}-{k}-" + "词" * KEYWORD_CHARS for k in range(KEYWORDS))
        cache.put(image_key(url), Verdict(Outcome.BLOCK, "ci", "image[0]", label="Porn", keywords=keywords))


def run(store_content: bool) -> Dict[str, Any]:
    rows: List[Dict[str, Any]] = []
    handler = load_im_callback(store_content)
    # The instance the handler closes over: its audit trail and verdict cache are what is bounded.
    services = handler.__globals__["_app"].services
    trail, cache = services.trail, services.moderator.cache
    caller = Caller(handler)

    def measure(phase: str, after: str, started: float) -> None:
        rows.append(dict(phase=phase, after=after, seconds=round(time.monotonic() - started, 1), **memory(),
                         queued=trail.queued, queued_mib=trail.queued_bytes / MIB, dropped=trail.dropped,
                         cached=len(cache), cached_mib=cache.size_bytes / MIB))

    def send_all(texts: Iterable[Optional[str]]) -> None:
        for text in texts:
            caller.send(text)

    measure("baseline", "im_callback imported (baseline)", time.monotonic())
    phases = [
        ("warm", f"{WARM_CALLBACKS:,} warm C2C text callbacks", lambda: send_all([None] * WARM_CALLBACKS)),
        ("novel", f"{NOVEL_MESSAGES:,} messages of {NOVEL_CODE_POINTS:,} never-seen code points",
         lambda: send_all(novel_texts(NOVEL_MESSAGES, NOVEL_CODE_POINTS))),
        ("long_texts", f"{LONG_TEXTS:,} callbacks with {LONG_TEXT_CHARS // 1000} KB texts, audit store down",
         lambda: send_all(long_text(LONG_TEXT_CHARS) for _ in range(LONG_TEXTS))),
        ("verdicts", f"{CACHED_IMAGES:,} verdicts with {KEYWORDS}x{KEYWORD_CHARS}-char keywords cached",
         lambda: fill_verdict_cache(cache, CACHED_IMAGES)),
    ]
    for phase, after, flood in phases:
        started = time.monotonic()
        flood()
        measure(phase, after, started)
    pending = trail.pending()
    return {
        "python": sys.version.split()[0],
        "store_content": store_content,
        "rows": rows,
        "peak_mib": memory()["VmHWM"],
        "queued_text_chars": sum(len(r.text) + sum(map(len, r.urls)) for r in pending),
        "queued_digests": sum(1 for r in pending if r.content_sha256),
    }


def table(result: Dict[str, Any]) -> str:
    lines = [
        f"Python {result['python']}, AUDIT_STORE_CONTENT="
        f"{str(result['store_content']).lower()}, audit store down throughout",
        "",
        "| after | VmRSS MiB | VmHWM MiB | audit queue | verdict cache | s |",
        "|---|---:|---:|---|---|---:|",
    ]
    for row in result["rows"]:
        lines.append(f"| {row['after']} | {row['VmRSS']:.1f} | {row['VmHWM']:.1f} | "
                     f"{row['queued']:,} ({row['queued_mib']:.1f} MiB est.), {row['dropped']:,} dropped | "
                     f"{row['cached']:,} ({row['cached_mib']:.1f} MiB est.) | {row['seconds']} |")
    lines += ["", f"Peak RSS (VmHWM): {result['peak_mib']:.1f} MiB. Text and URL characters held by the audit "
                  f"queue: {result['queued_text_chars']:,}."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--store-content", action="store_true", help="run with AUDIT_STORE_CONTENT=true")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures to PATH as JSON")
    args = parser.parse_args()
    out = sys.stdout
    # The log lines are still made (their cost is real); they just go nowhere, the audit writer's included.
    with open(os.devnull, "w") as null, contextlib.redirect_stdout(null):
        result = run(args.store_content)
        print(table(result), file=out, flush=True)
    if args.json:
        args.json.write_text(json.dumps(result), encoding="utf-8")


if __name__ == "__main__":
    main()
