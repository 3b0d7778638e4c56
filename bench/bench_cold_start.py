"""Cold start as an operator sees it: the built im_callback folder, started the way SCF starts it.

For each SCF target Python found here (3.9, 3.10: ``build_scf.find_python``; a missing one is
skipped, saying so), ``scripts/build_scf.py --python X --rules rules.example.yaml`` builds once
into a temporary folder (bytecode compiled by the target, unchecked-hash). Then each configuration
is started in a fresh interpreter ``python -I -S -B``, only the folder first on ``sys.path``
(build_scf's PROBE), in a clean environment holding the build check's IM settings
(``CHECK_ENV``) plus the configuration's own variables:

    no CI          local rules only: the bundled rules.yaml
    CI on          COS_* and CI_DOMAIN at a fake CI on 127.0.0.1 that accepts and never answers;
                   DEADLINE_MS left at its default (1500)
    CI + SQL       the same, and AUDIT_DSN=sqlite:///<tmp>/audit.db (a new file each run)
    CI + SQL + 10k the same, from a second build bundling a 10,000-entry rules file (9,800 keywords
                   + 200 regexes: bench_rules.py's lexicon), which make build compiled
    ... from RULES_PATH the same 10,000 entries read from outside the code folder: parsed and
                   compiled by the instance itself

Each start reports: import ms (``import index``), first-answer ms (from the start of that import
to main_handler's answer to a recorded C2C text callback, signed as IM signs it), VmRSS after the
answer, and ``import index`` ÷ ``import requests`` alone (same interpreter, same folder, same
flags). Every row is the median of RUNS starts, the worst in brackets; the configurations take
turns run by run, so a slow moment of the machine spreads over all rows instead of landing on one.
Then, once (the first target found), the same starts on copies of the folders without
``__pycache__`` and ``rules.yaml.compiled``: what the build saves (SCF sets PYTHONDONTWRITEBYTECODE, so an instance
without it compiles everything it imports, every time).

    python bench/bench_cold_start.py        # about three minutes on 2 cores (the CI rows wait 1.5 s each)
    RUNS=3 python bench/bench_cold_start.py # a quick look
"""
from __future__ import annotations

import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "bench"))

import build_scf  # noqa: E402  (find_python, recorded_events, CHECK_ENV: the build check's own)

RUNS = int(os.environ.get("RUNS", "10"))
IM_LIMIT_MS = 2000  # IM waits 2 s, then delivers whatever imguard would have said
C2C = "C2C.CallbackBeforeSendMsg"
MIB = 1024

# Runs in the target interpreter. The event arrives on stdin and is read before the clock starts;
# everything after ``started`` is what a new SCF instance does before its first answer (SCF's own
# bootstrap aside). os._exit at the end: the CI call abandoned at the deadline is still parked on
# the hanging socket, and a normal exit would join its thread for another half second.
PROBE = r"""
import os, sys, time
raw = sys.stdin.read()
started, began = time.perf_counter(), time.monotonic()
sys.path.insert(0, sys.argv[1])

def rss_kb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))

if sys.argv[2] == "requests":
    import requests
    imported = answered = time.perf_counter()
    answer, sql_at_import = None, False
else:
    import index
    imported = time.perf_counter()
    sql_at_import = "sqlalchemy" in sys.modules
    import json
    event, context = json.loads(raw)
    answer = index.main_handler(event, context)
    answered = time.perf_counter()
figures = {"import_ms": (imported - started) * 1000, "answer_ms": (answered - started) * 1000, "began": began,
           "rss_kb": rss_kb(), "answer": answer, "sqlalchemy": sql_at_import,
           "site": [p for p in sys.path if "site-packages" in p]}
if answer is not None and os.environ.get("AUDIT_DSN"):
    # The store is built by the audit writer after the answer: what the instance holds once it has.
    trail = getattr(getattr(getattr(index, "_app", None), "services", None), "trail", None)
    if trail is not None and trail.flush(10) and trail.written:
        figures["settled_kb"] = rss_kb()
import json
print("COLD " + json.dumps(figures))
sys.stdout.flush()
os._exit(0)
"""

