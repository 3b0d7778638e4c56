"""`make run` as a new user meets it: the local cloud (stand-in CI and IM) end to end, a banner that says
what is real, what is a stand-in and what does not answer, and the command line's rough edges (issue #17)."""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import List

import pytest

from imguard.audit.store import AuditStore
from imguard.config import ConfigError, Settings
from imguard.review.queue import ReviewQueue
from tests.conftest import ROOT, SDKAPPID

DEMO = ROOT / "tests" / "events" / "demo"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """`imguard serve` in its own process, as `make run` starts it, until its banner is out."""

    def __init__(self, folder: Path, env_file: str = "", extra_args: List[str] = (), **env: str):
        (folder / ".env").write_text(env_file, encoding="utf-8")
        self.port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "imguard", "serve", "--port", str(self.port), "--functions",
             str(ROOT / "functions"), *extra_args],
            cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={"PATH": os.environ["PATH"], "NO_PROXY": "127.0.0.1", **env})
        self.banner = self._read_until("Ctrl-C stops.")

    def _read_until(self, marker: str, timeout: float = 30.0) -> str:
        lines, end = [], time.monotonic() + timeout
        while time.monotonic() < end:
            line = self.process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if marker in line:
                break
        return "".join(lines)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


@pytest.fixture
def server(tmp_path):
    started: List[Server] = []

    def start(**kwargs) -> Server:
        started.append(Server(tmp_path, **kwargs))
        return started[-1]

    yield start
    for one in started:
        one.stop()


def imguard(folder: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "imguard", *args], cwd=folder, capture_output=True, text=True,
                          timeout=120, env={"PATH": os.environ["PATH"], "NO_PROXY": "127.0.0.1", **env})


def test_the_banner_says_what_is_real_what_is_a_stand_in_and_how_to_read_the_trail(server, tmp_path):
    # GIVEN a new user's .env, copied from the example (AUDIT_DSN= empty is "not chosen", not "off")
    started = server(env_file="IM_SDKAPPID=1400000000\nAUDIT_DSN=\n")

    banner = started.banner
    assert "im_callback: ready" in banner and "audio_result: ready" in banner
    assert re.search(r"CI: STAND-IN at http://127\.0\.0\.1:\d+ \(fixed demo verdicts", banner)
    assert re.search(r"IM REST API \(withdrawals, mutes\): STAND-IN at http://127\.0\.0\.1:\d+", banner)
    assert "audit trail: sqlite:///.imguard/audit.db" in banner
    command = re.search(r"\(read it: (\S+) audit list", banner).group(1)
    assert Path(command).is_file() or command.endswith("-m imguard")  # a command that runs from this shell


def test_without_the_local_cloud_the_banner_says_what_is_off(server):
    banner = server(env_file="IM_SDKAPPID=1400000000\n", extra_args=["--no-local-cloud"]).banner

    assert "CI: OFF (no COS_BUCKET): images, audio and video are allowed unjudged" in banner
    assert "IM REST API: OFF" in banner and "callbacks: UNSIGNED" in banner
    assert "audio_result: NOT CONFIGURED, answers 503: JOB_SIGNING_KEY: required by this function" in banner


def test_a_configuration_error_names_every_bad_variable_in_the_banner(server):
    banner = server(env_file="IM_SDKAPPID=1400000000\nDEADLINE_MS=5\nFAIL_MODE=maybe\nREDIS_URL=localhost\n").banner

    line = next(l for l in banner.splitlines() if "im_callback:" in l)
    assert "NOT CONFIGURED" in line
    for variable in ("DEADLINE_MS: 5 is outside 50..1900", "FAIL_MODE: expected one of open, closed",
                     "REDIS_URL: expected redis://"):
        assert variable in line


def test_every_bad_variable_is_reported_at_once():
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({"DEADLINE_MS": "x", "COS_BUCKET": "no", "RULES_URL": "ftp://x", "JOB_SIGNING_KEY": "short"})

    assert set(raised.value.problems) == {"IM_SDKAPPID", "DEADLINE_MS", "COS_BUCKET", "COS_REGION", "COS_SECRET_ID",
                                          "COS_SECRET_KEY", "RULES_URL", "JOB_SIGNING_KEY"}


