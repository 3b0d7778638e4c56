"""`imguard audit list` and `imguard audit stats`: what an operator types to answer "why was this blocked?"."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest

from imguard.audit.record import AuditRecord, utc_now
from imguard.audit.store import AuditStore
from imguard.cli import main

ADS = {"source": "ci", "check": "text", "outcome": "block", "label": "Ads", "score": 91, "keywords": ["加微信"]}
RULE = {"source": "rules", "check": "rules", "outcome": "block", "label": "block", "keywords": ["block:赌博"]}


@pytest.fixture
def trail_dsn(sqlite_dsn, tmp_path, monkeypatch):
    """A store with a day of decisions; the CLI runs where no .env lies."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AUDIT_DSN", raising=False)
    now = utc_now()

    def rec(request_id, action, sender, text, reasons=(), ago=timedelta(0), **extra):
        return AuditRecord(event="callback.moderated", request_id=request_id, function="im_callback",
                           command="C2C.CallbackBeforeSendMsg", scene="c2c", action=action, sender=sender,
                           receiver="bob", text=text, reasons=list(reasons), created_at=now - ago, latency_ms=42.0,
                           **extra)

    store = AuditStore(sqlite_dsn)
    store.write([
        rec("r-old", "block", "mallory", "old spam", [ADS], ago=timedelta(days=3)),
        rec("r-ads", "block", "mallory", "加微信领红包", [ADS], ago=timedelta(minutes=30)),
        rec("r-rule", "block", "张三", "网上赌博", [RULE], ago=timedelta(minutes=10)),
        rec("r-ok", "allow", "alice", "hello", ago=timedelta(minutes=5)),
        rec("r-late", "allow", "alice", "hi", degraded="timeout", ago=timedelta(minutes=1)),
    ])
    store.dispose()
    return sqlite_dsn


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_list_shows_who_and_why_newest_first(trail_dsn, capsys):
    code, out, _ = run(capsys, "audit", "list", "--dsn", trail_dsn, "--since", "1h")

    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["TIME", "(Asia/Shanghai)", "ACTION", "SCENE"]  # the operator's zone
    assert len(lines) == 5  # header + four decisions in the last hour
    assert "fail policy (timeout)" in lines[1]
    assert "rule block:赌博" in lines[3] and "张三" in lines[3]
    assert 'ci:Ads(91) "加微信"' in lines[4]
    assert "old spam" not in out and "加微信领红包" not in out  # the text itself is not stored


def test_list_filters_by_user_action_and_exact_text_as_json(trail_dsn, capsys):
    code, out, _ = run(capsys, "audit", "list", "--dsn", trail_dsn, "--user", "mallory", "--action", "block", "--json")
    assert code == 0
    assert [r["request_id"] for r in json.loads(out)] == ["r-ads", "r-old"]

    code, out, _ = run(capsys, "audit", "list", "--dsn", trail_dsn, "--text", "网上赌博", "--json")
    [row] = json.loads(out)
    assert row["request_id"] == "r-rule" and row["reasons"][0]["rule"] == "block:赌博"


def test_stats_count_the_window(trail_dsn, capsys):
    code, out, _ = run(capsys, "audit", "stats", "--dsn", trail_dsn, "--since", "1d", "--json")

    assert code == 0
    stats = json.loads(out)
    assert stats["total"] == 4
    assert stats["by_action"] == [["allow", 2], ["block", 2]]
    assert stats["by_label"] == [["Ads", 1]]
    assert stats["top_senders"] == [["mallory", 1], ["张三", 1]]
    assert stats["top_rules"] == [["block:赌博", 1]]

    code, out, _ = run(capsys, "audit", "stats", "--dsn", trail_dsn)
    assert "4 decisions, since" in out and "block:赌博" in out


def test_audit_dsn_from_the_environment_is_used(trail_dsn, capsys, monkeypatch):
    monkeypatch.setenv("AUDIT_DSN", trail_dsn)

    code, out, _ = run(capsys, "audit", "list", "--json")

    assert code == 0 and len(json.loads(out)) == 5


@pytest.mark.parametrize("argv, code, message", [
    (["--since", "yesterday"], 2, "--since expects"),
    (["--dsn", "postgresql://postgres:s3cret@127.0.0.1:9/test"], 1, "cannot read postgresql+psycopg://postgres:***@"),
])
def test_bad_input_and_unreachable_stores_get_one_clear_line(trail_dsn, capsys, argv, code, message):
    result, out, err = run(capsys, "audit", "list", *(argv if "--dsn" in argv else ["--dsn", trail_dsn, *argv]))

    assert result == code
    assert message in err and "s3cret" not in err
    assert "Traceback" not in err