class HangingCI:
    """A CI endpoint that accepts every connection and never answers: the worst a network can do
    to the first answer (a refused connection would fail fast and measure nothing)."""

    def __enter__(self) -> "HangingCI":
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self._listener.settimeout(0.2)  # so that the accept loop notices the end
        self.port = self._listener.getsockname()[1]
        self._held: List[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="hanging-ci", daemon=True)
        self._thread.start()
        return self

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._listener.accept()
            except socket.timeout:
                continue
            self._held.append(connection)  # held open, never read, never answered

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._listener.close()
        for connection in self._held:
            connection.close()


# Each configuration: its label, its variables, and which build it starts (the example rules bundled, or 10k).
Config = Tuple[str, Dict[str, str], str]


def configurations(ci_port: int, rules_10k: Path) -> List[Config]:
    ci = {"COS_BUCKET": "imguard-1250000000", "COS_REGION": "ap-guangzhou", "COS_SECRET_ID": "AKIDbench",
          "COS_SECRET_KEY": "bench-secret", "CI_DOMAIN": f"127.0.0.1:{ci_port}", "CI_SCHEME": "http"}
    sql = {**ci, "AUDIT_DSN": "sqlite:///{run}/audit.db"}  # {run}: a fresh folder per start, filled in below
    return [
        ("no CI (bundled rules.yaml)", {}, "example"),
        ("CI on, CI hanging", ci, "example"),
        ("CI + SQL audit store", sql, "example"),
        ("CI + SQL + 10,000 rules bundled", sql, "10k"),
        ("... the 10,000 from RULES_PATH", {**sql, "RULES_PATH": str(rules_10k)}, "example"),
    ]


def write_10k_rules(path: Path) -> str:
    """9,800 keywords + 200 regexes, deterministic. bench_rules.py's lexicon (OpenCC phrases and seeded
    words, what the rules and callback tables use) when its imports are here, else seeded stand-ins."""
    try:
        import yaml
        from bench_rules import SEED, build

        keywords, regexes, _ = build(random.Random(SEED))
        path.write_text(yaml.safe_dump({"block": keywords + regexes}, allow_unicode=True), encoding="utf-8")
        return "bench_rules.py's lexicon"
    except ImportError:
        rng = random.Random(20261121)
        words = set()
        while len(words) < 9_800:
            if len(words) % 3:
                words.add("".join(chr(rng.randint(0x4E00, 0x9FA5)) for _ in range(rng.randint(2, 4))))
            else:
                words.add("".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(5, 9))))
        entries = sorted(words) + [{"regex": rf"{rng.choice('abcdefghijklmnopqrstuvwxyz')}{i}\d{{3,}}"}
                                   for i in range(200)]
        path.write_text(json.dumps({"block": entries}, ensure_ascii=False), encoding="utf-8")  # JSON is YAML
        return "seeded stand-in words (bench_rules.py not importable)"


def c2c_text_event() -> Tuple[dict, dict]:
    """The first recorded C2C callback that is text only, signed now (the Sign is good for 60 s)."""
    for event, context in build_scf.recorded_events("im_callback"):
        if event["queryString"]["CallbackCommand"] == C2C:
            types = {element.get("MsgType") for element in json.loads(event["body"]).get("MsgBody", [])}
            if types == {"TIMTextElem"}:
                return event, context
    raise SystemExit("no text-only C2C event in tests/events/im")


def build(python: str, out: Path, rules: Path) -> Optional[str]:
    """Build for ``python`` into ``out`` bundling ``rules``; None, or why the build cannot be measured."""
    process = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build_scf.py"), "--python", python,
         "--rules", str(rules), "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True)
    if process.returncode != 0 or "checked im_callback" not in process.stdout:
        return f"build for {python} failed:\n{(process.stdout + process.stderr)[-2000:]}"
    return None


