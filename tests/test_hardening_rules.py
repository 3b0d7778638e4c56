"""Rules under attack: a slow or huge RULES_URL, presigned URLs in logs, YAML bombs, floods of new code points."""
from __future__ import annotations

import json
import socket
import threading
import time
from contextlib import contextmanager
from typing import Iterator

import pytest
from werkzeug import Response

from imguard.rules import fetch as rules_fetch
from imguard.rules.normalize import MAX_FOLD_ENTRIES
from imguard.rules.ruleset import RulesError, loads, parse
from imguard.rules.source import RulesSource
from tests.conftest import log_lines, wait_for_log

SECRET = "SECRET0123456789"
PRESIGNED = f"?q-sign-algorithm=sha1&q-signature={SECRET}"
GOOD = "block: [代开发票]\n"


def file_rules():
    return parse({"block": ["赌博"]}, version="file:test")



@contextmanager
def raw_server(body: bytes, every_s: float = 0.0, declare_length: bool = True) -> Iterator[str]:
    """An HTTP server on 127.0.0.1 that answers 200 at once, then sends ``body`` one byte every ``every_s``
    (all at once when 0). Without ``declare_length`` the body ends when the connection closes."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)
    stop = threading.Event()

    def answer(conn: socket.socket) -> None:
        with conn:
            conn.recv(65536)  # the request: what it says does not matter here
            head = b"HTTP/1.1 200 OK\r\n" + (b"Content-Length: %d\r\n" % len(body) if declare_length else b"")
            try:
                conn.sendall(head + b"Connection: close\r\n\r\n")
                pieces = [body[i:i + 1] for i in range(len(body))] if every_s else [body]
                for piece in pieces:
                    if stop.wait(every_s):
                        return
                    conn.sendall(piece)
            except OSError:  # the client gave up: that is what the slow cases expect
                return

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except socket.timeout:
                continue
            threading.Thread(target=answer, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/rules.yaml"
    finally:
        stop.set()
        thread.join()
        listener.close()


def billion_laughs(levels: int = 7) -> str:
    """The classic bomb, shaped so the expanded list is the first block entry: 9**levels strings."""
    anchors = ['&l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    anchors += [f"&l{n} [" + ",".join([f"*l{n - 1}"] * 9) + "]" for n in range(1, levels)]
    return "allow: [" + ", ".join(anchors) + f"]\nblock: [*l{levels - 1}]\n"


# -- 1. a slow RULES_URL cannot hold the cold start ---------------------------------------


def test_cold_start_waits_about_a_second_for_a_trickling_rules_url(capsys):
    # GIVEN a rules URL that answers at once and then sends its body one byte every 0.2 s (~6 s in all)
    initial = file_rules()
    with raw_server((GOOD + "#" * 14).encode(), every_s=0.2) as url:
        # WHEN the function starts
        started = time.monotonic()
        source = RulesSource(initial, url=url, refresh_s=60)
        elapsed = time.monotonic() - started

    # THEN it goes on with the file rules after about COLD_START_WAIT_S, and says why
    assert elapsed < 1.5
    assert source.current() is initial
    slow = [line for line in log_lines(capsys) if line["event"] == "rules.url_slow"]
    assert slow and slow[0]["version"] == "file:test"


def test_a_body_slower_than_the_total_bound_is_abandoned_and_never_replaces_good_rules(monkeypatch, capsys):
    # GIVEN a fetch bound of 2 s and a valid rules body that would take ~6 s to arrive
    monkeypatch.setattr(rules_fetch, "FETCH_TOTAL_S", 2.0)
    initial = file_rules()
    with raw_server((GOOD + "#" * 14).encode(), every_s=0.2) as url:
        source = RulesSource(initial, url=url, refresh_s=60)

        # WHEN the bound passes
        lines = wait_for_log(capsys, "rules.fetch_failed", timeout=4)

    # THEN the fetch gave up within the bound, and the file rules are still in force
    failed = [line for line in lines if line["event"] == "rules.fetch_failed"]
    assert failed and "2.0 s" in failed[0]["detail"]
    assert source.current() is initial
    assert not any(line["event"] == "rules.loaded" for line in lines + log_lines(capsys))


def test_a_url_answering_after_the_cold_start_wait_is_swapped_in_when_it_arrives(rules_server, capsys):
    # GIVEN a rules URL that takes 1.5 s to answer
    def late(request):
        time.sleep(1.5)
        return Response(GOOD, headers={"ETag": '"v1"'})

    rules_server.expect_request("/rules.yaml").respond_with_handler(late)
    initial = file_rules()

    # WHEN the function starts, it does not wait for it
    started = time.monotonic()
    source = RulesSource(initial, url=rules_server.url_for("/rules.yaml"), refresh_s=60)
    assert time.monotonic() - started < 1.5
    assert source.current() is initial

    # THEN the URL's rules replace the file rules once they arrive
    wait_for_log(capsys, "rules.loaded", timeout=3)
    assert source.current().scan("代开发票").action == "block"
    assert source.current().scan("赌博").action == "pass"


@pytest.mark.parametrize("declare_length", [True, False], ids=["declared", "undeclared"])
def test_an_oversized_body_is_refused_and_the_last_good_version_stays(declare_length, capsys):
    # GIVEN a valid rules body one byte over the cap, with and without a Content-Length
    body = GOOD.encode() + b"#" * (rules_fetch.MAX_RULES_BYTES - len(GOOD.encode()) + 1)
    initial = file_rules()
    with raw_server(body, declare_length=declare_length) as url:
        # WHEN it is fetched
        source = RulesSource(initial, url=url, refresh_s=60)
        lines = wait_for_log(capsys, "rules.fetch_failed", timeout=3)

    # THEN it is refused, logged, and the good rules stay
    assert source.current() is initial
    failed = [line for line in lines if line["event"] == "rules.fetch_failed"]
    assert failed and str(rules_fetch.MAX_RULES_BYTES) in failed[0]["detail"]


# -- 2. presigned query strings stay out of the logs ------------------------------------------


def test_no_log_line_carries_the_presigned_query_string(rules_server, capsys):
    # GIVEN a presigned rules URL that is loaded, unchanged, broken, failing, unreachable and slow in turn
    url = rules_server.url_for("/rules.yaml") + PRESIGNED
    rules_server.expect_request("/rules.yaml", headers={"If-None-Match": '"v1"'}).respond_with_data("", status=304)
    rules_server.expect_request("/rules.yaml").respond_with_data(GOOD, headers={"ETag": '"v1"'})
    source = RulesSource(url=url, refresh_s=60)
    source.refresh()
    rules_server.clear()
    rules_server.expect_request("/rules.yaml").respond_with_data("block: [{regex: '(a'}]", headers={"ETag": '"v2"'})
    source.refresh()
    rules_server.clear()
    rules_server.expect_request("/rules.yaml").respond_with_data("", status=500)
    source.refresh()
    RulesSource(url="http://127.0.0.1:9/rules.yaml" + PRESIGNED, refresh_s=60)
    with raw_server(GOOD.encode(), every_s=0.2) as slow_url:
        RulesSource(url=slow_url + PRESIGNED, refresh_s=60)

    # WHEN the logs are read
    out = capsys.readouterr().out
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]

    # THEN every event happened, naming the URL without its query string
    events = {line["event"] for line in lines}
    assert {"rules.loaded", "rules.rejected", "rules.fetch_failed", "rules.url_slow"} <= events
    assert SECRET not in out
    assert all(line["url"].endswith("/rules.yaml") for line in lines if "url" in line)


# -- 3. YAML bombs and huge error messages -------------------------------------------------


def test_a_billion_laughs_file_is_refused_quickly_with_a_short_error():
    started = time.monotonic()
    with pytest.raises(RulesError) as refused:
        loads(billion_laughs())

    assert time.monotonic() - started < 2.0
    assert len(str(refused.value).encode()) < 1024
    assert "alias" in str(refused.value)


def test_a_billion_laughs_url_is_refused_with_a_small_log_line(rules_server, capsys):
    rules_server.expect_request("/rules.yaml").respond_with_data(billion_laughs())
    initial = file_rules()

    started = time.monotonic()
    source = RulesSource(initial, url=rules_server.url_for("/rules.yaml"), refresh_s=60)
    lines = wait_for_log(capsys, "rules.rejected", timeout=2)

    assert time.monotonic() - started < 2.0
    assert source.current() is initial
    rejected = [line for line in lines if line["event"] == "rules.rejected"]
    assert rejected and len(json.dumps(rejected[0], ensure_ascii=False).encode()) < 1024


def test_an_error_quoting_a_huge_entry_is_clipped():
    # GIVEN an entry whose description alone is 100 KB, no alias involved
    with pytest.raises(RulesError) as refused:
        parse({"block": [{"word": "x" * 100_000}]})  # ({keyword: ...} is a valid block entry since pinyin)

    # THEN the message still names the entry, and stays short
    assert str(refused.value).startswith("block[1]:")
    assert len(str(refused.value)) <= 200


def test_deeply_nested_yaml_is_a_rules_error_not_a_crash():
    with pytest.raises(RulesError):
        loads("block: " + "[" * 20_000)


def test_anchors_without_aliases_still_load():
    assert loads("block: &words [赌博]").scan("赌博").action == "block"


# -- 4. memory of the fold table is bounded ----------------------------------------------------


def test_a_flood_of_new_code_points_leaves_the_fold_table_at_its_cap():
    # GIVEN rules that fold width and case
    ruleset = parse({"block": ["ABC赌博"]})
    table = ruleset.normalizer._table  # what the flood would grow: the memo behind str.translate
    before = ruleset.normalizer.fold("ＡＢＣ賭博\u200b!")

    # WHEN texts made of every code point (surrogates aside, 1.1 million) are scanned
    every = [chr(cp) for cp in range(0x110000) if not 0xD800 <= cp <= 0xDFFF]
    for start in range(0, len(every), 4096):
        ruleset.scan("".join(every[start:start + 4096]))
        assert len(table) <= MAX_FOLD_ENTRIES

    # THEN folding gives what it gave before, and rules still hit
    assert ruleset.normalizer.fold("ＡＢＣ賭博\u200b!") == before
    assert ruleset.scan("ａｂｃ賭博").action == "block"