def test_since_with_a_utc_offset_means_that_moment():
    from imguard.audit.report import parse_since

    moment = parse_since("2026-05-01T08:00:00+08:00", now=utc_now())

    assert moment == parse_since("2026-05-01T00:00:00", now=utc_now())  # stored times are naive UTC
    assert moment.tzinfo is None


def test_a_decision_past_a_cap_names_the_cap_and_the_oversize_policy():
    from imguard.audit.report import why

    row = {"degraded": "oversize", "reasons": [{"source": "imguard", "outcome": "oversize",
                                                "detail": "cap: more than 20 images"}]}

    assert why(row) == "cap: more than 20 images; OVERSIZE_ACTION"


# -- the rough edges an operator found (issue #17) ----------------------------------------------------


def test_times_are_shown_in_the_operators_zone_and_fast_decisions_keep_their_milliseconds(sqlite_dsn, capsys):
    store = AuditStore(sqlite_dsn)
    store.write([AuditRecord(event="callback.moderated", request_id="r", function="im_callback", command="c",
                             scene="c2c", action="allow", latency_ms=0.4,
                             created_at=utc_now().replace(hour=1, minute=30, second=0, microsecond=0))])
    store.dispose()

    _, shanghai, _ = run(capsys, "audit", "list", "--dsn", sqlite_dsn)
    _, utc, _ = run(capsys, "audit", "list", "--dsn", sqlite_dsn, "--tz", "UTC")

    assert " 09:30:00 " in shanghai.splitlines()[1] and " 01:30:00 " in utc.splitlines()[1]
    assert " 0.4 " in shanghai.splitlines()[1]  # not 0
    code, _, err = run(capsys, "audit", "list", "--dsn", sqlite_dsn, "--tz", "Mars/Olympus")
    assert code == 2 and "unknown time zone 'Mars/Olympus'" in err


def test_an_action_no_decision_has_is_named_with_the_ones_that_exist(trail_dsn, capsys):
    code, out, err = run(capsys, "audit", "list", "--dsn", trail_dsn, "--action", "blocked")

    assert code == 2 and out == ""
    assert "no decision has the action 'blocked'; this store has: allow, block" in err


def test_run_from_a_subfolder_it_reads_make_runs_store_and_never_makes_an_empty_one(tmp_path, monkeypatch, capsys):
    project = tmp_path / "project"
    (project / ".imguard").mkdir(parents=True)
    store = AuditStore(f"sqlite:///{project}/.imguard/audit.db")
    store.write([AuditRecord(event="e", request_id="r-here", function="im_callback", command="c", scene="c2c",
                             action="block")])
    store.dispose()
    monkeypatch.delenv("AUDIT_DSN", raising=False)
    (project / "docs").mkdir()

    monkeypatch.chdir(project / "docs")
    found = run(capsys, "audit", "list", "--json")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match="no AUDIT_DSN, and no .imguard/audit.db"):
        main(["audit", "list"])

    assert [row["request_id"] for row in json.loads(found[1])] == ["r-here"]
    assert not (tmp_path / ".imguard").exists()


def test_a_store_that_cannot_be_reached_says_what_the_driver_said(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "audit", "list", "--dsn", "postgresql://imguard:s3cret@127.0.0.1:9/x")

    assert code == 1
    assert "OperationalError" in err and "127.0.0.1" in err and "refused" in err.lower()
    assert "s3cret" not in err


def test_a_reader_that_goes_away_is_not_an_error(sqlite_dsn, tmp_path):
    import os
    import subprocess
    import sys

    store = AuditStore(sqlite_dsn)
    store.write([AuditRecord(event="e", request_id=f"r{i}", function="im_callback", command="c", scene="c2c",
                             action="block", sender="x" * 100) for i in range(3000)])
    store.dispose()
    # `| head -c 1` closes the pipe after one byte: the rest (far more than a pipe holds) has nowhere to go
    process = subprocess.run(f"{sys.executable} -m imguard audit list --json --limit 3000 --dsn {sqlite_dsn} | head -c 1",
                             shell=True, capture_output=True, text=True, cwd=tmp_path,
                             env={"PATH": os.environ["PATH"]})

    assert process.stdout == "[" and "Traceback" not in process.stderr and "BrokenPipe" not in process.stderr
