"""Pinyin and homophones for Chinese keywords marked ``pinyin: true`` (issue #14).

A keyword such as 傻逼 then also matches

- its pinyin as a Latin word: the full spelling (``shabi``) and, for keywords of three or more
  syllables, the initials (``cnm`` for 操你妈, ``nmsl`` for 你妈死了), whole words only, as any
  Latin keyword (``sb`` is never found in ``usb``). Tone-marked pinyin (``cào nǐ mā``) is matched
  through the full spelling once the normalizer folds accents away and skip_noise drops the spaces;
- text whose characters sound the same, tones ignored (煞笔, 发轮功 for 法轮功, 操你🐴).

Readings come from pypinyin's per-character dictionary (``pypinyin.pinyin_dict``), made toneless
as pypinyin's ``to_normal`` does (ü is spelled ``v``: 绿 → ``lv``; ``lu`` is added as a Latin
variant, which is what accent folding makes of ``lǜ``).

**Polyphones** (6,986 of the 41,923 characters pypinyin knows have more than one toneless reading).
pypinyin's phrase dictionary, which gives a word its reading in context (银行 → yin hang), is not
loaded: it costs ~45 MB of a 128 MB function (measured: 56 MB for ``import pypinyin`` against 12 MB
with PYPINYIN_NO_PHRASES, pypinyin's documented switch). Instead:

- for sounds, every character has one reading, the first pypinyin lists (the one pypinyin gives a
  lone character: 长 → zhang, 行 → xing, 了 → le), on both sides: in the text, where nothing dearer
  than a per-character table is affordable on the hot path, and in the keywords, so that a text
  spelled with exactly the keyword's characters always sounds like the keyword. Homophones of
  another reading are missed (藏独 read zang du sounds like 仓毒, not 葬毒); giving keywords every
  reading would match far more ordinary text (的 de/di, 了 le/liao, 说 shuo/shui/yue...);
- for Latin forms, a keyword gets a spelling per reading of its polyphones (up to MAX_SPELLINGS):
  秘鲁 is ``milu`` and ``bilu``, 乐清 ``leqing`` and ``yueqing``. A whole Latin word is rarely
  typed by accident.

**The pinyin view.** Both kinds of form are searched by one automaton, in one view of the text built
from the regex view (so case, width, traditional → simplified and invisible characters are already
folded) with one ``str.translate``. Each character becomes exactly two characters, so position ``i``
of the view is character ``i // 2`` of the regex view, with no position map to build:

- a character with a reading becomes the two-character code of its syllable. Codes are drawn from
  two disjoint ranges (a "high" character then a "low" one), so a match can only start on a
  syllable boundary: 啊 (a) is never found inside 吧 (ba), as it would be in spelled-out pinyin;
  and no node of the automaton has more than 32 children, where one character per syllable would
  give the root some 400 (pyahocorasick scans a node's children one by one: see KeywordView);
- an ASCII digit reads as its Chinese numeral (fold_digits has turned 一夜情 into ``1夜情``; 1 reads
  ``yi``, so 衣夜晴 is found);
- an ASCII letter stays, followed by a pad character (the Latin forms are spelled the same way);
- what the keyword view drops (ASCII noise, with skip_noise) becomes two spaces, which the automaton
  steps over (pyahocorasick's ``ignore_white_space``): 煞 笔 sounds like 煞笔, ``s.h.a.b.i`` spells
  ``shabi``, and positions stay where they were;
- anything else (kana, a non-ASCII letter, the sentence barrier) is a separator no form contains.

A Latin form's whole-word check (no ASCII letter or digit of the original right before or after it)
reads the regex view's characters around the match, and the original only when the regex view
dropped something there. It runs for every match of a Latin form, and short initials (``cnm``)
occur inside many longer words, so it must stay a few comparisons.

With skip_noise the regex view has already lost emoji; when the text holds one of the
EMOJI_HOMOPHONES below, the view is built from ``Normalizer.fold`` instead, with those emoji put back
(rare, so the common path keeps its one ``str.translate``).

Homophone matching is for keywords of two or more syllables only: a one-character keyword would
hit every character that sounds like it (屌 in every 掉 and 吊). Repeated characters are not
collapsed in this view, nor leet read: with collapse_repeats or fold_leet the Latin forms go into
the keyword automaton instead, which knows runs (``caonimaaa``) and leet (``sh4bi``), and sound forms
match unrepeated text only.
"""
from __future__ import annotations