def start(python_bin: str, folder: Path, module: str, env: Dict[str, str], scratch: Path) -> dict:
    """One cold start of ``module`` (index or requests) from ``folder``: the PROBE's figures and log lines."""
    run = Path(tempfile.mkdtemp(dir=scratch))
    env = {name: value.replace("{run}", str(run)) for name, value in env.items()}
    event = c2c_text_event()
    spawned = time.monotonic()  # CLOCK_MONOTONIC, the same clock in every process: the probe's `began` compares
    process = subprocess.run(
        [python_bin, "-I", "-S", "-B", "-c", PROBE, str(folder), module], cwd=folder,
        input=json.dumps(event), capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "USER_CODE_ROOT": str(folder),
             **build_scf.CHECK_ENV["im_callback"], **env})
    lines = process.stdout.splitlines()
    marker = [line for line in lines if line.startswith("COLD ")]
    if process.returncode != 0 or not marker:
        raise RuntimeError(f"{module} did not start from {folder} on {python_bin}:\n{process.stderr[-2000:]}")
    result = json.loads(marker[-1][len("COLD "):])
    if result["site"]:
        raise RuntimeError(f"site-packages on sys.path: {result['site']}")
    result["interpreter_ms"] = (result["began"] - spawned) * 1000
    result["log"] = [json.loads(line) for line in lines if line.startswith("{")]
    if module == "index":
        answer = result["answer"]
        if answer.get("statusCode") != 200 or not isinstance(json.loads(answer["body"]).get("ErrorCode"), int):
            raise RuntimeError(f"no IM answer: {answer}")
        moderated = [line for line in result["log"] if line.get("event") == "callback.moderated"]
        if not moderated:
            raise RuntimeError(f"no callback.moderated log line: {result['log']}")
        result["moderated"] = moderated[0]
    return result


def measure(python_bin: str, folders: Dict[str, Path], configs: Sequence[Config],
            scratch: Path) -> Tuple[List[dict], List[List[dict]]]:
    """RUNS starts of ``import requests`` and of each configuration, taking turns."""
    baseline: List[dict] = []
    rows: List[List[dict]] = [[] for _ in configs]
    for _ in range(RUNS):
        baseline.append(start(python_bin, folders["example"], "requests", {}, scratch))
        for i, (label, env, build_of) in enumerate(configs):
            result = start(python_bin, folders[build_of], "index", env, scratch)
            if "COS_BUCKET" in env and result["moderated"].get("degraded") != "timeout":
                # A fake CI that refused or answered would measure the wrong thing entirely.
                raise RuntimeError(f"{label}: expected a CI timeout, got {result['moderated']}")
            rows[i].append(result)
    return baseline, rows


def cell(values: Sequence[float], digits: int = 0) -> str:
    return f"{statistics.median(values):,.{digits}f} [{max(values):,.{digits}f}]"


