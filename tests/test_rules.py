"""Local rules: semantics, evasion, loading, safety, hot reload and the `imguard check` CLI."""
from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from imguard.rules.ruleset import RulesError, loads, parse
from imguard.rules.source import RulesSource
from tests.conftest import ROOT


def rules(**lists):
    return parse(lists)


def action(ruleset, text):
    return ruleset.scan(text).action


# -- semantics --------------------------------------------------------------------


def test_allow_cancels_a_block_only_where_it_covers_it():
    ruleset = rules(block=["共产", "黄片"], allow=["共产党", "三黄片"])

    assert action(ruleset, "共产党员") == "pass"
    assert action(ruleset, "共产主义") == "block"
    scan = ruleset.scan("三黄片黄片")
    assert scan.action == "block"
    assert [(h.start, h.end) for h in scan.hits] == [(3, 5)]


def test_block_wins_over_replace():
    ruleset = rules(block=["赌博"], replace=["垃圾"])

    scan = ruleset.scan("垃圾赌博网站")

    assert scan.action == "block"
    assert scan.text == "垃圾赌博网站"


def test_replace_masks_each_character_or_uses_the_entrys_mask():
    ruleset = rules(replace=["垃圾", {"regex": r"qq\d{5,}", "mask": "[hidden]"}, {"keyword": "笨蛋", "mask": "**"}])

    assert ruleset.scan("你这个垃圾").text == "你这个**"
    assert ruleset.scan("加qq12345678吧").text == "加[hidden]吧"
    assert ruleset.scan("大笨蛋").text == "大**"


def test_overlapping_replacements_are_merged():
    ruleset = rules(replace=["他妈", "妈的"])

    assert ruleset.scan("他妈的").text == "***"


def test_hits_report_the_original_span_not_the_normalized_one():
    ruleset = rules(block=["傻逼"])

    [hit] = ruleset.scan("你个 傻 ＠ 逼!").hits

    assert hit.as_dict("你个 傻 ＠ 逼!") == {"list": "block", "rule": "傻逼", "match": "傻 ＠ 逼", "start": 3, "end": 8}


@pytest.mark.parametrize(
    "text, expected",
    [("class", "pass"), ("my ass.", "block"), ("ASS!", "block"), ("assassin", "pass"), ("ass1", "pass"),
     ("你是ass和", "block")],
)
def test_latin_keywords_match_whole_words_only(text, expected):
    assert action(rules(block=["ass"]), text) == expected


def test_latin_keyword_inside_chinese_text_matches():
    assert action(rules(replace=["laji"]), "你是laji和") == "replace"


def test_chinese_keywords_match_anywhere():
    assert action(rules(block=["口交"]), "路口交通") == "block"


# -- evasion ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "傻@冒", "傻 冒", "<p>傻冒</p>", "傻\u200b冒", "傻\ufe0f冒", "傻😀冒", "傻……冒",
    ],
)
def test_noise_and_invisible_characters_inside_a_word_are_skipped(text):
    assert action(rules(block=["傻冒"]), text) == "block"


@pytest.mark.parametrize("text", ["f.u.c.k", "FUCK", "ｆｕｃｋ", "Ⓕⓤⓒ⒦", "𝔣𝔲𝔠𝔨", "𝐟𝐮𝐜𝐤", "f u c k"])
def test_case_width_and_styled_latin_are_folded(text):
    assert action(rules(block=["fuck"]), text) == "block"


def test_repeats_collapse_only_when_switched_on():
    text = "ⒻⒻⒻfⓤuⓤ⒰cⓒ⒦"

    assert action(rules(block=["fuck"]), text) == "pass"
    assert action(rules(block=["fuck"], normalize={"collapse_repeats": True}), text) == "block"


def test_traditional_chinese_is_folded_to_simplified():
    assert action(rules(block=["发票"]), "代開發票") == "block"


@pytest.mark.parametrize("digit, written", [
    ("0", "⓿"), ("2", "二"), ("4", "肆"), ("9", "⁹"), ("8", "₈"), ("3", "③"), ("5", "⑸"), ("4", "⒋"),
    ("4", "➃"), ("5", "㈤"), ("5", "㊄"), ("7", "٧"), ("6", "６"),
])
def test_digits_of_other_scripts_become_ascii(digit, written):
    assert action(rules(block=[{"regex": f"x{digit}y"}]), f"x{written}y") == "block"


def test_regexes_see_the_normalized_text():
    ruleset = rules(block=[{"regex": r"1[3-9]\d{9}"}])

    scan = ruleset.scan("call 1③8⓿⓿１３８⓿⓿⓿ now")

    assert scan.action == "block"
    assert scan.hits[0].as_dict("call 1③8⓿⓿１３８⓿⓿⓿ now")["match"] == "1③8⓿⓿１３８⓿⓿⓿"


def test_normalization_switches_can_be_turned_off():
    ruleset = rules(block=["fuck"], normalize={"ignore_case": False, "skip_noise": False})

    assert action(ruleset, "FUCK") == "pass"
    assert action(ruleset, "f.u.c.k") == "pass"
    assert action(ruleset, "fuck") == "block"


