"""Normalization that sees through evasion while remembering where every character came from.

One ``str.translate`` table does every 1:1 fold (width, case, traditional →
simplified, digits of other scripts, stylized Latin) and marks what must go
(invisible characters, non-ASCII noise), so the per-character work runs at C
speed. Removing characters and re-spelling them for the keyword automaton is
done with ``str.replace``, ``encode`` and ``bytes.translate``, also in C. The
way back to original positions is only worked out when a rule hits, which is
rare, so hits are reported on exactly what the user typed.
"""
from __future__ import annotations

import functools
import os
import re
import unicodedata
from bisect import bisect_right
from dataclasses import dataclass, fields
from typing import Callable, Dict, Iterable, List, Mapping, Tuple

# The character that translate() puts in place of something to be dropped.
GONE = "\x00"

_INVISIBLE = (
    [0x00AD, 0x034F, 0x061C, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x180E, 0x3164, 0xFEFF, 0xFFA0]
    + list(range(0x200B, 0x2010))  # zero-width space, joiners, direction marks
    + list(range(0x202A, 0x202F))  # bidi embedding controls
    + list(range(0x2060, 0x2070))  # word joiner, invisible operators
    + list(range(0xFE00, 0xFE10))  # variation selectors
    + list(range(0xE0100, 0xE01F0))  # variation selectors supplement
    + list(range(0xE0000, 0xE0080))  # tag characters
)

# Blocks where letters wear costumes: letterlike symbols, enclosed alphanumerics,
# mathematical alphanumerics, enclosed supplement (squared, negative circled).
_STYLED_BLOCKS = [(0x2100, 0x2150), (0x2460, 0x2500), (0x1D400, 0x1D800), (0x1F100, 0x1F200)]
_LATIN_NAME = re.compile(r"LATIN (?:CAPITAL|SMALL) LETTER ([A-Z])$")

# Sentence punctuation (and line breaks) ends what skip_noise may glue together: "你真傻，逼我干嘛" is two
# clauses, not 傻逼. It becomes a line break, which both views keep and no keyword contains.
_SENTENCE_ENDS = frozenset("，。！？；\n\r\u2028\u2029")
BARRIER = "\n"

# Code points one fold table remembers (~8 MiB): far more than real traffic uses (common CJK,
# Latin, emoji), far fewer than the 1.1 million a flood of made-up text can bring.
MAX_FOLD_ENTRIES = 65_536


@dataclass(frozen=True)
class Switches:
    """Each step can be turned off in the rules file's ``normalize:`` mapping."""

    ignore_case: bool = True
    ignore_width: bool = True
    traditional_to_simplified: bool = True
    fold_digits: bool = True
    fold_styled_latin: bool = True
    fold_compat: bool = True
    fold_accents: bool = True
    fold_confusables: bool = True
    strip_invisible: bool = True
    skip_noise: bool = True
    collapse_repeats: bool = False
    fold_leet: bool = False  # off: 1 and l, 0 and o become one letter in keywords and text alike

    @classmethod
    def names(cls) -> Tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


@functools.lru_cache(maxsize=1)
def _traditional_to_simplified() -> Dict[int, str]:
    """OpenCC's character table (first candidate only, so the mapping stays 1:1)."""
    import opencc

    path = os.path.join(os.path.dirname(opencc.__file__), "dictionary", "TSCharacters.txt")
    table: Dict[int, str] = {}
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            parts = line.split()
            if len(parts) >= 2 and len(parts[0]) == 1 and len(parts[1]) == 1:
                table[ord(parts[0])] = parts[1]
    return table


@functools.lru_cache(maxsize=1)
def _confusables() -> Dict[int, str]:
    """Unicode's look-alikes of ASCII letters (UTS #39 confusables.txt, via scripts/make_confusables.py)."""
    path = os.path.join(os.path.dirname(__file__), "data", "confusables_latin.tsv")
    table: Dict[int, str] = {}
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            if not line.startswith("#"):
                code, letter, _ = line.split("\t", 2)
                table[int(code, 16)] = letter
    return table


_LETTER_NAMED = re.compile(r"(?:LATIN LETTER SMALL CAPITAL|REGIONAL INDICATOR SYMBOL LETTER) ([A-Z])$")


def _compat(ch: str) -> str:
    """NFKC, where it gives one character: Kangxi radicals (⼤ → 大), modifier letters (ᶠ → f), ..."""
    folded = unicodedata.normalize("NFKC", ch)
    return folded if len(folded) == 1 else ch


