"""im_callback measured end to end: latency with local rules, CI fan-out, the deadline, the verdict
cache and load over HTTP (cold start: bench_cold_start.py, on the built folder). Prints tables; README keeps
the figures.

    python bench/bench_callback.py                 # everything (about two minutes)
    LOAD_SECONDS=10 python bench/bench_callback.py # a shorter load run
"""
from __future__ import annotations

import contextlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Dict, List, Sequence

import logging

import yaml
from pytest_httpserver import HTTPServer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_rules import build  # noqa: E402  (the same 10,000-entry lexicon as make bench's rules table)

from imguard.local.gateway import api_gateway_event, load_handler, scf_context  # noqa: E402
from imguard.local.replay import callback_query  # noqa: E402
from imguard.local.cloud.ci import FakeCI  # noqa: E402

SDKAPPID = "1400000000"
IMAGE = "https://im-media.example.com/{}/720"
CI_ENV = {"COS_BUCKET": "imguard-1250000000", "COS_REGION": "ap-guangzhou", "COS_SECRET_ID": "AKIDbench",
          "COS_SECRET_KEY": "bench-secret", "CI_SCHEME": "http"}
_loaded = 0


def handler(**env: str) -> Callable:
    """im_callback's main_handler as SCF would import it, with exactly this configuration."""
    global _loaded
    for name in list(os.environ):
        if name.startswith(("IM_", "COS_", "CI_", "AUDIT_", "RULES_", "DEADLINE", "VERDICT", "FAIL_")):
            del os.environ[name]
    os.environ.update(IM_SDKAPPID=SDKAPPID, **env)
    _loaded += 1
    return load_handler(ROOT / "functions" / "im_callback" / "index.py", f"bench_im_callback_{_loaded}")


def message(text: str, images: int = 0, sender: str = "alice") -> Dict:
    body = [{"MsgType": "TIMTextElem", "MsgContent": {"Text": text}}]
    body += [{"MsgType": "TIMImageElem", "MsgContent": {"ImageInfoArray": [
        {"Type": 2, "URL": IMAGE.format(f"{random.random()}-{i}")}]}} for i in range(images)]
    return {"CallbackCommand": "C2C.CallbackBeforeSendMsg", "From_Account": sender, "To_Account": "bob",
            "MsgKey": "1_2_3", "MsgBody": body}


def event(body: Dict) -> Dict:
    query = callback_query(SDKAPPID, body["CallbackCommand"])
    return api_gateway_event("POST", "/im_callback", query, {}, json.dumps(body, ensure_ascii=False).encode(),
                             "127.0.0.1")


def call(main_handler: Callable, body: Dict) -> Dict:
    return json.loads(main_handler(event(body), scf_context("im_callback"))["body"])


@contextlib.contextmanager
def quiet():
    """The JSON log lines are still formatted (that cost is real); they just go nowhere."""
    with open(os.devnull, "w") as null, contextlib.redirect_stdout(null):
        yield


def percentiles(samples_ms: Sequence[float]) -> str:
    ordered = sorted(samples_ms)
    pick = lambda q: ordered[min(len(ordered) - 1, int(len(ordered) * q))]  # noqa: E731
    return (f"p50 {pick(0.5):8.3f}  p99 {pick(0.99):8.3f}  max {ordered[-1]:8.3f}  "
            f"mean {statistics.fmean(ordered):8.3f}  (n={len(ordered)})")


def bench_local_rules(calls: int = 10_000) -> None:
    keywords, regexes, messages = build(random.Random(7))
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False, encoding="utf-8") as rules:
        yaml.safe_dump({"block": keywords + regexes}, rules, allow_unicode=True)
    main_handler = handler(RULES_PATH=rules.name)
    texts = [(m * 4)[:200] for m in messages[:calls]]
    samples = []
    with quiet():
        for text in texts[:200]:
            call(main_handler, message(text))  # warm-up: the normalization table fills
        for text in texts:
            started = time.perf_counter()
            call(main_handler, message(text))
            samples.append((time.perf_counter() - started) * 1000)
    print("1. main_handler in process, local rules only (CI off), "
          f"{len(keywords)} keywords + {len(regexes)} regexes, 200-character texts, ms:")
    print("   " + percentiles(samples))
    os.unlink(rules.name)