# -- loading --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data, names",
    [
        ({"block": [""]}, "block[1]"),
        ({"block": ["ok", "..."]}, "block[2]"),
        ({"replace": [{"regex": "(a"}]}, "replace[1]"),
        ({"block": [{"regex": r"(a)\1"}]}, "not valid RE2"),
        ({"block": [{"regex": "(?=a)b"}]}, "not valid RE2"),
        ({"block": [{"regex": "a", "mask": "*"}]}, "block[1]"),
        ({"allow": [["nested"]]}, "allow[1]"),
        ({"block": "not a list"}, "block must be a list"),
        ({"blok": ["x"]}, "unknown top-level"),
        ({"normalize": {"ignore_kase": True}}, "ignore_kase"),
        ({"normalize": {"ignore_case": "yes"}}, "normalize.ignore_case"),
        ({"block": [f"w{i}" for i in range(10_001)]}, "at most 10000"),
        ({"block": [{"regex": f"r{i}"} for i in range(201)]}, "at most 200"),
    ],
)
def test_bad_rules_are_refused_naming_the_entry(data, names):
    with pytest.raises(RulesError, match=names.replace("[", r"\[").replace("]", r"\]")):
        parse(data)


def test_the_limits_themselves_are_accepted():
    entries = [f"词{i}" for i in range(9_800)] + [{"regex": f"r{i}x"} for i in range(200)]

    ruleset = parse({"block": entries})

    assert action(ruleset, "这里有词9799") == "block"
    assert action(ruleset, "r199x") == "block"


def test_the_shipped_example_loads():
    ruleset = loads((ROOT / "rules.example.yaml").read_text(encoding="utf-8"))

    assert action(ruleset, "你是傻@冒吗") == "replace"


# -- safety ---------------------------------------------------------------------------


def test_a_pathological_regex_runs_in_linear_time():
    ruleset = rules(block=[{"regex": "(a+)+$"}])

    started = time.monotonic()
    scan = ruleset.scan("a" * 100_000 + "!")  # the input that sends a backtracking engine into exponential time

    assert scan.action == "pass"
    assert time.monotonic() - started < 2.0
    assert action(ruleset, "aaaa") == "block"


def test_a_pathological_keyword_set_runs_in_linear_time():
    ruleset = rules(block=["a" * n + "b" for n in range(1, 200)])
    text = "a" * 100_000

    started = time.monotonic()
    assert action(ruleset, text) == "pass"
    assert time.monotonic() - started < 2.0


# -- hot reload -----------------------------------------------------------------------



def serve_rules(server, body, etag):
    server.clear()
    server.expect_request("/rules.yaml", headers={"If-None-Match": etag}).respond_with_data("", status=304)
    server.expect_request("/rules.yaml").respond_with_data(body, headers={"ETag": etag})


def test_rules_are_fetched_again_with_etag_and_swapped_whole(rules_server):
    # GIVEN rules served with an ETag
    serve_rules(rules_server, "block: [赌博]", '"v1"')
    source = RulesSource(url=rules_server.url_for("/rules.yaml"), refresh_s=60)
    first = source.current()
    assert action(first, "赌博") == "block"

    # WHEN the same version is asked for again, nothing changes (304)
    assert source.refresh() is False
    assert source.current() is first

    # AND WHEN a new version is published, it replaces the old one whole
    serve_rules(rules_server, "block: [代开发票]", '"v2"')
    assert source.refresh() is True
    assert action(source.current(), "代开发票") == "block"
    assert action(source.current(), "赌博") == "pass"


def test_a_broken_new_version_is_logged_and_the_last_good_one_stays(rules_server, capsys):
    serve_rules(rules_server, "block: [赌博]", '"v1"')
    source = RulesSource(url=rules_server.url_for("/rules.yaml"), refresh_s=60)

    serve_rules(rules_server, "block: [{regex: '(a'}]", '"v2"')
    assert source.refresh() is False

    assert action(source.current(), "赌博") == "block"
    lines = [json.loads(l) for l in capsys.readouterr().out.splitlines() if l.startswith("{")]
    assert any(l["event"] == "rules.rejected" and "block[1]" in l["detail"] for l in lines)


def test_refresh_happens_in_the_background_at_most_every_interval(rules_server):
    serve_rules(rules_server, "block: [赌博]", '"v1"')
    now = [1000.0]
    source = RulesSource(url=rules_server.url_for("/rules.yaml"), refresh_s=60, clock=lambda: now[0])
    fetches = len(rules_server.log)

    source.current()  # within the interval: no fetch
    now[0] += 61
    source.current()  # past it: one background fetch
    deadline = time.monotonic() + 3
    while len(rules_server.log) == fetches and time.monotonic() < deadline:
        time.sleep(0.01)

    assert len(rules_server.log) == fetches + 1


def test_an_unreachable_url_keeps_the_file_rules():
    initial = rules(block=["赌博"])

    source = RulesSource(initial, url="http://127.0.0.1:9/rules.yaml", refresh_s=60)

    assert source.current() is initial


# -- CLI ----------------------------------------------------------------------------------


def test_check_prints_one_json_line_per_text():
    result = subprocess.run(
        [sys.executable, "-m", "imguard", "check", "--rules", str(ROOT / "rules.example.yaml"), "你是傻@冒吗", "你好"],
        capture_output=True, text=True, check=True,
    )

    first, second = (json.loads(line) for line in result.stdout.splitlines())
    assert first == {"action": "replace", "text": "你是***吗",
                     "hits": [{"list": "replace", "rule": "傻冒", "match": "傻@冒", "start": 2, "end": 5}]}
    assert second == {"action": "pass", "text": "你好", "hits": []}


def test_check_without_rules_says_so():
    result = subprocess.run([sys.executable, "-m", "imguard", "check", "x"], capture_output=True, text=True,
                            env={"PATH": "/usr/bin:/bin"})

    assert result.returncode == 2
    assert "RULES_PATH" in result.stderr
