"""Pinyin and homophones (issue #14): `pinyin: true` for the whole file or per entry."""
from __future__ import annotations

import subprocess
import sys
import time

import pytest

from imguard.rules.normalize import Switches
from imguard.rules.ruleset import MAX_HITS, RulesError, loads, parse
from tests.conftest import ROOT


def pinyin(*keywords, listed="block", **extra):
    return parse({listed: [{"keyword": k, "pinyin": True} for k in keywords], **extra})


def hits(ruleset, text):
    return [h.as_dict(text) for h in ruleset.scan(text).hits]


# -- full pinyin -------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["shabi", "SHABI", "你是shabi吗", "sha bi", "s.h.a.b.i", "ｓｈａｂｉ"])
def test_a_chinese_keyword_matches_its_full_pinyin_reported_as_the_keyword(text):
    [hit] = hits(pinyin("傻逼"), text)

    assert hit["list"] == "block" and hit["rule"] == "傻逼"
    assert text[hit["start"]:hit["end"]].replace(" ", "").replace(".", "").lower() in ("shabi", "ｓｈａｂｉ")


def test_spaced_pinyin_matches_the_full_spelling():
    assert pinyin("操你妈").scan("cao ni ma").action == "block"


@pytest.mark.skipif("fold_accents" not in Switches.names(),
                    reason="tone marks are folded by normalize's fold_accents, which has not landed yet")
def test_tone_marked_pinyin_matches_once_accents_are_folded():
    assert hits(pinyin("操你妈"), "cào nǐ mā")[0]["match"] == "cào nǐ mā"


def test_u_with_umlaut_is_spelled_both_ways():
    ruleset = pinyin("绿帽")

    assert ruleset.scan("lvmao").action == "block"
    assert ruleset.scan("lumao").action == "block"


# -- initials, from three syllables on ---------------------------------------------------------


@pytest.mark.parametrize("keyword, text", [("操你妈", "cnm"), ("你妈死了", "nmsl"), ("法轮功", "flg")])
def test_keywords_of_three_or_more_characters_match_their_initials(keyword, text):
    [hit] = hits(pinyin(keyword), f"你{text}啊")

    assert (hit["rule"], hit["match"]) == (keyword, text)


def test_two_character_keywords_do_not_match_their_initials():
    assert pinyin("傻逼").scan("sb").action == "pass"


# -- whole words ------------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("usb", "pass"), ("shabiz", "pass"), ("xshabi", "pass"), ("shabi1", "pass"), ("1shabi", "pass"),
    ("acnm", "pass"), ("cnms", "pass"),
    ("usb shabi", "block"), ("shabi!", "block"), ("(cnm)", "block"), ("a\u200bshabi", "block"), ("😀cnm", "block"),
])
def test_pinyin_matches_whole_words_only(text, expected):
    assert pinyin("傻逼", "操你妈").scan(text).action == expected


# -- homophones ---------------------------------------------------------------------------------


@pytest.mark.parametrize("keyword, text", [
    ("傻逼", "煞笔"), ("傻逼", "沙币"), ("傻逼", "煞 笔"), ("傻逼", "煞@笔"), ("傻逼", "煞\u200b笔"),
    ("法轮功", "发轮功"), ("法轮功", "法伦攻"), ("操你妈", "操你🐴"), ("操你妈", "草泥马"), ("操你妈", "操你🐎"),
    ("你妈死了", "你马死了"), ("一夜情", "衣夜晴"), ("傻逼", "傻屄"),
])
def test_text_that_sounds_like_the_keyword_matches_tones_ignored(keyword, text):
    [hit] = hits(pinyin(keyword), f"我说{text}呢")

    assert (hit["rule"], hit["match"]) == (keyword, text)


@pytest.mark.parametrize("text", ["煞，笔", "煞。笔", "煞\n笔", "煞a笔", "煞な笔"])
def test_homophones_do_not_reach_across_a_sentence_or_another_script(text):
    assert pinyin("傻逼").scan(text).action == "pass"


def test_a_syllable_is_matched_whole_not_inside_another():
    # 啊 (a) 八 (ba): spelled out, "a'ba" would contain "ba"; the view never matches inside a syllable.
    assert pinyin("阿八").scan("吧爸").action == "pass"
    assert pinyin("阿八").scan("啊吧").action == "block"


def test_a_one_character_keyword_matches_its_pinyin_but_no_homophones():
    ruleset = pinyin("屌")

    assert ruleset.scan("diao").action == "block"
    assert ruleset.scan("掉了").action == "pass"


def test_polyphones_are_spelled_every_way_but_sound_as_their_first_reading():
    # 行 reads xing first, hang second; 秘 mi first, bi in 秘鲁.
    ruleset = pinyin("银行", "秘鲁")

    assert ruleset.scan("yinxing").action == "block"
    assert ruleset.scan("yinhang").action == "block"
    assert ruleset.scan("BiLu").action == "block"
    assert ruleset.scan("银星").action == "block"  # xing: 行 sounds like its first reading only
    assert ruleset.scan("银航").action == "pass"


def test_the_keyword_as_written_is_one_hit_not_two():
    assert len(pinyin("傻逼").scan("傻逼").hits) == 1
    # with collapse_repeats the keyword's hit covers the whole run, the sound form's only part of it
    assert len(pinyin("傻逼", normalize={"collapse_repeats": True}).scan("傻傻逼").hits) == 1