def bench_fan_out(ci: FakeCI, delay_s: float = 0.2, runs: int = 10) -> None:
    ci.text_delay_s = delay_s
    main_handler = handler(**CI_ENV, CI_DOMAIN=ci.domain, VERDICT_CACHE_S="0")
    print(f"\n2. CI answering after D = {delay_s * 1000:.0f} ms: whole callback, ms "
          f"(target <= D + 50; a serial design needs (k+1) x D)")
    print("   images k   mean     max     serial would be")
    rows = []
    with quiet():
        for k in (0, 1, 4, 9):
            samples = []
            for _ in range(runs):
                body = message("hello there", images=k)
                for element in body["MsgBody"][1:]:
                    ci.slow_image(element["MsgContent"]["ImageInfoArray"][0]["URL"], delay_s)
                started = time.perf_counter()
                call(main_handler, body)
                samples.append((time.perf_counter() - started) * 1000)
            rows.append(f"   {k:>8}  {statistics.fmean(samples):6.1f}  {max(samples):6.1f}   {(k + 1) * delay_s * 1000:6.0f}")
    print("\n".join(rows))
    ci.text_delay_s = 0.0


def bench_deadline(ci: FakeCI, calls: int = 24, hang_s: float = 10.0) -> None:
    ci.text_delay_s = hang_s
    main_handler = handler(**CI_ENV, CI_DOMAIN=ci.domain, DEADLINE_MS="1500", VERDICT_CACHE_S="0")
    samples: List[float] = []

    def one(_: int) -> None:
        started = time.perf_counter()
        answer = call(main_handler, message(f"hung {random.random()}"))
        samples.append((time.perf_counter() - started) * 1000)
        assert answer["ErrorCode"] == 0  # FAIL_MODE=open

    with quiet(), ThreadPoolExecutor(8) as pool:
        list(pool.map(one, range(calls)))
    ci.text_delay_s = 0.0
    print(f"\n3. CI hanging {hang_s:.0f} s, DEADLINE_MS=1500, {calls} callbacks 8 at a time: answer time, ms "
          "(target max <= 1600)")
    print("   " + percentiles(samples))


def bench_flood(ci: FakeCI, messages: int = 1000) -> None:
    print(f"\n4. A flood: {messages} copies of one spam text + one image, then {messages} distinct texts:")
    print("   verdict cache      CI calls (flood)   CI calls (distinct)   flood wall time, s")
    for ttl in ("0", "300"):
        main_handler = handler(**CI_ENV, CI_DOMAIN=ci.domain, VERDICT_CACHE_S=ttl)
        spam = message("加微信 领红包 wx123456")
        spam["MsgBody"].append({"MsgType": "TIMImageElem", "MsgContent": {"ImageInfoArray": [
            {"Type": 2, "URL": IMAGE.format("spam")}]}})
        before = len(ci.calls)
        started = time.perf_counter()
        with quiet():
            for _ in range(messages):
                call(main_handler, spam)
        flood_calls, elapsed = len(ci.calls) - before, time.perf_counter() - started
        before = len(ci.calls)
        with quiet():
            for i in range(messages):
                call(main_handler, message(f"distinct message {i}"))
        label = "off" if ttl == "0" else f"{ttl} s"
        print(f"   {label:<17}  {flood_calls:>16}   {len(ci.calls) - before:>19}   {elapsed:>17.2f}")


def bench_load(seconds: float) -> None:
    """`imguard serve` in one process, a client in another, keep-alive connections, for ``seconds``."""
    port = 9000 + random.randint(300, 900)
    with tempfile.TemporaryDirectory() as empty:
        server = subprocess.Popen(
            [sys.executable, "-m", "imguard", "serve", "--port", str(port), "--functions", str(ROOT / "functions"),
             "--env-file", os.path.join(empty, "none")],
            cwd=empty, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={**{k: v for k, v in os.environ.items() if not k.startswith(("AUDIT_", "COS_", "CI_"))},
                 "IM_SDKAPPID": SDKAPPID, "RULES_PATH": str(ROOT / "rules.example.yaml"), "AUDIT_DSN": ""},
        )
        try:
            client = subprocess.run(
                [sys.executable, str(ROOT / "bench" / "load_client.py"), f"http://127.0.0.1:{port}/im_callback",
                 str(seconds)], capture_output=True, text=True, check=True)
        finally:
            server.terminate()
            server.wait(10)
    print(f"\n5. Load over HTTP on loopback: `imguard serve` (local rules, CI off, log only) and a client process, "
          f"{seconds:.0f} s:")
    print("   " + client.stdout.strip().replace("\n", "\n   "))


def main() -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # the fake CI's access log
    print(f"im_callback benchmark (Python {sys.version.split()[0]}, {os.cpu_count()} cores)\n")
    bench_local_rules()
    ci_server = HTTPServer(host="127.0.0.1", threaded=True)
    ci_server.start()
    try:
        ci = FakeCI(ci_server)
        bench_fan_out(ci)
        bench_deadline(ci)
        bench_flood(ci)
    finally:
        ci_server.clear()
        ci_server.stop()
    bench_load(float(os.environ.get("LOAD_SECONDS", "60")))


if __name__ == "__main__":
    main()
