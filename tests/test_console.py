"""The web console: who may see it, forms another site cannot submit, what the pages read, and the console
as an SCF function (issue #17). The browser's view of it is tests/test_console_browser.py."""
from __future__ import annotations

import base64
import json
import re
from datetime import timedelta

import pytest

from imguard.audit.record import AuditRecord, utc_now
from imguard.audit.store import AuditStore
from imguard.config import ConfigError
from imguard.console.app import create_app
from imguard.console.i18n import LANGUAGES, STRINGS
from imguard.console.settings import ConsoleSettings
from imguard.review.queue import ReviewQueue
from tests.conftest import ROOT, trigger_event

TOKEN = "console-token-0123456789"


def records(dsn: str) -> None:
    now = utc_now()
    rule = {"source": "rules", "check": "rules", "outcome": "block", "label": "block", "keywords": ["block:傻逼"]}
    ads = {"source": "ci", "check": "text", "outcome": "block", "label": "Ads", "score": 91, "keywords": ["加微信"]}
    store = AuditStore(dsn, store_content=True)
    store.write([
        AuditRecord(event="callback.moderated", request_id="r-rule", function="im_callback", scene="c2c",
                    command="C2C.CallbackBeforeSendMsg", action="block", sender="jared", receiver="bob",
                    text="你个傻逼", reasons=[rule], latency_ms=0.4, created_at=now - timedelta(hours=2)),
        AuditRecord(event="callback.moderated", request_id="r-ads", function="im_callback", scene="group",
                    command="Group.CallbackBeforeSendMsg", action="block", sender="mallory", group_id="@TGS#1",
                    text="加微信", reasons=[ads], latency_ms=150.0, created_at=now - timedelta(minutes=30)),
        AuditRecord(event="callback.moderated", request_id="r-ok", function="im_callback", scene="c2c",
                    command="C2C.CallbackBeforeSendMsg", action="allow", sender="alice", receiver="bob",
                    text="hello", latency_ms=1.2, degraded="timeout", created_at=now - timedelta(minutes=5)),
    ])
    store.dispose()


@pytest.fixture
def console(sqlite_dsn):
    records(sqlite_dsn)
    app = create_app(ConsoleSettings(sqlite_dsn, TOKEN, rules_path=str(ROOT / "rules.example.yaml")),
                     secure_cookies=False)
    return app.test_client()


def csrf(client, path: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).get_data(as_text=True)).group(1)


def sign_in(client) -> None:
    response = client.post("/login", data={"token": TOKEN, "name": "li", "csrf_token": csrf(client, "/login")})
    assert response.status_code == 302


def test_every_page_asks_for_the_token_first(console):
    for path in ("/", "/decisions", "/decisions/1", "/review", "/sanctions", "/try"):
        response = console.get(path)
        assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_a_wrong_token_is_refused_and_the_right_one_lets_in(console):
    wrong = console.post("/login", data={"token": "guess", "csrf_token": csrf(console, "/login")})
    sign_in(console)

    assert wrong.status_code == 401
    assert console.get("/").status_code == 200


def test_forms_without_the_csrf_token_are_refused(console):
    sign_in(console)

    for path, data in (("/review/1", {"decision": "keep"}), ("/sanctions/lift", {"user": "jared"}),
                       ("/try", {"text": "x"}), ("/logout", {})):
        assert console.post(path, data=data).status_code == 400, path
    assert console.post("/login", data={"token": TOKEN}).status_code == 400


def test_after_sign_in_it_never_redirects_off_site(console):
    token = csrf(console, "/login")
    response = console.post("/login?next=//evil.example/x", data={"token": TOKEN, "csrf_token": token})

    assert response.headers["Location"] == "/"


def test_the_overview_counts_the_window_and_draws_each_hour(console):
    sign_in(console)
    page = console.get("/").get_data(as_text=True)

    assert re.search(r'id="total">3<', page)
    assert re.search(r'id="degraded-rate">33\.3%<', page)
    counts = [int(n) for n in re.findall(r'data-count="(\d+)"', page)]
    assert sum(counts) == 3 and 'data-action="block"' in page
    assert ">Ads<" in page and ">block:傻逼<" in page  # labels and rules ranked, each a link to its decisions


def test_decisions_filter_by_label_rule_group_and_open_with_every_reason(console):
    sign_in(console)

    by_label = console.get("/decisions?window=all&label=Ads").get_data(as_text=True)
    by_rule = console.get("/decisions?window=all&rule=block:傻逼").get_data(as_text=True)
    by_group = console.get("/decisions?window=all&group_id=@TGS%231").get_data(as_text=True)
    opened = console.get("/decisions/2").get_data(as_text=True)

    assert by_label.count('class="decision"') == 1 and "mallory" in by_label
    assert by_rule.count('class="decision"') == 1 and "jared" in by_rule
    assert by_group.count('class="decision"') == 1
    assert "r-ads" in opened and "Ads" in opened and ">91<" in opened and "加微信" in opened


