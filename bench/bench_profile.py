"""Where a warm im_callback spends its time, and what a million callbacks cost on SCF.

1. Latency: im_callback's ``index.main_handler`` in this process (loaded as SCF loads it), local rules
   only (bench_rules.py's 9,800 keywords + 200 regexes, the figure README quotes from
   bench_callback.py), CI off, no audit store, 200-character texts; CALLS calls after a warm-up,
   each timed alone. Events are built beforehand: only the handler is timed, as SCF bills it.
2. Profile: the same CALLS calls under cProfile. Each part is the cumulative time of the functions
   that implement it, as a share of main_handler's cumulative time. The parts do not call one
   another, so their shares add up; what is left is listed by own time. cProfile charges every
   Python call, so parts made of many small calls look bigger than they are unprofiled: the
   shares are a map, the latency figures are the clock.
3. Cost: GB-s per million callbacks at memorySize 128 MB from the measured mean (SCF bills the sum
   of durations, so the mean, not a percentile), and with an assumed CI latency on top.

    python bench/bench_profile.py               # about ten seconds
"""
from __future__ import annotations

import contextlib
import cProfile
import math
import os
import pstats
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Sequence, Set, Tuple

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from bench_rules import SEED, build  # noqa: E402  (the lexicon of make bench's other tables)

from imguard.config import VARIABLES  # noqa: E402
from imguard.local.gateway import api_gateway_event, load_handler, scf_context  # noqa: E402
from imguard.local.replay import callback_query  # noqa: E402

CALLS = 10_000
WARM_UP = 200
SDKAPPID = "1400000000"
COMMAND = "C2C.CallbackBeforeSendMsg"
INDEX = "functions/im_callback/index.py"
Key = Tuple[str, int, str]  # pstats: (file, line, function)

# The parts of a warm callback: (what, [(file under shared/imguard, function name), ...]).
PARTS: List[Tuple[str, List[Tuple[str, str]]]] = [
    ("the log line", [("logs.py", "emit"), ("audit/record.py", "log_fields")]),
    ("the rules scan", [("rules/ruleset.py", "scan")]),
    ("the request view", [("http/request.py", "__init__"), ("http/request.py", "json_object")]),
    ("building the audit record", [("handlers/context.py", "audit")]),
    ("the message walk", [("im/messages.py", "extract")]),
]

# Billing (Tencent doc 583/12285, "Billing Example"): resource usage = configured memory x execution
# duration, by actual duration since SCF stopped rounding up to 100 ms; its example (128 MB, 37 ms,
# 1 million calls -> 4,625 GB-s) bills 37 ms as 37 ms and 128 MB as 0.125 GB. The unit the duration is
# rounded up to is not stated there: 1 ms is assumed (BILLING_MS).
MEMORY_MB = 128
BILLING_MS = 1
CI_LATENCY_MS = 150.0  # assumed: a CI text check answering in about 150 ms
DEADLINE_MS = 1500  # CI hanging: every callback waits the whole deadline


def load_im_callback(rules_path: str) -> Callable:
    """index.main_handler with local rules only: every imguard variable unset but these."""
    for name in VARIABLES:
        os.environ.pop(name, None)
    os.environ.update(IM_SDKAPPID=SDKAPPID, RULES_PATH=rules_path)
    return load_handler(ROOT / "functions" / "im_callback" / "index.py", "bench_profile_im_callback")


def events(texts: Sequence[str]) -> List[Tuple[Dict, Dict]]:
    import json

    pairs = []
    for text in texts:
        body = {"CallbackCommand": COMMAND, "From_Account": "alice", "To_Account": "bob", "MsgKey": "1_2_3",
                "MsgBody": [{"MsgType": "TIMTextElem", "MsgContent": {"Text": text}}]}
        event = api_gateway_event("POST", "/im_callback", callback_query(SDKAPPID, COMMAND), {},
                                  json.dumps(body, ensure_ascii=False).encode(), "127.0.0.1")
        pairs.append((event, scf_context("im_callback")))
    return pairs


@contextlib.contextmanager
def quiet():
    """The JSON log lines are still made and written (their cost is real); they just go nowhere."""
    with open(os.devnull, "w") as null, contextlib.redirect_stdout(null):
        yield