import itertools
import os
import re
import threading
import unicodedata
from typing import Any, Dict, List, Optional, Tuple

from imguard.rules.normalize import GONE, Compacted, Normalizer


def _import_pypinyin():
    """pypinyin's character dictionary, without its phrase dictionary.

    ``import pypinyin`` loads the phrase dictionary unless PYPINYIN_NO_PHRASES is set
    (pypinyin's FAQ, "no-phrases"; NO_DICT_COPY spares a copy of the character dictionary).
    Only the character dictionary is used here, so both are set for the import and put back.
    """
    added = [name for name in ("PYPINYIN_NO_PHRASES", "PYPINYIN_NO_DICT_COPY") if name not in os.environ]
    for name in added:
        os.environ[name] = "true"
    try:
        from pypinyin.pinyin_dict import pinyin_dict
    finally:
        for name in added:
            os.environ.pop(name, None)
    return pinyin_dict


_PINYIN_DICT = _import_pypinyin()

# Emoji read as the character they picture (操你🐴 is 操你马, which sounds like 操你妈). Only used for
# homophones: an emoji is noise to the keyword automaton.
EMOJI_HOMOPHONES: Dict[str, str] = {
    "🐴": "马", "🐎": "马",  # ma: 妈
    "🐮": "牛", "🐂": "牛", "🐄": "牛",  # niu: 牛逼
    "🐔": "鸡", "🐓": "鸡",  # ji: 鸡巴
    "🐶": "狗", "🐕": "狗",  # gou: 狗日的
    "🐷": "猪", "🐖": "猪",  # zhu: 猪头
    "🐢": "龟",  # gui: 龟儿子
    "🐍": "蛇",  # she
}
_EMOJI = re.compile("[" + "".join(EMOJI_HOMOPHONES) + "]")
_NUMERALS = "〇一二三四五六七八九"  # how ASCII digit d reads in the pinyin view

# What each character of the base text becomes (two characters each, so view position i is base
# character i // 2). None of these is a space for iswspace() in any locale, except SKIPPED.
SKIPPED = "  "  # what the keyword view drops: the automaton steps over spaces (ignore_white_space)
SEPARATOR = "\x01\x01"  # a character without a reading; no form contains it
PAD = "\x7f"  # after each ASCII letter
_CODE_SPAN = 32  # syllable codes: a high character U+00C0..U+00DF, then a low one U+00E0..U+00FF
_HIGH = ("\xc0", "\xdf")
MAX_SPELLINGS = 16  # Latin spellings of one keyword with polyphones (乐清: leqing, yueqing, yaoqing, laoqing)
MAX_TABLE_ENTRIES = 65_536  # as normalize.MAX_FOLD_ENTRIES: a flood of made-up text cannot grow it further

_readings: Dict[int, Optional[str]] = {}
_codes: Dict[str, str] = {}
_codes_lock = threading.Lock()


def toneless(syllable: str) -> str:
    """A tone-marked syllable without its tone, ü spelled ``v``: what pypinyin's ``to_normal`` gives
    (the same for every first reading of pypinyin 0.55; tests/test_rules_pinyin.py checks), five
    times faster, which counts when the table for the whole BMP is made."""
    decomposed = unicodedata.normalize("NFD", syllable).replace("u\u0308", "v")
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def reading(ch: str) -> Optional[str]:
    """The toneless syllable of a character (its first reading in pypinyin), or None."""
    cp = ord(ch)
    if cp in _readings:
        return _readings[cp]
    listed = _PINYIN_DICT.get(cp)
    syllable = toneless(listed.split(",", 1)[0]) if listed else None
    if syllable is not None and not (syllable.isascii() and syllable.isalpha()):
        syllable = None  # none in pypinyin 0.55; a Latin form must stay a plain word
    _readings[cp] = syllable
    return syllable


