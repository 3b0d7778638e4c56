"""What spammers write that the folds see through (issue #14): accents and marks, compatibility characters,
Unicode's confusables, small capitals, modifier and regional-indicator letters, and (opt-in) leetspeak.
Every fold keeps one character for one, so hits and masks land on what the user typed."""
from __future__ import annotations

import pytest

from imguard.rules.ruleset import parse


def scan(text, normalize=None, **lists):
    return parse(dict(lists, **({"normalize": normalize} if normalize else {}))).scan(text)


@pytest.mark.parametrize("switch, keyword, text", [
    ("fold_accents", "fuck", "fučk"),
    ("fold_accents", "poop", "pÓöp"),
    ("fold_accents", "fuck", "f̶u̶c̶k̶"),  # strikethrough: a combining mark after each letter
    ("fold_compat", "大麻", "⼤⿇"),  # Kangxi radicals, once deleted as symbols
    ("fold_compat", "fuck", "ᶠᵘᶜᵏ"),  # modifier letters
    ("fold_confusables", "fuck", "fuсk"),  # Cyrillic с
    ("fold_confusables", "poop", "рοορ"),  # Cyrillic р, Greek ο
    ("fold_confusables", "fuck", "ꜰᴜᴄᴋ"),  # small capitals
    ("fold_confusables", "fuck", "🇫🇺🇨🇰"),  # regional-indicator letters
])
def test_each_fold_is_on_by_default_and_can_be_turned_off(switch, keyword, text):
    assert scan(text, block=[keyword]).action == "block"
    assert scan(text, normalize={switch: False}, block=[keyword]).action == "pass"


def test_a_masked_look_alike_is_masked_where_the_user_typed_it():
    result = scan("你这个 fučking 人", replace=["fucking"])

    assert result.text == "你这个 ******* 人"


def test_a_symbol_that_looks_like_a_letter_stays_a_censor_mark():
    assert scan("傻×逼", block=["傻逼"]).action == "block"  # ×, not x: Unicode lists it, the table leaves it out
    assert scan("3×4", block=["x4"]).action == "pass"


@pytest.mark.parametrize("keyword, text", [("shit", "5h1t"), ("ass", "a55"), ("asshole", "@$$h073"),
                                           ("whore", "wh0re"), ("hello", "he11o")])
def test_leetspeak_is_opt_in(keyword, text):
    assert scan(text, block=[keyword]).action == "pass"
    assert scan(text, normalize={"fold_leet": True}, block=[keyword]).action == "block"


def test_leet_leaves_the_regex_view_its_digits():
    phone = {"regex": r"1[3-9]\d{9}"}

    assert scan("call 13800138000", normalize={"fold_leet": True}, block=[phone]).action == "block"
