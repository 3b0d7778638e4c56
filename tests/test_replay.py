"""`imguard replay` (and `make demo`): recorded bodies posted as IM would, answers summarised."""
from __future__ import annotations

import threading

import pytest

from imguard.cli import main
from imguard.local.gateway import LocalGateway, build_routes
from imguard.local.replay import command_of, summarise
from tests.conftest import EVENTS, ROOT, SDKAPPID, load_event

TOKEN = "replay-token-0123456789"


@pytest.fixture
def local_server(base_env, tmp_path, monkeypatch):
    """Both functions behind the local gateway, with callback auth on and a block rule."""
    rules = tmp_path / "rules.yaml"
    rules.write_text("block: [red packet]\nreplace: [remark1]\n", encoding="utf-8")
    base_env(IM_SDKAPPID=SDKAPPID, IM_CALLBACK_TOKEN=TOKEN, RULES_PATH=str(rules))
    monkeypatch.chdir(tmp_path)  # no .env of the developer's
    server = LocalGateway(("127.0.0.1", 0), build_routes(ROOT / "functions"))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/im_callback"
    server.shutdown()
    server.server_close()


def test_replaying_the_recorded_events_signs_each_request_and_tabulates_the_answers(local_server, capsys):
    # WHEN every recorded IM event is replayed with the token IM would sign with
    code = main(["replay", str(EVENTS / "im"), str(EVENTS / "ci"), "--url", local_server])

    # THEN every request passed callback auth, and each answer is one row
    table = [line for line in capsys.readouterr().out.splitlines() if not line.startswith("{")]  # not the server's log
    rows = {line.split()[0].rsplit("/", 1)[-1]: line for line in table[1:]}
    assert code == 0
    assert "C2C.CallbackBeforeSendMsg" in rows["c2c_before_text.json"] and " reject " in rows["c2c_before_text.json"]
    assert " denied 1 of 1 " in rows["sns_prev_friend_add.json"]  # the remark is on the replace list
    assert "ContentCallback.ResultNotify" in rows["content_callback_result.json"]
    assert " allow " in rows["c2c_before_custom.json"]
    assert "skipped: not an IM callback body" in rows["audio_simple_guide.json"]
    assert not any("HTTP 4" in line for line in table)
    assert len(rows) == len(list((EVENTS / "im").rglob("*.json"))) + len(list((EVENTS / "ci").rglob("*.json")))


def test_a_missing_server_is_reported_and_fails(tmp_path, base_env, capsys, monkeypatch):
    base_env()
    monkeypatch.chdir(tmp_path)

    code = main(["replay", str(EVENTS / "im" / "c2c_before_text.json"), "--url", "http://127.0.0.1:9/im_callback"])

    assert code == 1
    assert "no server at http://127.0.0.1:9/im_callback" in capsys.readouterr().out


def test_the_command_comes_from_the_body_or_from_a_result_notifys_fields():
    assert command_of(load_event("im/c2c_before_text")) == "C2C.CallbackBeforeSendMsg"
    assert command_of(load_event("im/content_callback_result")) == "ContentCallback.ResultNotify"
    assert command_of(load_event("ci/audio_simple_guide")) is None
    assert command_of(["not", "a", "body"]) is None


@pytest.mark.parametrize("status, answer, expected", [
    (200, {"ErrorCode": 0}, "allow"),
    (200, {"ErrorCode": 0, "MsgBody": []}, "rewrite"),
    (200, {"ErrorCode": 2}, "silent drop"),
    (200, {"ErrorCode": 120001}, "reject"),
    (200, {"ErrorCode": 0, "ResultItem": [{"To_Account": "a", "ResultCode": 0}]}, "allowed 1"),
    (403, {"error": "Forbidden", "message": "Sign mismatch"}, "HTTP 403: Forbidden Sign mismatch"),
    (502, None, "HTTP 502, not JSON"),
])
def test_answers_are_summarised_as_what_im_would_do(status, answer, expected):
    assert summarise(status, answer) == expected