def _code(syllable: str) -> Optional[str]:
    """The two characters that stand for a syllable in the pinyin view; one per syllable, for good."""
    code = _codes.get(syllable)
    if code is None:
        with _codes_lock:  # two rule sets compiling at once must not give two syllables one code
            code = _codes.get(syllable)
            if code is None:
                index = len(_codes)
                if index >= _CODE_SPAN * _CODE_SPAN:
                    return None  # cannot happen: Mandarin has some 420 toneless syllables
                code = _codes[syllable] = chr(0xC0 + index // _CODE_SPAN) + chr(0xE0 + index % _CODE_SPAN)
    return code


def readings(ch: str) -> Tuple[str, ...]:
    """Every toneless reading pypinyin lists for a character, the first first (乐: le, yue, yao, lao)."""
    listed = _PINYIN_DICT.get(ord(ch))
    found = [toneless(r) for r in listed.split(",")] if listed else []
    return tuple(dict.fromkeys(r for r in found if r.isascii() and r.isalpha()))


def syllables(keyword: str) -> Tuple[List[Tuple[str, ...]], str]:
    """A keyword's readings, one tuple per letter or number it is written with (spaces, punctuation
    and emoji do not count), and the first of those characters that has no reading ("" if none): a
    keyword is Chinese when that is "" and it has at least one character."""
    found: List[Tuple[str, ...]] = []
    for ch in keyword:
        if unicodedata.category(ch)[0] not in "LN":
            continue
        listed = readings(ch)
        if not listed:
            return found, ch
        found.append(listed)
    return found, ""


def latin_forms(keyword_readings: List[Tuple[str, ...]]) -> List[str]:
    """The Latin words a Chinese keyword also matches: its full pinyin (with ``u`` for ``v`` as well,
    when it has a ü) and, from three characters on, its initials.

    A polyphone gives one full spelling per reading, up to MAX_SPELLINGS in all (first readings
    first): someone typing pinyin types the reading the word has (秘鲁 is ``bilu``, 藏独 ``zangdu``),
    which is not always the first, and a whole Latin word costs little precision (not so homophones:
    see the module's docstring). Initials come from the first readings only: three or four letters
    are matched inside every longer word that holds them, and checking each such match is the
    pinyin automaton's main cost on Latin text, which initials per reading would nearly double."""
    forms: List[str] = []
    for spelling in itertools.islice(itertools.product(*keyword_readings), MAX_SPELLINGS):
        full = "".join(spelling)
        forms.append(full)
        if "v" in full:
            forms.append(full.replace("v", "u"))
    if len(keyword_readings) >= 3:
        forms.append("".join(r[0][0] for r in keyword_readings))
    return list(dict.fromkeys(forms))


def latin_key(word: str) -> str:
    """A Latin form as the pinyin view spells it."""
    return "".join(ch + PAD for ch in word)


_BMP = 0x10000
_bmp_cache: Optional[List[str]] = None


def _bmp_codes() -> List[str]:
    """What each character of the BMP becomes in the pinyin view, but for ASCII (which depends on the
    normalizer's switches): the code of its reading, or SEPARATOR. A list is read faster by
    ``str.translate`` than a dict (4.4 against 6.4 µs for a 300-character message)."""
    global _bmp_cache
    if _bmp_cache is None:
        table = [SEPARATOR] * _BMP
        for cp in _PINYIN_DICT:
            if cp < _BMP:
                syllable = reading(chr(cp))
                table[cp] = (_code(syllable) if syllable else None) or SEPARATOR
        _bmp_cache = table
    return _bmp_cache


class _Table(dict):
    """The pinyin view's ``str.translate`` table, filled on first sight of each character."""

    def __init__(self, preset: Dict[int, str]):
        super().__init__(preset)
        self._preset = preset

    def __missing__(self, cp: int) -> str:
        ch = chr(cp)
        syllable = reading(EMOJI_HOMOPHONES.get(ch, ch))
        value = (_code(syllable) if syllable else None) or SEPARATOR
        if len(self) >= MAX_TABLE_ENTRIES:
            self.clear()
            self.update(self._preset)
        self[cp] = value
        return value


def _word_char(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


Match = Tuple[Tuple[Any, ...], Tuple[int, int]]  # an automaton value's entries, and the original span


class PinyinView:
    """A text as the pinyin automaton reads it, and the way back to the original text."""

    __slots__ = ("text", "_base", "_regex_view", "_intact")

    def __init__(self, text: str, base: str, regex_view: Optional[Compacted], length: int):
        self.text = text
        self._base = base  # what was translated: the regex view's text, or the folded original
        self._regex_view = regex_view  # None when ``base`` has the original's positions
        # Base characters side by side are side by side in the original too.
        self._intact = regex_view is None or len(base) == length

    def matches(self, automaton: Any, budget: int) -> Tuple[List[Match], int]:
        """The matches of ``automaton`` (keys: Latin forms and sound forms) that count, and how many
        matches were looked at (at most ``budget``: past that, the rest of the text is not searched)."""
        text, base, intact = self.text, self._base, self._intact
        found: List[Match] = []
        looked = 0
        for end, (length, entries) in automaton.iter(text, ignore_white_space=True):
            if looked >= budget:
                break
            looked += 1
            last = end // 2 + 1
            latin = entries[0][2]  # a Latin form, bounded at both ends (a key is never both kinds)
            # Inlined, as this runs for every Latin match, most of them inside longer words.
            if latin and last < len(base):
                after = base[last]
                if after.isalnum() and after.isascii() and (intact or self._touching(last - 1)):
                    continue
            start = end - length + 1
            if text.count(" ", start, end):
                start = self._start(end, length)  # skipped spaces inside the match
            first = start // 2
            if latin and first:
                before = base[first - 1]
                if before.isalnum() and before.isascii() and (intact or self._touching(first - 1)):
                    continue
            found.append((entries, self._original(first, last)))
        return found, looked

    def _start(self, end: int, length: int) -> int:
        """Where a match of ``length`` non-space characters ending at ``end`` starts."""
        text, index = self.text, end
        while True:
            if text[index] != " ":
                length -= 1
                if not length:
                    return index
            index -= 1

    def _touching(self, index: int) -> bool:
        """Are base characters ``index`` and ``index + 1`` neighbours in the original text too
        (nothing the regex view dropped, such as an invisible character, between them)?"""
        if self._intact:
            return True
        before, after = self._regex_view.original_span(index, index + 2)  # type: ignore[union-attr]
        return after - before == 2

    def _original(self, first: int, last: int) -> Tuple[int, int]:
        if self._regex_view is None:
            return first, last
        return self._regex_view.original_span(first, last)


class Homophones:
    """Pinyin and sound forms of keywords and pinyin views of texts, for one normalizer's settings."""

    def __init__(self, normalizer: Normalizer):
        self._normalizer = normalizer
        preset: Dict[int, str] = {ord(GONE): SKIPPED}
        for cp in range(128):
            ch = chr(cp)
            if ch == GONE:
                continue
            if ch in "0123456789":
                preset[cp] = _code(reading(_NUMERALS[int(ch)]) or "?") or SEPARATOR
            elif ch.isalpha():
                preset[cp] = ch + PAD
            else:
                # Skipped exactly where the keyword view drops it: kept by the regex view, gone
                # from the keyword view (ASCII noise, with skip_noise).
                regex_view, keyword_view = normalizer.views(ch)
                preset[cp] = SKIPPED if regex_view.text and not keyword_view.text else SEPARATOR
        self._table = _Table(preset)  # any character, filled as they come
        # The BMP as a list, which str.translate reads faster; a character past it is left as it
        # is (one character, not two), and the view is then made again with the dict.
        self._bmp = list(_bmp_codes())
        for cp, value in preset.items():
            self._bmp[cp] = value
        # Latin forms are searched here when the keyword view spells ASCII letters and digits as the
        # regex view does; with collapse_repeats or fold_leet (1 is l, 0 is o) they are not, and the
        # forms go into the keyword automaton with the keywords, which knows runs and leet.
        self.spells_latin = not normalizer.switches.collapse_repeats and all(
            regex_view.text == keyword_view.plain()
            for regex_view, keyword_view in map(normalizer.views, "abcdefghijklmnopqrstuvwxyz0123456789"))
        # With skip_noise, emoji never reach the regex view: texts holding one are rebuilt from fold().
        self._emoji_gone = not normalizer.regex_view("🐴").text

    def view(self, text: str, regex_view: Compacted) -> PinyinView:
        """The pinyin view of ``text``, whose regex view is given."""
        # (Emoji dropped by the regex view make it shorter than the text: no search otherwise.)
        if self._emoji_gone and len(regex_view.text) != len(text) and _EMOJI.search(text):
            folded = list(self._normalizer.fold(text))
            for match in _EMOJI.finditer(text):
                folded[match.start()] = match.group()
            base = "".join(folded)
            return PinyinView(base.translate(self._table), base, None, len(text))
        base = regex_view.text
        view = base.translate(self._bmp)
        if len(view) != 2 * len(base):
            view = base.translate(self._table)
        return PinyinView(view, base, regex_view, len(text))

    def sound_form(self, keyword: str) -> Optional[str]:
        """The automaton key for texts that sound like a Chinese keyword; None when the keyword has
        fewer than two syllables (one would hit every character that sounds like it)."""
        key = self.view(keyword, self._normalizer.regex_view(keyword)).text.replace(" ", "")
        highs = key[::2]
        if len(highs) < 2 or not all(_HIGH[0] <= c <= _HIGH[1] for c in highs):
            return None
        return key