def _unaccented(ch: str) -> str:
    """The letter without its combining marks (č → c, Ó → O), where one letter remains."""
    bare = "".join(c for c in unicodedata.normalize("NFD", ch) if not unicodedata.combining(c))
    return bare if len(bare) == 1 else ch


def _styled_latin_letter(ch: str) -> str:
    cp = ord(ch)
    if not any(start <= cp < stop for start, stop in _STYLED_BLOCKS):
        return ch
    # Circled, parenthesized, mathematical letters: compatibility decomposition, minus the costume.
    core = [c for c in unicodedata.normalize("NFKC", ch) if c.isalnum()]
    if len(core) == 1 and core[0].isascii() and core[0].isalpha():
        return core[0].lower()
    # Negative circled and squared letters have no decomposition; their names say which letter.
    match = _LATIN_NAME.search(unicodedata.name(ch, ""))
    return match.group(1).lower() if match else ch


def _ascii_digit(ch: str) -> str:
    if ch in "0123456789":
        return ch
    value = unicodedata.numeric(ch, None)
    if value is not None and value == int(value) and 0 <= value <= 9:
        return str(int(value))
    return ch


def _is_noise(ch: str) -> bool:
    """Separators, punctuation, symbols (emoji included) and controls: what people put inside words."""
    return unicodedata.category(ch)[0] in "ZPSC" and unicodedata.category(ch) not in ("Co", "Cs")


class _FoldTable(dict):
    """A ``str.translate`` table filled on first sight of each character, then read at C speed.

    Full at MAX_FOLD_ENTRIES, it starts over rather than stop remembering: a table frozen
    when full would leave whatever came after a flood slow for good, while a cleared one
    learns today's characters again at the cost of one fold each.
    """

    def __init__(self, fold_char):
        super().__init__()
        self._fold_char = fold_char

    def __missing__(self, cp: int) -> str:
        value = self._fold_char(chr(cp))
        if len(self) >= MAX_FOLD_ENTRIES:
            self.clear()
        self[cp] = value
        return value


_INVISIBLE_SET = frozenset(_INVISIBLE)
# ASCII noise is kept in the regex view (URLs and phone numbers have dots and dashes)
# and deleted from the keyword view at the byte level.
_ASCII_NOISE = bytes(b for b in range(128) if _is_noise(chr(b)) and chr(b) != BARRIER)
# fold_leet: each look-alike becomes the letter it stands for; 1, l, | and ! are one letter, as are 7 and l
# (@$$h073 is asshole), so keywords are spelled the same way and "hell" still matches "he11". The signs
# among them (@ $ ! | ( # +) stop being noise, which is the precision fold_leet costs: 狗+东西 is no
# longer glued.
_LEET_FROM, _LEET_TO = b"0123456789@$!|(#+", b"oizeasgibgasiicht"
_LEET_TABLE = bytes.maketrans(_LEET_FROM + b"l", _LEET_TO + b"i")
_LEET_CHARS = str.maketrans((_LEET_FROM + b"l").decode(), (_LEET_TO + b"i").decode())
_GONE_RUNS = re.compile(GONE + "+")
_RUNS = re.compile(r"(.)\1*", re.DOTALL)


