"""Local rules throughput: imguard's engine against raw pyahocorasick, flashtext and a naive loop.

Deterministic: the lexicon comes from OpenCC's phrase list (shipped by
opencc-python-reimplemented) plus seeded pseudo-English words and 200 regexes;
the messages are seeded mixtures of Chinese and English with about 1% hits.
The same lexicon is also run with `pinyin: true` (every Chinese keyword also
matches its pinyin and its homophones), against the same raw floor: the planted
hits are unchanged, but the filler, random common characters, sounds like some
of the 7,000 phrases far more often than real text does, so that row also pays
for many more hits. Run with `make bench`.
"""
from __future__ import annotations

import gc
import os
import random
import resource
import statistics
import sys
import time
from typing import Callable, List, Sequence, Tuple

import ahocorasick
import opencc
from flashtext import KeywordProcessor

from imguard.rules.normalize import Switches
from imguard.rules.ruleset import parse

SEED = 20261121
CHINESE_WORDS = 7_000
ENGLISH_WORDS = 2_800
REGEXES = 200
MESSAGES = 10_000
NAIVE_SAMPLE = 300  # the naive loop is measured on a sample: it would take minutes on all


def chinese_phrases(count: int) -> List[str]:
    path = os.path.join(os.path.dirname(opencc.__file__), "dictionary", "STPhrases.txt")
    phrases = []
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            phrase = line.split("\t", 1)[0]
            if 2 <= len(phrase) <= 4:
                phrases.append(phrase)
    random.Random(SEED).shuffle(phrases)
    return phrases[:count]


def english_words(rng: random.Random, count: int) -> List[str]:
    words = set()
    while len(words) < count:
        words.add("".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(5, 9))))
    return sorted(words)


def build(rng: random.Random) -> Tuple[List[str], List[dict], List[str]]:
    keywords = chinese_phrases(CHINESE_WORDS) + english_words(rng, ENGLISH_WORDS)
    floor = ahocorasick.Automaton()
    for word in keywords:
        floor.add_word(word, word)
    floor.make_automaton()
    regexes = [{"regex": rf"{rng.choice('abcdefghijklmnopqrstuvwxyz')}{i}\d{{3,}}"} for i in range(REGEXES)]
    common = "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法所"
    filler = [w for w in english_words(random.Random(SEED + 1), 500)]
    messages: List[str] = []
    while len(messages) < MESSAGES:
        length = rng.randint(5, 300)
        parts: List[str] = []
        size = 0
        while size < length:
            piece = rng.choice(filler) + " " if rng.random() < 0.3 else rng.choice(common)
            parts.append(piece)
            size += len(piece)
        text = "".join(parts)[:300]
        if next(floor.iter(text), None) is not None:
            continue  # the filler formed a lexicon word by chance: only planted hits count
        if rng.random() < 0.01:
            text = rng.choice(keywords) + " " + text[: length - 10]
        messages.append(text)
    return keywords, regexes, messages


def timed(run: Callable[[str], object], messages: Sequence[str]) -> float:
    gc.collect()
    started = time.perf_counter()
    for message in messages:
        run(message)
    return time.perf_counter() - started


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    rng = random.Random(SEED)
    keywords, regexes, messages = build(rng)
    megabytes = sum(len(m.encode("utf-8")) for m in messages) / 1e6

    before = rss_mb()
    started = time.perf_counter()
    full = parse({"block": keywords + regexes})
    compile_s = time.perf_counter() - started
    memory = rss_mb() - before
    off = parse({"block": keywords + regexes, "normalize": {name: False for name in Switches.names()}})
    started = time.perf_counter()
    with_pinyin = parse({"block": keywords + regexes, "pinyin": True})
    pinyin_compile_s = time.perf_counter() - started
    for ruleset in (full, with_pinyin):  # the normalization tables fill on first sight of each character
        for message in messages:
            ruleset.scan(message)

    automaton = ahocorasick.Automaton()
    for word in keywords:
        automaton.add_word(word, word)
    automaton.make_automaton()
    processor = KeywordProcessor()
    processor.add_keywords_from_list(keywords)

    def naive(text: str) -> list:
        return [word for word in keywords if word in text]

    rows = [
        ("imguard, all normalization", timed(full.scan, messages), len(messages)),
        ("imguard, normalization off", timed(off.scan, messages), len(messages)),
        ("imguard, pinyin: true", timed(with_pinyin.scan, messages), len(messages)),
        ("raw pyahocorasick (floor)", timed(lambda m: list(automaton.iter(m)), messages), len(messages)),
        ("flashtext", timed(processor.extract_keywords, messages), len(messages)),
        ("naive `word in text` loop", timed(naive, messages[:NAIVE_SAMPLE]), NAIVE_SAMPLE),
    ]
    latencies = []
    for message in messages:
        started = time.perf_counter()
        full.scan(message)
        latencies.append((time.perf_counter() - started) * 1e6)
    latencies.sort()

    hits = sum(full.scan(m).action != "pass" for m in messages)
    pinyin_hits = sum(with_pinyin.scan(m).action != "pass" for m in messages)
    print(f"Local rules benchmark (Python {sys.version.split()[0]}, {os.cpu_count()} cores)")
    print(f"lexicon: {len(keywords)} keywords + {len(regexes)} regexes; "
          f"{len(messages)} messages of 5-300 chars, {megabytes:.2f} MB, {hits} ({hits / len(messages):.1%}) with hits")
    print(f"compile: {compile_s * 1000:.0f} ms, memory for the compiled rules: ~{memory:.0f} MB (max RSS growth)")
    print(f"with pinyin: true: compile {pinyin_compile_s * 1000:.0f} ms (pypinyin's import included), "
          f"{pinyin_hits} ({pinyin_hits / len(messages):.1%}) messages with hits")
    print(f"imguard per message: p50 {latencies[len(latencies) // 2]:.1f} us, "
          f"p99 {latencies[int(len(latencies) * 0.99)]:.1f} us, max {latencies[-1]:.1f} us, "
          f"mean {statistics.fmean(latencies):.1f} us")
    print()
    print(f"| {'engine':<28} | {'messages/s':>12} | {'MB/s':>8} |")
    print(f"|{'-' * 30}|{'-' * 14}|{'-' * 10}|")
    rates = {}
    for name, seconds, count in rows:
        rate = count / seconds
        rates[name] = rate
        mb = megabytes * count / len(messages) / seconds
        print(f"| {name:<28} | {rate:>12,.0f} | {mb:>8.2f} |")
    floor = rates["raw pyahocorasick (floor)"]
    engine = rates["imguard, all normalization"]
    naive_rate = rates["naive `word in text` loop"]
    print()
    print(f"full engine / raw pyahocorasick: {engine / floor:.2f} (target >= 1.0)")
    print(f"full engine with pinyin / raw pyahocorasick: {rates['imguard, pinyin: true'] / floor:.2f} (target >= 0.5)")
    print(f"full engine / naive loop: {engine / naive_rate:,.0f}x (target >= 100x)")


if __name__ == "__main__":
    main()