def latency(handler: Callable, pairs: Sequence[Tuple[Dict, Dict]]) -> List[float]:
    samples = []
    for event, context in pairs:
        started = time.perf_counter()
        handler(event, context)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def profile(handler: Callable, pairs: Sequence[Tuple[Dict, Dict]]) -> pstats.Stats:
    profiler = cProfile.Profile()
    profiler.enable()
    for event, context in pairs:
        handler(event, context)
    profiler.disable()
    return pstats.Stats(profiler)


def cumulative(stats: pstats.Stats, where: str, name: str) -> Tuple[float, int]:
    """(cumulative seconds, calls) of the function ``name`` defined in ``where``; (0, 0) if never called."""
    total, calls = 0.0, 0
    for (filename, _, function), (_, ncalls, _, ct, _) in stats.stats.items():  # type: ignore[attr-defined]
        if function == name and filename.replace(os.sep, "/").endswith(where):
            total, calls = total + ct, calls + ncalls
    return total, calls


def profile_table(stats: pstats.Stats) -> str:
    handler_s, handler_calls = cumulative(stats, INDEX, "main_handler")
    lines = ["| part | functions (cumulative time) | calls per callback | µs per callback | % of handler |",
             "|---|---|---:|---:|---:|"]
    parts_s = 0.0
    for label, functions in PARTS:
        found = [(f"{where.rsplit('/', 1)[-1][:-3]}.{name}",) + cumulative(stats, "imguard/" + where, name)
                 for where, name in functions]
        seconds = sum(s for _, s, _ in found)
        parts_s += seconds
        names = ", ".join(f"{name} {s / handler_calls * 1e6:.1f}" if len(found) > 1 else name for name, s, _ in found)
        calls = " + ".join(f"{c / handler_calls:g}" for _, _, c in found)
        lines.append(f"| {label} | {names} | {calls} | {seconds / handler_calls * 1e6:.1f} | "
                     f"{seconds / handler_s:.0%} |")
    rest_s = handler_s - parts_s
    lines.append(f"| the rest | see below | | {rest_s / handler_calls * 1e6:.1f} | {rest_s / handler_s:.0%} |")
    lines.append(f"| **main_handler** | index.main_handler | 1 | {handler_s / handler_calls * 1e6:.1f} | 100% |")
    return "\n".join(lines)


def _short(key: Tuple[str, int, str]) -> str:
    """imguard/... for ours, the last two path parts for the standard library, the name for built-ins."""
    filename, _, function = key
    path = filename.replace(os.sep, "/")
    if filename == "~":
        return function
    where = path.split("/shared/", 1)[-1] if "/shared/" in path else "/".join(path.rsplit("/", 2)[-2:])
    return f"{where} {function}"


def _reach(start: Set[Key], edges: Callable[[Key], Sequence[Key]]) -> Set[Key]:
    seen, todo = set(start), list(start)
    while todo:
        for following in edges(todo.pop()):
            if following not in seen:
                seen.add(following)
                todo.append(following)
    return seen


def the_rest(stats: pstats.Stats, rest_s: float, count: int = 6) -> List[str]:
    """What ``the rest`` is made of, additively: the own time of the functions on the way from main_handler
    to the parts (serve, route, before_send, ...), and what else they call, timed on those call edges."""
    table = stats.stats  # type: ignore[attr-defined]  # key -> (cc, nc, tt, ct, {caller: (nc, cc, tt, ct)})
    callees: Dict[Key, List[Key]] = {}
    for key, (*_, callers) in table.items():
        for caller in callers:
            callees.setdefault(caller, []).append(key)
    parts = {key for key in table for _, functions in PARTS for where, name in functions
             if key[2] == name and key[0].replace(os.sep, "/").endswith("imguard/" + where)}
    main = {key for key in table if key[2] == "main_handler" and key[0].replace(os.sep, "/").endswith(INDEX)}
    way = (_reach(parts, lambda k: list(table[k][4])) & _reach(main, lambda k: callees.get(k, []))) - parts
    spine = ", ".join(sorted(f"{Path(key[0]).stem}.{key[2]}" for key in way))
    items = {f"own time of {spine}": sum(table[key][2] for key in way)}
    for key, (*_, callers) in table.items():
        if key not in way and key not in parts:
            on_the_way = sum(edge[3] for caller, edge in callers.items() if caller in way)
            if on_the_way:  # several functions can share a short name (comprehensions): summed
                items[_short(key)] = items.get(_short(key), 0.0) + on_the_way
    ranked = sorted(items.items(), key=lambda item: -item[1])
    lines = [f"{seconds * 1e6 / CALLS:6.1f} µs  {name}" for name, seconds in ranked[:count]]
    lines.append(f"{sum(s for _, s in ranked[count:]) * 1e6 / CALLS:6.1f} µs  {len(ranked) - count} more")
    # cProfile's clock reads fall between the edges; what they leave is shown rather than spread.
    lines.append(f"{(rest_s - sum(s for _, s in ranked)) * 1e6 / CALLS:6.1f} µs  not on any call edge (profiler)")
    return lines


