"""The console in a real browser: Debian's Chromium, headless, driven through its own chromedriver by
Selenium (nothing downloaded). The decisions come from the real im_callback, CI and IM being the local
stand-ins. Without Chromium these tests skip and say how to install it (CI installs it: .ci/run)."""
from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest

from imguard.audit.store import AuditStore
from imguard.console.app import create_app
from imguard.console.settings import ConsoleSettings
from imguard.review.queue import ReviewQueue
from tests.conftest import IM_SECRET_KEY, SDKAPPID, answer_of, im_query, load_event, scf_context, stored, trigger_event
from tests.flows import send_c2c

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
INSTALL = "apt-get install -y chromium chromium-driver"
TOKEN = "browser-test-token-0123456789"
RULES = "block: [傻逼]\nreplace: [傻冒]\nreview: [兼职]\nsanctions:\n  - {blocks: 2, within: 10m, mute: 1h}\n"


@pytest.fixture(scope="module")
def browser():
    if not (Path(CHROMIUM).is_file() and Path(CHROMEDRIVER).is_file()) and not shutil.which("chromium"):
        pytest.skip(f"Chromium is not installed here; to run the console's browser tests: {INSTALL}")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1600",
                     "--lang=zh-CN"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(1)  # pages are local and small; explicit waits cover navigation
    yield driver
    driver.quit()