def test_an_allow_entry_covers_homophone_hits_too():
    ruleset = parse({"block": [{"keyword": "傻逼", "pinyin": True}], "allow": ["沙比例"]})

    assert ruleset.scan("沙比例失调").action == "pass"
    assert ruleset.scan("沙比").action == "block"


# -- original spans -----------------------------------------------------------------------------


@pytest.mark.parametrize("text, masked", [
    ("你个煞 笔!", "你个***!"),
    ("你个ｓｈａｂｉ!", "你个*****!"),
    ("s.h.a.b.i 吧", "********* 吧"),
    ("\u200b煞😀笔\u200b", "\u200b***\u200b"),
    ("操你🐴啊", "***啊"),
    ("操\ufe0f你 🐴!", "*****!"),
    ("好 cnm 了", "好 *** 了"),
])
def test_replace_masks_the_original_span(text, masked):
    ruleset = pinyin("傻逼", "操你妈", listed="replace")

    assert ruleset.scan(text).text == masked


def test_a_replace_entry_keeps_its_mask_with_pinyin():
    ruleset = parse({"replace": [{"keyword": "垃圾", "mask": "[文明用语]", "pinyin": True}]})

    assert ruleset.scan("你是laji和辣鸡").text == "你是[文明用语]和[文明用语]"


# -- switches ----------------------------------------------------------------------------------


def test_pinyin_is_off_by_default_and_pypinyin_is_not_even_imported():
    ruleset = parse({"block": ["傻逼"]})
    assert ruleset.scan("shabi").action == "pass"
    assert ruleset.scan("煞笔").action == "pass"

    script = ("import sys; from imguard.rules.ruleset import loads; loads(open(sys.argv[1], encoding='utf-8').read()); "
              "print('pypinyin' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", script, str(ROOT / "rules.example.yaml")],
                            capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_the_top_level_switch_covers_every_chinese_block_and_replace_keyword():
    ruleset = parse({"pinyin": True, "block": ["傻逼", "fuck", "词1"], "replace": ["垃圾"], "allow": ["沙比例"]})

    assert hits(ruleset, "煞笔")[0]["rule"] == "傻逼"
    assert hits(ruleset, "laji")[0]["list"] == "replace"
    assert ruleset.scan("沙比例").action == "pass"  # allow entries are matched as written
    assert [e.pinyin for e in ruleset.entries] == [True, False, False, True, False]


def test_an_entry_can_opt_out_of_the_top_level_switch_or_in_without_it():
    opted_out = parse({"pinyin": True, "block": [{"keyword": "傻逼", "pinyin": False}]})
    opted_in = parse({"block": ["垃圾", {"keyword": "傻逼", "pinyin": True}]})

    assert opted_out.scan("shabi").action == "pass"
    assert opted_in.scan("shabi").action == "block"
    assert opted_in.scan("laji").action == "pass"


def test_the_example_rules_with_pinyin_on():
    text = (ROOT / "rules.example.yaml").read_text(encoding="utf-8")
    ruleset = loads("pinyin: true\n" + text)

    assert ruleset.scan("你个煞笔").action == "block"
    assert ruleset.scan("cnm").action == "block"
    assert ruleset.scan("他马的").text == "***"
    assert ruleset.scan("他妈妈").action == "pass"


def test_with_collapse_repeats_latin_forms_still_match_runs():
    ruleset = pinyin("操你妈", normalize={"collapse_repeats": True})

    assert ruleset.scan("caonimaaaa").action == "block"
    assert ruleset.scan("操你🐴").action == "block"


# -- errors ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("data, message", [
    ({"block": [{"keyword": "fuck", "pinyin": True}]}, "block[1]: pinyin: true needs a Chinese keyword"),
    ({"replace": ["x", {"keyword": "词1", "pinyin": True}]}, "replace[2]: pinyin: true needs a Chinese keyword"),
    ({"block": [{"keyword": "A片", "pinyin": True}]}, "block[1]"),
    ({"block": [{"keyword": "傻逼", "pinyin": "yes"}]}, "block[1]"),
    ({"block": [{"keyword": "傻逼", "mask": "*"}]}, "block[1]"),
    ({"block": [{"regex": "a", "pinyin": True}]}, "block[1]"),
    ({"allow": [{"keyword": "傻逼", "pinyin": True}]}, "allow[1]"),
    ({"pinyin": "yes", "block": ["傻逼"]}, "pinyin must be true or false"),
])
def test_bad_pinyin_entries_are_refused_naming_the_entry(data, message):
    with pytest.raises(RulesError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse(data)


# -- safety and data ---------------------------------------------------------------------------------


def test_a_flood_of_homophones_stops_at_max_hits():
    ruleset = pinyin("傻逼")

    started = time.monotonic()
    scan = ruleset.scan("煞笔" * 100_000)

    assert len(scan.hits) == MAX_HITS
    assert time.monotonic() - started < 2.0


def test_toneless_readings_are_what_pypinyin_itself_gives():
    from pypinyin.contrib.tone_convert import to_normal

    from imguard.rules import pinyin as module

    first = {cp: listed.split(",", 1)[0] for cp, listed in module._PINYIN_DICT.items()}
    assert all(module.toneless(r) == to_normal(r) for r in first.values())
    assert module.reading("傻") == "sha" and module.reading("绿") == "lv" and module.reading("a") is None