def gb_s_per_million(duration_ms: float) -> Tuple[int, float]:
    """(billed ms, GB-s per million callbacks) for one callback lasting ``duration_ms``."""
    billed_ms = max(1, math.ceil(duration_ms / BILLING_MS)) * BILLING_MS
    return billed_ms, MEMORY_MB / 1024 * billed_ms / 1000 * 1_000_000


def cost_table(mean_ms: float) -> str:
    rows = [("local rules only, measured mean", mean_ms),
            (f"local rules + CI answering in ~{CI_LATENCY_MS:.0f} ms (assumed)", mean_ms + CI_LATENCY_MS),
            (f"CI hanging: every callback waits DEADLINE_MS={DEADLINE_MS}", DEADLINE_MS + mean_ms)]
    lines = ["| callback | duration ms | billed ms | GB-s per million callbacks |", "|---|---:|---:|---:|"]
    for label, duration in rows:
        billed, gb_s = gb_s_per_million(duration)
        lines.append(f"| {label} | {duration:,.3f} | {billed:,} | {gb_s:,.0f} |")
    return "\n".join(lines)


def main() -> None:
    print(f"Warm im_callback profile (Python {sys.version.split()[0]}, {os.cpu_count()} cores)\n")
    keywords, regexes, messages = build(random.Random(SEED))
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False, encoding="utf-8") as rules:
        yaml.safe_dump({"block": keywords + regexes}, rules, allow_unicode=True)
    try:
        handler = load_im_callback(rules.name)
        texts = [(m * 4)[:200] for m in messages[:CALLS]]
        pairs = events(texts)
        with quiet():
            for event, context in pairs[:WARM_UP]:  # the normalization table fills on first sight of each character
                handler(event, context)
            samples = sorted(latency(handler, pairs))
            stats = profile(handler, pairs)
    finally:
        os.unlink(rules.name)
    mean = statistics.fmean(samples)
    pick = lambda q: samples[min(len(samples) - 1, int(len(samples) * q))]  # noqa: E731
    print(f"1. main_handler in process, local rules only ({len(keywords):,} keywords + {len(regexes)} regexes), "
          f"CI off, no audit store, 200-character texts, {CALLS:,} calls, ms:")
    print(f"   p50 {pick(0.5):.3f}  p99 {pick(0.99):.3f}  max {samples[-1]:.3f}  mean {mean:.3f}\n")

    handler_s, _ = cumulative(stats, INDEX, "main_handler")
    print(f"2. Where a warm callback's time goes: cProfile over the same {CALLS:,} calls "
          f"({handler_s / CALLS * 1e3:.3f} ms per call profiled, {mean:.3f} unprofiled)\n")
    print(profile_table(stats))
    print("\n   The rest, by what it is (µs per callback, profiled):")
    parts_s = sum(cumulative(stats, "imguard/" + where, name)[0] for _, functions in PARTS for where, name in functions)
    print("\n".join("   " + line for line in the_rest(stats, handler_s - parts_s)))

    print(f"\n3. Cost: SCF bills memory x billed duration (Tencent doc 583/12285: actual duration, no longer "
          f"rounded up to 100 ms;\n   its unit is not stated: {BILLING_MS} ms assumed, every call rounded up to it). "
          f"memorySize {MEMORY_MB} MB.\n")
    print(f"   GB-s per million = {MEMORY_MB} / 1024 GB x ceil(duration_ms / {BILLING_MS}) x {BILLING_MS} / 1000 s "
          f"x 1,000,000\n")
    print(cost_table(mean))
    print("\n   duration here is main_handler alone, in process. SCF's billed duration also holds its runtime's work "
          "around the handler\n   (event in, answer out) and, going by \"loading and execution of the function code\" "
          "(583/12284), a new instance's start-up\n   (bench_cold_start.py): these are floors. Invocation fees are "
          "extra; 128 MB is billed whatever the RSS.")


if __name__ == "__main__":
    main()
