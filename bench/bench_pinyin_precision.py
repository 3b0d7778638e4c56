"""What `pinyin: true` costs in precision: the example rules over clean Chinese text, pinyin off and on.

Clean corpora built from what is installed (no network, deterministic):

- "dictionary sentences": 100,000 messages of 2 to 10 tokens, each token a word of pypinyin's phrase
  dictionary (47,111 words) or, two times in five, one of the 60 commonest characters (的, 是, 他, ...:
  the same list bench_rules.py uses), so that words meet the particles and pronouns real sentences
  put between them (她妈的 sounds like 他妈的). pypinyin's phrase list leans to words with polyphones
  (it exists to read them right); there is no frequency list on this machine to weight it by.
- "README.zh-CN.md": the clauses of this project's Chinese README, natural (if technical) prose.
- any file given on the command line, split into clauses the same way (HTML tags stripped), for
  example Rust by Example's Chinese translation when rustup installed its docs:
  `bench/bench_pinyin_precision.py ~/.rustup/toolchains/*/share/doc/rust/html/rust-by-example/zh/print.html`

Every message is assumed clean: a flag is a false positive. Flags with pinyin off are the example
rules' own (垃圾 in 垃圾回收); the cost of pinyin is the extra flags with it on, per 10,000 messages.
Run with `.venv/bin/python bench/bench_pinyin_precision.py [FILE ...]`.
"""
from __future__ import annotations

import html
import random
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Dict, List, Tuple

import yaml

from imguard.rules.ruleset import RuleSet, parse

ROOT = Path(__file__).resolve().parent.parent
SEED = 20261122
MESSAGES = 100_000
COMMON = "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法所"
CLAUSE_ENDS = re.compile(r"[。！？；\n]+")
TAGS = re.compile(r"<[^>]+>")
CJK = re.compile(r"[\u4e00-\u9fff]")


def dictionary_sentences(count: int) -> List[str]:
    from pypinyin.phrases_dict import phrases_dict

    words = sorted(phrases_dict)
    rng = random.Random(SEED)
    messages = []
    for _ in range(count):
        tokens = [rng.choice(COMMON) if rng.random() < 0.4 else rng.choice(words) for _ in range(rng.randint(2, 10))]
        messages.append("".join(tokens))
    return messages


def clauses(text: str) -> List[str]:
    text = html.unescape(TAGS.sub(" ", text))
    return [c.strip() for c in CLAUSE_ENDS.split(text) if len(CJK.findall(c)) >= 4]


def example_rules(pinyin: bool) -> RuleSet:
    data = yaml.safe_load((ROOT / "rules.example.yaml").read_text(encoding="utf-8"))
    return parse({**data, "pinyin": pinyin})


def measure(name: str, messages: List[str], off: RuleSet, on: RuleSet) -> Tuple[str, int, int, int, Counter, Dict]:
    flagged_off = flagged_on = 0
    rules: Counter = Counter()
    samples: Dict[str, str] = {}
    for message in messages:
        was = off.scan(message).action != "pass"
        scan = on.scan(message)
        flagged_off += was
        flagged_on += scan.action != "pass"
        if scan.action != "pass" and not was:
            for hit in scan.hits:
                match = message[hit.start:hit.end]
                rules[f"{hit.entry.rule} <- {match}"] += 1
                samples.setdefault(f"{hit.entry.rule} <- {match}", message)
    return name, len(messages), flagged_off, flagged_on, rules, samples


def main(paths: List[str]) -> None:
    off, on = example_rules(False), example_rules(True)
    corpora = [("dictionary sentences", dictionary_sentences(MESSAGES)),
               ("README.zh-CN.md", clauses((ROOT / "README.zh-CN.md").read_text(encoding="utf-8")))]
    for path in paths:
        corpora.append((Path(path).name, clauses(Path(path).read_text(encoding="utf-8", errors="replace"))))

    print("Precision cost of pinyin: true, rules.example.yaml over clean Chinese text")
    print()
    print(f"| {'corpus':<22} | {'messages':>8} | {'flagged, off':>12} | {'flagged, on':>11} | "
          f"{'extra per 10,000':>16} |")
    print(f"|{'-' * 24}|{'-' * 10}|{'-' * 14}|{'-' * 13}|{'-' * 18}|")
    details = []
    for name, messages in corpora:
        row = measure(name, messages, off, on)
        _, count, flagged_off, flagged_on, rules, samples = row
        extra = (flagged_on - flagged_off) / count * 10_000
        print(f"| {name:<22} | {count:>8,} | {flagged_off:>12,} | {flagged_on:>11,} | {extra:>16.1f} |")
        details.append(row)
    for name, _, _, _, rules, samples in details:
        if rules:
            print()
            print(f"{name}: what pinyin added (rule <- matched text: count, one message)")
            for key, hits in rules.most_common(12):
                print(f"  {key}: {hits}  e.g. {samples[key][:60]!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