def test_times_are_the_operators(console, sqlite_dsn):
    sign_in(console)
    [row] = AuditStore(sqlite_dsn).recent(request_id="r-ok")
    shanghai = (row["created_at"] + timedelta(hours=8)).strftime("%Y-%m-%d %H:%M:%S")

    assert shanghai in console.get("/decisions?window=all").get_data(as_text=True)


def test_keep_from_the_queue_records_who(console, sqlite_dsn):
    store = AuditStore(sqlite_dsn)
    store.write([AuditRecord(event="callback.moderated", request_id="r-q", function="im_callback", scene="c2c",
                             command="C2C.CallbackBeforeSendMsg", action="allow", sender="erin", receiver="bob",
                             text="兼职", review=True)])
    sign_in(console)

    response = console.post("/review/1", data={"decision": "keep", "csrf_token": csrf(console, "/review")})

    assert response.status_code == 302
    [item] = ReviewQueue(store).list("kept")
    assert item["decided_by"] == "li"


def test_acting_through_im_without_its_key_is_refused(console):
    sign_in(console)

    response = console.post("/sanctions/lift", data={"user": "jared", "csrf_token": csrf(console, "/sanctions")})

    assert response.status_code == 409


def test_the_try_box_judges_with_the_rules_and_the_scene(console):
    sign_in(console)

    page = console.post("/try", data={"text": "你个傻逼", "scene": "group:AVChatRoom",
                                      "csrf_token": csrf(console, "/try")}).get_data(as_text=True)

    assert 'id="try-action" class="action-block">block<' in page


def test_a_console_off_loopback_needs_a_long_token_and_names_every_bad_variable():
    with pytest.raises(ConfigError) as raised:
        ConsoleSettings.from_env({"CONSOLE_TZ": "Nowhere/Land"}, host="0.0.0.0")

    assert set(raised.value.problems) == {"AUDIT_DSN", "CONSOLE_TOKEN", "CONSOLE_TZ"}
    with pytest.raises(ConfigError, match="CONSOLE_TOKEN: use at least 16"):
        ConsoleSettings.from_env({"AUDIT_DSN": "sqlite:///x.db", "CONSOLE_TOKEN": "short"}, host="0.0.0.0")
    assert ConsoleSettings.from_env({"AUDIT_DSN": "sqlite:///x.db"}, host="127.0.0.1").token is None


def test_every_string_has_both_languages():
    assert [key for key, texts in STRINGS.items() if set(texts) != set(LANGUAGES) or not all(texts.values())] == []


def test_the_console_runs_as_an_scf_function(sqlite_dsn, monkeypatch):
    from imguard.console.scf import create_handler

    records(sqlite_dsn)
    handler = create_handler({"AUDIT_DSN": sqlite_dsn, "CONSOLE_TOKEN": TOKEN})
    event = dict(trigger_event({}, {}), httpMethod="GET", path="/login", body="", headers={"host": "c.example"})

    answer = handler(event, {"request_id": "console-1"})
    bare = handler(dict(event, path="/"), {"request_id": "console-2"})
    forged = handler(dict(event, httpMethod="POST", body="token=" + TOKEN,
                          headers={"host": "c.example", "content-type": "application/x-www-form-urlencoded"}),
                     {"request_id": "console-3"})

    assert answer["statusCode"] == 200 and answer["isBase64Encoded"] is True
    assert "csrf_token" in base64.b64decode(answer["body"]).decode()
    assert bare["statusCode"] == 302  # sign in first
    assert forged["statusCode"] == 400  # no CSRF token
    with pytest.raises(ConfigError, match="CONSOLE_TOKEN"):
        create_handler({"AUDIT_DSN": sqlite_dsn})  # on SCF there is no loopback: a token is required
    assert json.loads(json.dumps(answer))  # an integration response SCF can serialise


# -- found in review ----------------------------------------------------------------------------------


def test_without_a_token_only_this_machines_own_names_are_served(sqlite_dsn):
    # DNS rebinding: a page elsewhere points its own name at 127.0.0.1; its requests carry that Host.
    client = create_app(ConsoleSettings(sqlite_dsn), secure_cookies=False).test_client()

    assert client.get("/", headers={"Host": "127.0.0.1:8800"}).status_code == 200
    assert client.get("/", headers={"Host": "localhost:8800"}).status_code == 200
    assert client.get("/", headers={"Host": "evil.example:8800"}).status_code == 400


def test_a_sign_in_expires(console, monkeypatch):
    from imguard.console import app as console_app

    sign_in(console)
    assert console.get("/").status_code == 200
    later = console_app.time.time() + console_app.SESSION_S + 1
    monkeypatch.setattr(console_app.time, "time", lambda: later)

    assert console.get("/").status_code == 302


def test_the_language_rides_in_the_one_session_cookie(console):
    sign_in(console)

    response = console.get("/?lang=en")
    cookies = response.headers.getlist("Set-Cookie")

    assert len(cookies) == 1 and cookies[0].startswith("session=")
    assert ">Overview<" in console.get("/").get_data(as_text=True)