def test_a_port_already_in_use_is_one_clear_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = imguard(tmp_path, "serve", "--port", str(port), "--functions", str(ROOT / "functions"),
                         "--no-local-cloud", IM_SDKAPPID=SDKAPPID)

    assert result.returncode == 2
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr and "Traceback" not in result.stderr


def test_the_demo_allows_blocks_rewrites_withdraws_mutes_and_queues_through_the_local_cloud(server, tmp_path):
    # GIVEN make demo's server: the demo rules, its own store, the local cloud
    dsn = f"sqlite:///{tmp_path}/demo.db"
    started = server(env_file="", AUDIT_DSN=dsn, RULES_PATH=str(DEMO / "rules.yaml"))

    # WHEN the demo bodies are replayed, with PORT naming the server (no --url)
    replayed = imguard(tmp_path, "replay", str(DEMO), "--wait", "10", PORT=str(started.port), AUDIT_DSN=dsn)

    # THEN each answer is what its name says, with the rewritten text and why
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    rows = {line.split()[0].rsplit("/", 1)[-1]: line for line in replayed.stdout.splitlines()[1:]}
    assert " allow " in rows["01_allow.json"]
    assert " reject " in rows["02_block_by_rule.json"] and "rule block:傻逼" in rows["02_block_by_rule.json"]
    assert "rewrite: 这个***又迟到了" in rows["03_rewrite.json"] and "rule replace:傻冒" in rows["03_rewrite.json"]
    assert 'ci:Ads(90) "代开发票"' in rows["04_block_by_ci.json"]
    assert "ci:Porn(95)" in rows["05_image_block_by_ci.json"]
    assert "then muted: step 1: 3 blocks" in rows["09_spammer_block_3_of_3_mute.json"]
    assert "rule review:兼职" in rows["10_review_queue.json"]
    # AND after it: CI's verdict came back on its own, and IM withdrew the sound it had delivered
    store = AuditStore(dsn)
    try:
        end = time.monotonic() + 15
        while not store.recent(action="withdrawn") and time.monotonic() < end:
            time.sleep(0.2)
        [withdrawn] = store.recent(action="withdrawn")
        [muted] = store.recent(scene="sanction")
        [queued] = ReviewQueue(store).list()
    finally:
        store.dispose()
    assert withdrawn["sender"] == "carol" and withdrawn["command"] == "CI.audio_review"
    assert muted["action"] == "muted" and muted["sender"] == "spammer"
    assert queued["content"]["text"] == "招聘兼职，日结三百"


def test_make_demo_keeps_its_own_store():
    recipe = (ROOT / "Makefile").read_text(encoding="utf-8").split("\ndemo:", 1)[1].split("\n\n", 1)[0]

    assert recipe.count("AUDIT_DSN=$(DEMO_DSN)") >= 2 and "DEMO_DSN := sqlite:///.imguard/demo.db" in (
        ROOT / "Makefile").read_text(encoding="utf-8")


def test_check_reads_stdin_and_files(tmp_path):
    texts = tmp_path / "texts.txt"
    texts.write_text("你好\n你个傻逼\n\n", encoding="utf-8")
    rules = str(ROOT / "rules.example.yaml")

    from_stdin = subprocess.run([sys.executable, "-m", "imguard", "check", "--rules", rules, "-"], input="傻@冒\nhi\n",
                                capture_output=True, text=True, check=True)
    from_file = subprocess.run([sys.executable, "-m", "imguard", "check", "--rules", rules, "--file", str(texts)],
                               capture_output=True, text=True, check=True)
    nothing = subprocess.run([sys.executable, "-m", "imguard", "check", "--rules", rules], capture_output=True, text=True)

    assert [json.loads(line)["action"] for line in from_stdin.stdout.splitlines()] == ["replace", "pass"]
    assert [json.loads(line)["action"] for line in from_file.stdout.splitlines()] == ["pass", "block"]
    assert nothing.returncode == 2 and "- for stdin, or --file PATH" in nothing.stderr
