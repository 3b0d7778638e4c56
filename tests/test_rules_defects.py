"""The engine defects peers' published suites exposed (issue #14), each as the case that showed it."""
from __future__ import annotations

import pytest

from imguard.rules.ruleset import parse


def rules(**lists):
    return parse(lists)


def scan(ruleset, text):
    return ruleset.scan(text)


# -- "Latin" is decided per keyword end, from the keyword as written ---------------------------------


@pytest.mark.parametrize("keyword, text", [("一夜情", "一夜情qq私聊"), ("三级片", "三级片100部"), ("六四", "1989六四"),
                                           ("六四", "六四abc")])
def test_chinese_keywords_that_digit_folding_touches_stay_chinese(keyword, text):
    assert scan(rules(block=[keyword]), text).action == "block"


def test_a_mixed_keyword_is_bounded_only_at_its_latin_end():
    ruleset = rules(block=["词1", "词2"])

    assert len(scan(ruleset, "词1词2").hits) == 2  # 词2 starts with a Chinese character: 1 before it is fine
    assert scan(ruleset, "a词1b").action == "pass"  # ...but 1 must not run into b
    assert scan(ruleset, "a词1 b").action == "block"


@pytest.mark.parametrize("text, expected", [("CLASS", "pass"), ("ASS", "block"), ("an ASS!", "block"),
                                            ("ass", "pass")])
def test_upper_case_latin_keywords_keep_the_whole_word_rule_without_ignore_case(text, expected):
    assert scan(rules(block=["ASS"], normalize={"ignore_case": False}), text).action == expected


# -- repeats are collapsed in the text only -------------------------------------------------------------


def collapsing(**lists):
    return rules(normalize={"collapse_repeats": True}, **lists)


@pytest.mark.parametrize("keyword, text, expected", [
    ("fuck", "fuckkkk", "block"),
    ("fuck", "ffffuuuuck you", "block"),
    ("hell", "go to hell", "block"),
    ("hell", "go to hellllll", "block"),
    ("asssert", "asssert", "block"),
    ("ass", "as you wish", "pass"),
    ("all", "fuck al[]l", "block"),
    ("all", "fuck al", "pass"),
    ("爸爸", "我爸在家", "pass"),
    ("爸爸", "爸爸在家", "block"),
])
def test_a_keyword_matches_runs_at_least_as_long_as_its_own(keyword, text, expected):
    assert scan(collapsing(block=[keyword]), text).action == expected


def test_a_mask_covers_the_whole_run():
    result = scan(collapsing(replace=["傻逼"]), "你傻逼逼逼吧")

    assert result.text == "你****吧"


# -- allow entries see the text as written, noise folded but not glued -------------------------------------


def test_an_allow_entry_with_a_space_covers_the_spaced_words_only():
    ruleset = rules(block=["penis"], allow=["pen is"])

    assert scan(ruleset, "the pen is red").action == "pass"
    assert scan(ruleset, "a penis").action == "block"


def test_allow_entries_are_still_folded():
    ruleset = rules(replace=["垃圾"], allow=["垃圾分类"])

    assert scan(ruleset, "垃圾分類").action == "pass"  # traditional 類 folds to 类
    assert scan(ruleset, "ＬＡＪＩ垃圾").action == "replace"


# -- skip_noise never reaches across a sentence ---------------------------------------------------------


@pytest.mark.parametrize("text", ["你真傻，逼我干嘛", "你真傻。逼我干嘛", "傻！逼", "傻？逼", "傻；逼", "傻\n逼"])
def test_noise_is_not_skipped_across_sentence_punctuation(text):
    assert scan(rules(block=["傻逼"]), text).action == "pass"


@pytest.mark.parametrize("text", ["傻-逼", "傻 逼", "傻😀逼", "傻……逼", "傻,逼"])
def test_noise_inside_a_word_is_still_skipped(text):
    assert scan(rules(block=["傻逼"]), text).action == "block"


# -- wildcard keywords (Latin only, still whole-word at the other end) ----------------------------------------


@pytest.mark.parametrize("keyword, text, expected, masked", [
    ("fuck*", "what the fucking hell", "replace", "what the ******* hell"),
    ("fuck*", "fuck off", "replace", "**** off"),
    ("fuck*", "motherfucking", "pass", None),  # the other end is still a whole word
    ("*hole", "you asshole!", "replace", "you *******!"),
    ("*hole", "holes in it", "pass", None),
    ("*hole*", "assholes", "replace", "********"),
])
def test_a_wildcard_runs_on_to_the_end_of_the_word(keyword, text, expected, masked):
    result = scan(rules(replace=[keyword]), text)

    assert result.action == expected
    if masked is not None:
        assert result.text == masked


@pytest.mark.parametrize("keyword", ["*", "f*", "fu*ck", "傻逼*", "**"])
def test_a_wildcard_keyword_that_cannot_work_is_refused_at_load(keyword):
    from imguard.rules.ruleset import RulesError

    with pytest.raises(RulesError, match="wildcard"):
        rules(block=[keyword])