class Normalizer:
    """Builds the two views a rule set searches: one for regexes, one for keywords."""

    def __init__(self, switches: Switches = Switches()):
        self.switches = switches
        self._t2s = _traditional_to_simplified() if switches.traditional_to_simplified else {}
        self._confusables = _confusables() if switches.fold_confusables else {}
        # fold_leet spells look-alike digits and signs as letters in the keyword view only (phone
        # numbers keep their digits in the regex view), so those signs are no longer noise there.
        self.noise = bytes(b for b in _ASCII_NOISE if not (switches.fold_leet and b in _LEET_FROM))
        self.noise_runs = re.compile(b"[" + re.escape(self.noise) + b"]+")
        self.noise_chars = re.compile("[" + re.escape(self.noise.decode("ascii")) + "]+")
        self.leet = _LEET_TABLE if switches.fold_leet else None
        self._table = _FoldTable(self._fold_char)

    def _fold_char(self, ch: str) -> str:
        on = self.switches
        if 0xD800 <= ord(ch) <= 0xDFFF:
            return "\ufffd"  # a lone surrogate cannot be encoded; it stands for nothing anyway
        if on.strip_invisible and ord(ch) in _INVISIBLE_SET:
            return GONE
        if on.skip_noise and ch in _SENTENCE_ENDS:
            return BARRIER  # decided before width folding turns "，" into an ASCII comma
        ch = self._t2s.get(ord(ch), ch)
        if on.fold_compat:
            ch = _compat(ch)
        if on.fold_accents:
            if unicodedata.combining(ch):
                return GONE  # a mark on its own (f̶u̶c̶k̶'s strikethrough) decorates the letter before it
            ch = _unaccented(ch)
        if on.fold_styled_latin:
            ch = _styled_latin_letter(ch)
        if on.fold_confusables:
            ch = self._confusables.get(ord(ch), ch)
            named = _LETTER_NAMED.search(unicodedata.name(ch, "")) if not ch.isascii() else None
            ch = named.group(1).lower() if named else ch
        if on.fold_digits:
            ch = _ascii_digit(ch)
        if on.ignore_width and 0xFF01 <= ord(ch) <= 0xFF5E:
            ch = chr(ord(ch) - 0xFEE0)
        if on.ignore_width and ch == "\u3000":
            ch = " "
        if on.ignore_case:
            # One character in, one out: the rare letters whose lower case is longer keep its first.
            ch = ch.lower()[0]
        # Judged after folding (a circled letter is a symbol until it is a letter). Non-ASCII
        # noise (CJK punctuation, emoji) goes for both views; ASCII noise only for keywords.
        return GONE if on.skip_noise and not ch.isascii() and _is_noise(ch) else ch

    def fold(self, text: str) -> str:
        """Same length as ``text``; characters to drop are GONE."""
        return text.translate(self._table)

    def regex_view(self, text: str) -> "Compacted":
        """What regexes see: folded; invisible characters (and, with skip_noise, non-ASCII
        punctuation and symbols) removed; ASCII punctuation and spaces kept."""
        return Compacted(self.fold(text))

    def views(self, text: str) -> Tuple["Compacted", "KeywordView"]:
        """Both views of ``text``, folding it once."""
        regex_view = self.regex_view(text)
        return regex_view, KeywordView(regex_view, self)

    def keyword(self, entry: str) -> Tuple[str, Tuple[int, ...]]:
        """A block/replace keyword in the form the automaton searches for, and (with collapse_repeats)
        how many times each of its collapsed characters repeats as written: ``hell`` is searched as
        ``hel`` and asks for two l's, so ``helllo`` matches and ``helo`` does not."""
        view = self.views(entry)[1]
        return view.text, view.runs

    def allow_key(self, entry: str) -> str:
        """An allow entry as the regex view spells it: folded, but with its spaces and ASCII
        punctuation, so ``pen is`` covers "the pen is red" and never the word it would glue into."""
        return self.regex_view(entry).text

    def plain(self, text: str) -> str:
        """A keyword as readable folded text."""
        return self.views(text)[1].plain()


class _Removal:
    """What a removal took out of a string, and how to find a position from before it.

    Built on first use from ``spans`` (the removed [start, end) spans, in order):
    most texts never hit a rule and never need it.
    """

    __slots__ = ("_spans", "_starts", "_origins")

    def __init__(self, spans: Callable[[], Iterable[Tuple[int, int]]]):
        self._spans = spans
        self._starts: List[int] = []
        self._origins: List[int] = []

    def before(self, index: int) -> int:
        """Position, before the removal, of what is at ``index`` after it."""
        if not self._starts:
            starts, origins, gone = [0], [0], 0
            for start, end in self._spans():
                gone += end - start
                starts.append(end - gone)
                origins.append(end)
            self._starts, self._origins = starts, origins
        run = bisect_right(self._starts, index) - 1
        return self._origins[run] + index - self._starts[run]


_NOTHING_REMOVED = _Removal(lambda: ())


class Compacted:
    """A folded text without its GONE characters, and the way back to original positions."""

    __slots__ = ("text", "_removal")

    def __init__(self, folded: str):
        if GONE in folded:
            self.text = folded.replace(GONE, "")
            self._removal = _Removal(lambda: (m.span() for m in _GONE_RUNS.finditer(folded)))
        else:
            self.text, self._removal = folded, _NOTHING_REMOVED

    def original(self, index: int) -> int:
        """Original position of the character at ``index`` of ``text``."""
        return self._removal.before(index)

    def original_span(self, start: int, end: int) -> Tuple[int, int]:
        """Original [start, end) of [start, end): from its first to its last kept character."""
        return self.original(start), self.original(end - 1) + 1