@pytest.fixture
def trail(make_function, tmp_path, sqlite_dsn, fake_ci, fake_im):
    """Decisions the real im_callback made: a rule block, a rewrite, CI's block, a review, and a mute."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES, encoding="utf-8")
    handler = make_function(RULES_PATH=str(rules), AUDIT_DSN=sqlite_dsn, AUDIT_STORE_CONTENT="true",
                            IM_SECRET_KEY=IM_SECRET_KEY, IM_API_BASE=fake_im.base_url)
    fake_ci.flag_word("代开发票", label="Ads", score=93)

    def text(body_text, sender="jared"):
        return dict(load_event("im/c2c_before_text"), From_Account=sender,
                    MsgBody=[{"MsgType": "TIMTextElem", "MsgContent": {"Text": body_text}}])

    send_c2c(handler, text("你个傻逼"))
    send_c2c(handler, text("这个傻冒", sender="alice"))
    send_c2c(handler, text("代开发票", sender="dealer"))
    send_c2c(handler, text("兼职日结", sender="erin"))
    send_c2c(handler, text("又一个傻逼"))  # jared's second block: the ladder mutes him
    group = dict(load_event("im/group_before_text_topic"), MsgBody=[{"MsgType": "TIMTextElem",
                                                                    "MsgContent": {"Text": "hello group"}}])
    answer_of(handler(trigger_event(group, im_query("Group.CallbackBeforeSendMsg")), scf_context()))
    stored(sqlite_dsn, 7)
    return sqlite_dsn


@pytest.fixture
def console_url(trail, tmp_path, fake_im):
    from werkzeug.serving import make_server

    from imguard.config import Settings

    im = Settings.from_env({"IM_SDKAPPID": SDKAPPID, "IM_SECRET_KEY": IM_SECRET_KEY, "IM_API_BASE": fake_im.base_url})
    settings = ConsoleSettings(trail, TOKEN, rules_path=None, im=im)
    server = make_server("127.0.0.1", 0, create_app(settings, secure_cookies=False), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def sign_in(browser, base: str, token: str = TOKEN) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.delete_all_cookies()
    browser.get(base + "/")
    assert "/login" in browser.current_url  # every page asks first
    browser.find_element(By.ID, "token").send_keys(token)
    browser.find_element(By.ID, "name").send_keys("moderator-li")
    browser.find_element(By.ID, "sign-in").click()
    WebDriverWait(browser, 10).until(lambda driver: driver.execute_script("return document.readyState") == "complete"
                                     and (driver.find_elements(By.ID, "wrong-token") or "/login" not in driver.current_url))


def test_sign_in_then_the_overview_chart_has_the_days_decisions(browser, console_url):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    sign_in(browser, console_url, "wrong-token-wrong-token")
    assert browser.find_element(By.ID, "wrong-token").is_displayed()
    sign_in(browser, console_url)
    WebDriverWait(browser, 10).until(lambda driver: "/login" not in driver.current_url)

    total = int(browser.find_element(By.ID, "total").text)
    bars = browser.find_elements(By.CSS_SELECTOR, "svg.chart rect.bar")
    drawn = {}
    for bar in bars:
        drawn[bar.get_attribute("data-action")] = drawn.get(bar.get_attribute("data-action"), 0) + int(
            bar.get_attribute("data-count"))
    assert total >= 7 and sum(drawn.values()) == total  # every decision of the day is in the chart
    assert drawn.get("block", 0) >= 3 and drawn.get("rewrite", 0) == 1
    assert bars[0].size["height"] > 0
    assert "p50" in browser.find_element(By.ID, "latency").text


def test_filter_the_decisions_and_open_one_to_see_why(browser, console_url):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import Select, WebDriverWait

    sign_in(browser, console_url)
    browser.find_element(By.ID, "nav-decisions").click()
    Select(browser.find_element(By.ID, "filter-action")).select_by_visible_text("block")
    browser.find_element(By.ID, "apply-filters").click()
    WebDriverWait(browser, 10).until(expected_conditions.url_contains("action=block"))  # the filtered page, not the old one

    rows = browser.find_elements(By.CSS_SELECTOR, "tr.decision")
    assert rows and {row.get_attribute("data-action") for row in rows} == {"block"}
    ci_row = next(row for row in rows if "dealer" in row.text)
    ci_row.find_element(By.TAG_NAME, "a").click()

    assert browser.find_element(By.ID, "decision-action").text == "block"
    reasons = browser.find_element(By.ID, "reasons").text
    assert "Ads" in reasons and "93" in reasons  # CI's label and score
    assert browser.find_element(By.ID, "content").text == "代开发票"  # stored: AUDIT_STORE_CONTENT=true
    assert browser.find_element(By.ID, "request-id").text


def test_switch_to_english_and_keep_a_queued_message(browser, console_url, trail):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    sign_in(browser, console_url)
    browser.get(console_url + "/?lang=zh")
    assert browser.find_element(By.ID, "nav-review").text == "人工复核"
    browser.find_element(By.ID, "language").click()  # to English, remembered in a cookie
    WebDriverWait(browser, 10).until(expected_conditions.url_contains("lang=en"))
    assert browser.find_element(By.ID, "nav-review").text == "Review queue"
    browser.find_element(By.ID, "nav-review").click()
    assert browser.find_element(By.TAG_NAME, "h1").text == "Review queue"
    item = browser.find_element(By.CSS_SELECTOR, "tr.review-item")
    assert "兼职日结" in item.text
    item.find_element(By.CSS_SELECTOR, "button.keep").click()
    WebDriverWait(browser, 10).until(expected_conditions.url_contains("message="))

    assert "kept" in browser.find_element(By.ID, "message").text
    [kept] = ReviewQueue(AuditStore(trail)).list("kept")
    assert kept["decided_by"] == "moderator-li"


def test_lift_a_mute_through_im(browser, console_url, fake_im):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    sign_in(browser, console_url)
    browser.get(console_url + "/sanctions?lang=en")
    row = next(r for r in browser.find_elements(By.CSS_SELECTOR, "tr.sanction") if "muted" in r.text)
    assert "jared" in row.text and "step 1" in row.text
    row.find_element(By.CSS_SELECTOR, "button.lift").click()
    WebDriverWait(browser, 10).until(expected_conditions.url_contains("message="))

    assert "jared: lifted" in browser.find_element(By.ID, "message").text
    assert fake_im.muted["jared"] == {"C2C": 0, "Group": 0}
