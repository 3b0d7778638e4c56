"""Peers' published test suites, ported as data (issue #14): tests/data/peers/<peer>.yaml.

Each file names the repository, commit, test files, line ranges and licence it took its cases from; only
data is kept there (the text, the words the peer's test used, the outcome it asserts), never code. Every
case becomes a rules set here (its keywords in block, or in replace when the peer asserts a masked output;
its allow list; the switches and features it needs) and is scanned through ``parse`` and ``RuleSet.scan``.

A case that needs a feature the engine does not have yet (``parse`` refuses the switch or the entry form)
is skipped with "needs <feature>"; anything else that goes wrong fails.
"""
from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from imguard.rules.ruleset import RulesError, RuleSet, parse

PEERS = Path(__file__).resolve().parent / "data" / "peers"
FILES = sorted(PEERS.glob("*.yaml"))

CLASSES = {
    "plain", "case", "full-width", "trad-simp", "noise", "repeats", "latin-whole-word", "digits", "emoji",
    "confusables", "compat", "leet", "accents", "pinyin", "wildcard", "allow", "styled-latin", "regex", "mask",
    "scripts",
}
# Switches and features a case may need: normalize switches, turned on for the case, and two features of the
# rules file itself: pinyin (a top-level ``pinyin: true``) and wildcard (in the keywords: fuck*, *hole).
FEATURES = {"fold_accents", "fold_compat", "fold_confusables", "fold_leet", "fold_digits", "collapse_repeats",
            "pinyin", "wildcard"}
EXPECT = {"block", "pass", "replace"}


def load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def params() -> list[Any]:
    out = []
    for path in FILES:
        doc, seen = load(path), Counter()
        for case in doc["cases"]:
            seen[case["class"]] += 1
            out.append(pytest.param(doc, case, id=f"{path.stem}:{case['class']}:{seen[case['class']]}"))
    return out


def rules_file(doc: dict[str, Any], case: dict[str, Any]) -> dict[str, Any]:
    """The case as a rules file: its keywords in block, or in replace when the peer asserts a masked output."""
    needs = case.get("needs") or []
    normalize = {**(case.get("normalize") or {}), **{n: True for n in needs if n not in ("pinyin", "wildcard")}}
    masked = case["expect"] == "replace"
    entries = [_entry(k, doc.get("mask")) if masked else k for k in case["keywords"]]
    data = {"normalize": normalize, "replace" if masked else "block": entries, "allow": case.get("allow") or []}
    return {**data, "pinyin": True} if "pinyin" in needs else data


def _entry(keyword: Any, mask: Any) -> Any:
    """A replace entry; a peer that masks every word the same way (better_profanity's ****) gives its mask."""
    if mask is None or not isinstance(keyword, str):
        return keyword
    return {"keyword": keyword, "mask": mask}


def build(doc: dict[str, Any], case: dict[str, Any]) -> RuleSet:
    """The case's rule set; a skip when parse() refuses a feature the case needs, a failure for anything else."""
    try:
        return parse(rules_file(doc, case))
    except RulesError as exc:
        message = str(exc)
    missing = [n for n in case.get("needs") or [] if n in message or (n == "wildcard" and "*" in message)]
    if missing:
        pytest.skip(f"needs {', '.join(missing)}: {message}")
    raise AssertionError(f"rules refused for a reason no feature explains: {message}")


def merged_spans(text: str, spans: list[tuple[int, int]]) -> list[str]:
    out: list[list[int]] = []
    for start, end in sorted(spans):
        if out and start < out[-1][1]:
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append([start, end])
    return [text[start:end] for start, end in out]


@pytest.mark.parametrize("doc, case", params())
def test_peer_case(doc: dict[str, Any], case: dict[str, Any]) -> None:
    ruleset = build(doc, case)
    text = case["text"]
    result = ruleset.scan(text)
    matches = merged_spans(text, [(h.start, h.end) for h in result.hits])
    got = {"action": result.action, "text": result.text, "matches": matches}
    expected = {"action": case["expect"], "text": case.get("masked", result.text),
                "matches": case.get("matches", matches)}
    assert got == expected, (f"{doc['peer']} {case.get('src', '')}: text={text!r} keywords={case['keywords']!r} "
                             f"allow={case.get('allow')!r} needs={case.get('needs')!r} normalize={case.get('normalize')!r}"
                             f"\n expected {expected}\n got      {got}")


# -- the data files themselves -------------------------------------------------------------------------


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_each_peer_file_names_its_source_and_licence(path: Path) -> None:
    header = "".join(line for line in path.read_text(encoding="utf-8").splitlines(True) if line.startswith("#"))

    assert re.search(r"^# Peer: .*https://github\.com/\S+/\S+", header, re.MULTILINE)
    assert re.search(r"^# Commit: [0-9a-f]{40}$", header, re.MULTILINE)
    assert re.search(r"^# Licen[cs]e: ", header, re.MULTILINE)
    assert "Left out" in header  # with the count and the reason, even when nothing was


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_each_case_is_well_formed(path: Path) -> None:
    doc = load(path)

    assert doc["cases"]
    for case in doc["cases"]:
        assert set(case) <= {"text", "keywords", "allow", "expect", "masked", "matches", "class", "needs",
                             "normalize", "src", "note"}, case
        assert isinstance(case["text"], str) and isinstance(case["keywords"], list), case
        assert case["expect"] in EXPECT and case["class"] in CLASSES, case
        assert set(case.get("needs") or []) <= FEATURES, case
        assert ("masked" not in case and "matches" not in case) or case["expect"] == "replace", case


def test_every_peer_is_ported() -> None:
    assert {p.stem for p in FILES} == {"houbb_sensitive_word", "toolgood_words", "twin_go_away", "better_profanity",
                                        "mint_filter", "obscenity"}