class KeywordView:
    """The regex view without ASCII noise, spelled as UTF-8 bytes in a latin-1 string.

    pyahocorasick scans a trie node's children one by one, and Chinese gives the
    root thousands of them; spelled as UTF-8 bytes, no node has more than 256
    and most have a handful, which makes the automaton several times faster.

    With collapse_repeats, ASCII noise goes first (``l[]l`` is two l's), then each run of one
    character becomes one character, and ``runs`` remembers how long each run was, so that a
    keyword can ask for its own doubled letters (``hell``) and a hit can cover a whole run.
    """

    __slots__ = ("text", "runs", "_base", "_utf8", "_noise", "_noise_chars", "_repeats")

    def __init__(self, base: Compacted, normalizer: "Normalizer"):
        switches = normalizer.switches
        self._base = base
        chars = base.text
        self._noise_chars = self._repeats = self._noise = _NOTHING_REMOVED
        self.runs: Tuple[int, ...] = ()
        if switches.collapse_repeats:
            if normalizer.leet is not None:
                chars = chars.translate(_LEET_CHARS)
            if switches.skip_noise:
                stripped, noise = chars, normalizer.noise_chars
                self._noise_chars = _Removal(lambda: (m.span() for m in noise.finditer(stripped)))
                chars = noise.sub("", chars)
            runs = [(m.start(), m.end()) for m in _RUNS.finditer(chars)]
            self.runs = tuple(stop - start for start, stop in runs)
            spans = [(start + 1, stop) for start, stop in runs if stop - start > 1]
            if spans:
                self._repeats = _Removal(lambda: spans)
                chars = "".join(chars[start] for start, _ in runs)
            utf8 = self._utf8 = chars.encode("utf-8")
            self.text = utf8.decode("latin-1")
            return
        utf8 = self._utf8 = chars.encode("utf-8")
        if switches.skip_noise:
            # Bytes, not characters: translate() on bytes runs far faster (the common path).
            self.text = utf8.translate(normalizer.leet, normalizer.noise).decode("latin-1")
            runs = normalizer.noise_runs
            self._noise = _Removal(lambda: (m.span() for m in runs.finditer(utf8)))
        else:
            self.text = utf8.translate(normalizer.leet).decode("latin-1")

    def plain(self) -> str:
        return self.text.encode("latin-1").decode("utf-8", "replace")

    def _char(self, index: int) -> int:
        """Keyword-view byte ``index`` → bytes before noise removal → characters (collapsed, if so)."""
        byte = self._noise.before(index)
        return len(self._utf8[:byte].decode("utf-8", "ignore"))

    def _original(self, char: int) -> int:
        return self._base.original(self._noise_chars.before(self._repeats.before(char)))

    def original_span(self, start: int, end: int) -> Tuple[int, int]:
        """Original [start, end) of keyword-view bytes [start, end), whole runs included: a hit on
        the collapsed 傻逼 in 傻逼逼逼 covers all of it."""
        first, last = self._char(start), self._char(end - 1)
        run_end = self._repeats.before(last) + (self.runs[last] - 1 if self.runs else 0)
        return self._original(first), self._base.original(self._noise_chars.before(run_end)) + 1

    def runs_cover(self, start: int, end: int, wanted: Tuple[int, ...]) -> bool:
        """With collapse_repeats: does the text repeat each character of the hit at least as often as
        the keyword does (``ass`` needs two s's, so "as you wish" is no hit)?"""
        if not self.runs:
            return True
        # One collapsed character per keyword character, skipping UTF-8 continuation bytes.
        have = [self.runs[self._char(i)] for i in range(start, end) if ord(self.text[i]) & 0xC0 != 0x80]
        return len(have) == len(wanted) and all(h >= w for h, w in zip(have, wanted))


def switches_from(mapping: Mapping[str, object]) -> Switches:
    unknown = set(mapping) - set(Switches.names())
    if unknown:
        raise ValueError(f"unknown normalize switch(es): {', '.join(sorted(unknown))}")
    for name, value in mapping.items():
        if not isinstance(value, bool):
            raise ValueError(f"normalize.{name} must be true or false")
    return Switches(**mapping)  # type: ignore[arg-type]
