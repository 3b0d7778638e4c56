"""What the flood checks cost a message: one counters round trip (rate + repeat keys in one pipeline),
against the real Redis on this machine (loopback; a VPC Redis adds its network) and in process.

Also the whole C2C callback with a rules file holding flood rate + repeat and a sanctions ladder,
through index.main_handler, to set against the plain local-rules figure of bench_callback.py.

    python bench/bench_counters.py          # REDIS_URL=redis://127.0.0.1:6379/15 by default
"""
from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "shared"), str(ROOT), str(ROOT / "bench")]

from bench_callback import quiet  # noqa: E402  (log lines formatted, then dropped: their cost is real)
from imguard.sanctions.counters import LocalCounters, RedisCounters, Window  # noqa: E402

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15")
CALLS = 5_000
RULES = """
block: [傻逼]
flood:
  rate: {messages: 20, per: 10s, action: block}
  repeat: {times: 5, within: 10m, action: silent}
sanctions:
  - {blocks: 3, within: 10m, mute: 1h, record_only: true}
"""


def percentiles(samples_ms):
    ordered = sorted(samples_ms)
    return (statistics.median(ordered), ordered[int(len(ordered) * 0.99) - 1], ordered[-1])


def bench_round_trip(name, counters) -> None:
    samples = []
    for i in range(CALLS):
        sender = f"u{i % 500}"
        windows = [Window(f"imguard:bench:rate:{sender}", (10,), 21),
                   Window(f"imguard:bench:repeat:{sender}:{i % 50}", (600,), 6)]
        began = time.perf_counter()
        assert counters.record(windows, time.time()) is not None, f"{name}: counters unavailable"
        samples.append((time.perf_counter() - began) * 1000)
    p50, p99, worst = percentiles(samples)
    print(f"   {name:<28} p50 {p50:6.3f} ms   p99 {p99:6.3f} ms   max {worst:6.2f} ms   ({CALLS} messages)")


def bench_callback(redis_url) -> None:
    from tests.conftest import IM_TOKEN, SDKAPPID, im_query, load_event, load_handler, scf_context, trigger_event

    with tempfile.TemporaryDirectory() as tmp:
        rules = Path(tmp) / "rules.yaml"
        rules.write_text(RULES, encoding="utf-8")
        for label, extra in (("example rules only", {}), ("+ flood + ladder, per instance", {"flood": "on"}),
                             ("+ flood + ladder, Redis", {"flood": "on", "REDIS_URL": redis_url})):
            os.environ.clear()
            os.environ.update({"PATH": "/usr/bin:/bin", "IM_SDKAPPID": SDKAPPID, "IM_CALLBACK_TOKEN": IM_TOKEN,
                               "RULES_PATH": str(rules if extra else ROOT / "rules.example.yaml")})
            os.environ.update({k: v for k, v in extra.items() if k == "REDIS_URL"})
            samples = []
            with quiet():
                handler = load_handler(ROOT / "functions" / "im_callback" / "index.py", f"bench_{uuid.uuid4().hex}")
                for i in range(2_000):
                    body = dict(load_event("im/c2c_before_text"), From_Account=f"sender{i % 400}",
                                MsgBody=[{"MsgType": "TIMTextElem", "MsgContent": {"Text": f"hello number {i}"}}])
                    event = trigger_event(body, im_query("C2C.CallbackBeforeSendMsg"))
                    began = time.perf_counter()
                    handler(event, scf_context())
                    samples.append((time.perf_counter() - began) * 1000)
            p50, p99, worst = percentiles(samples[100:])
            print(f"   {label:<32} p50 {p50:6.3f} ms   p99 {p99:6.3f} ms   max {worst:6.2f} ms")


def main() -> int:
    import redis

    print("Flood counters: one round trip per message (rate + repeat keys, sliding windows)")
    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=1).ping()
    except redis.RedisError as exc:
        print(f"   Redis at {REDIS_URL}: not reachable ({type(exc).__name__}); skipped")
        bench_round_trip("in process", LocalCounters())
        return 0
    bench_round_trip("Redis (loopback)", RedisCounters(REDIS_URL, timeout_ms=50))
    with quiet():
        local = LocalCounters()
        local.record([Window("warm", (1,), 1)], time.time())  # its one warning, said before the clock starts
    bench_round_trip("in process", local)
    print("\nThe whole C2C callback, main_handler in process, 2,000 calls from 400 senders:")
    bench_callback(REDIS_URL)
    redis.Redis.from_url(REDIS_URL).flushdb()
    return 0


if __name__ == "__main__":
    sys.exit(main())