def table(title: str, configs: Sequence[Config], baseline: List[dict],
          rows: List[List[dict]]) -> Tuple[str, bool]:
    """The markdown table and its notes; and whether every first answer with CI hanging beat IM's 2 s."""
    requests_ms = statistics.median(r["import_ms"] for r in baseline)
    lines = [f"### {title}", "",
             "| configuration | import ms | first answer ms | RSS MiB | import ÷ requests |",
             "|---|---:|---:|---:|---:|"]
    over, cold_logged = [], []
    for (label, env, _), results in zip(configs, rows):
        imports = [r["import_ms"] for r in results]
        answers = [r["answer_ms"] for r in results]
        if "COS_BUCKET" in env and max(answers) >= IM_LIMIT_MS:
            over.append(f"{label} (worst {max(answers):,.0f} ms)")
        logged = [r["moderated"]["cold_start_ms"] for r in results if "cold_start_ms" in r["moderated"]]
        if logged:
            cold_logged.append(f"{label} {cell(logged)}")
        lines.append(f"| {label} | {cell(imports)} | {cell(answers)} | {cell([r['rss_kb'] / MIB for r in results], 1)} "
                     f"| {statistics.median(imports) / requests_ms:.2f} [{max(imports) / requests_ms:.2f}] |")
    everything = baseline + [r for results in rows for r in results]
    lines += ["", f"Median of {RUNS} starts [worst]; the ratio is each row's median (worst) import over the median "
                  f"`import requests`.",
              f"`import requests` alone: {cell([r['import_ms'] for r in baseline])} ms, RSS "
              f"{cell([r['rss_kb'] / MIB for r in baseline], 1)} MiB. The interpreter's own start before any of this "
              f"(spawn to the probe's first line): {cell([r['interpreter_ms'] for r in everything])} ms."]
    if cold_logged:  # the instance's own account of its start (imguard's import to the first call)
        lines.append("`cold_start_ms` in the first answer's log line: " + "; ".join(cold_logged) + ".")
    for (label, env, _), results in zip(configs, rows):
        if "AUDIT_DSN" in env and label == "CI + SQL audit store":
            early = sum(r["sqlalchemy"] for r in results)
            settled = [r["settled_kb"] / MIB for r in results if "settled_kb" in r]
            lines.append(f"{label}: SQLAlchemy imported by `import index` in {early} of {len(results)} starts (the audit "
                         f"writer starts loading it as the answer leaves); RSS once it has stored the record: "
                         + (f"{cell(settled, 1)} MiB." if settled else "not measured (no record written)."))
    lines.append(f"With CI hanging, every first answer under IM's {IM_LIMIT_MS:,} ms." if not over else
                 f"OVER IM's {IM_LIMIT_MS:,} ms with CI hanging (IM delivers unjudged): " + "; ".join(over) + ".")
    return "\n".join(lines), not over


def main() -> int:
    began = time.monotonic()
    print(f"Cold start of the built im_callback (python -I -S -B, only the folder on sys.path), "
          f"{os.cpu_count()} cores, {RUNS} starts per row\n", flush=True)
    targets = []
    for version in build_scf.TARGETS:
        python_bin = build_scf.find_python(version)
        if python_bin is None:
            print(f"Python {version}: skipped, no python{version} here (SCF_PYTHON_BIN, PATH or pyenv)\n")
        else:
            targets.append((version, python_bin))
    if not targets:
        return 0
    with tempfile.TemporaryDirectory(prefix="imguard-cold-") as tmp, HangingCI() as ci:
        scratch = Path(tmp)
        rules_10k = scratch / "rules-10k.yaml"
        source = write_10k_rules(rules_10k)
        configs = configurations(ci.port, rules_10k)
        print(f"10,000-entry rules file: {source}.\n", flush=True)
        builds: Dict[str, Dict[str, Path]] = {}
        all_in_time = True
        for version, python_bin in targets:
            tag = f"py{version.replace('.', '')}"
            failure = (build(version, scratch / tag, ROOT / "rules.example.yaml")
                       or build(version, scratch / f"{tag}-10k", rules_10k))
            if failure:
                print(f"Python {version}: skipped, {failure}\n", flush=True)
                continue
            folders = builds[version] = {"example": scratch / tag / "im_callback",
                                         "10k": scratch / f"{tag}-10k" / "im_callback"}
            text, in_time = table(f"Python {version} ({python_bin}), built folders with their bytecode and compiled "
                                  f"rules", configs, *measure(python_bin, folders, configs, scratch))
            print(text + "\n", flush=True)
            all_in_time &= in_time
        if builds:
            version, python_bin = next((v, b) for v, b in targets if v in builds)
            bare = {}
            for name, folder in builds[version].items():
                bare[name] = scratch / f"bare-{name}" / "im_callback"
                shutil.copytree(folder, bare[name], ignore=shutil.ignore_patterns("__pycache__", "*.compiled"))
            text, in_time = table(f"Python {version}, the same folders WITHOUT their bytecode and compiled rules",
                                  configs, *measure(python_bin, bare, configs, scratch))
            print(text + "\n")
            all_in_time &= in_time
    print(f"({time.monotonic() - began:.0f} s)")
    return 0 if all_in_time else 1  # a first answer IM would not wait for fails make bench


if __name__ == "__main__":
    sys.exit(main())
