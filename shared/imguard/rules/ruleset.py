"""Block, replace and allow lists, compiled once, applied in one pass per text.

Keywords go into one Aho–Corasick automaton (pyahocorasick); regexes into one
RE2 set (google-re2: linear time, no catastrophic backtracking), so the cost
of a scan hardly grows with the size of the lists. Hits are reported and
masked on the original text, never on the normalized copy.

Chinese keywords marked ``pinyin: true`` also match their pinyin and their homophones
(imguard.rules.pinyin, imported only by rule sets that use it: pypinyin's dictionary and
the pinyin view's table cost ~0.1 s and ~14 MB that other rules files do not pay).
"""
from __future__ import annotations

import unicodedata
from bisect import bisect_right
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import ahocorasick
import re2

from imguard.rules.errors import RulesError
from imguard.rules.normalize import Normalizer, Switches, switches_from
from imguard.rules.yaml_text import read_yaml

if TYPE_CHECKING:
    from imguard.rules.pinyin import Homophones

# Tencent's local-audit limits (im-content-audit-local-and-cloud.md).
MAX_ENTRIES = 10_000
MAX_REGEXES = 200
# Keywords nested in one another ("a", "aa", "aaa", ...) match at every position of a long run:
# output-sensitive matching becomes quadratic. Past this many matches a scan stops and says so.
MAX_HITS = 20_000
LISTS = ("block", "replace", "review", "allow")
# One automaton word's entries: (entry, runs its characters need (collapse_repeats), whether its start
# and its end must not touch a Latin letter or digit). A pinyin form is bounded where its entry is not.
_Word = Tuple["Entry", Tuple[int, ...], bool, bool]


@dataclass(frozen=True)
class Entry:
    list: str  # block, replace, review (deliver, and queue for a person) or allow
    rule: str  # the keyword or pattern, as written
    is_regex: bool = False
    mask: Optional[str] = None  # replace only: what a match becomes (default: one * per character)
    # A Latin end must not touch another Latin letter or digit (``ass`` in ``class``); decided per end,
    # from the keyword as written, so 一夜情 stays Chinese whatever digit folding makes of 一.
    bounded_start: bool = False
    bounded_end: bool = False
    pinyin: bool = False  # a Chinese keyword that also matches its pinyin and its homophones
    # Wildcard ends (``fuck*``, ``*hole``): the hit runs on to the end (start) of the word there.
    wild_start: bool = False
    wild_end: bool = False


@dataclass(frozen=True)
class Hit:
    entry: Entry
    start: int  # in the original text
    end: int

    def as_dict(self, text: str) -> Dict[str, Any]:
        return {"list": self.entry.list, "rule": self.entry.rule, "match": text[self.start:self.end],
                "start": self.start, "end": self.end}


@dataclass(frozen=True)
class Scan:
    action: str  # block, review (deliver, masked where replace matched, and queue), replace or pass
    text: str  # after masking (the original when nothing is replaced)
    hits: Tuple[Hit, ...] = ()
    truncated: bool = False  # MAX_HITS reached: the text past the last hit was not looked at

    def as_dict(self, original: str) -> Dict[str, Any]:
        return {"action": self.action, "text": self.text, "hits": [h.as_dict(original) for h in self.hits]}


def _is_word_char(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


@dataclass
class RuleSet:
    normalizer: Normalizer
    entries: List[Entry] = field(default_factory=list)
    version: str = ""  # where the rules came from, for logs

    def __post_init__(self) -> None:
        normalizer = self.normalizer
        keywords: Dict[str, List[_Word]] = {}
        allows: Dict[str, List[_Word]] = {}
        pinyins: Dict[str, List[_Word]] = {}
        self._regexes: List[Tuple[Entry, Any]] = []
        self._homophones: Optional[Homophones] = None
        for entry in self.entries:
            if entry.is_regex:
                self._regexes.append((entry, _compile_regex(entry, normalizer.switches.ignore_case)))
            elif entry.list == "allow":
                allows.setdefault(normalizer.allow_key(_keyword(entry)), []).append((entry, (), False, False))
            else:
                key, runs = normalizer.keyword(_keyword(entry))
                keywords.setdefault(key, []).append((entry, runs, entry.bounded_start, entry.bounded_end))
                if entry.pinyin:
                    self._add_pinyin(entry, keywords, pinyins)
        self._automaton = _automaton(keywords)
        self._allow_automaton = _automaton(allows)
        self._pinyin_automaton = _automaton(pinyins)
        self._set = _regex_set(self._regexes, normalizer.switches.ignore_case)

    # Pickled by ``make build`` (imguard.rules.compiled): the automata travel as they are, while RE2's
    # objects, the normalizer's caches and the pinyin tables are rebuilt, which is quick.
    def __getstate__(self) -> Dict[str, Any]:
        return {"switches": self.normalizer.switches, "entries": self.entries, "version": self.version,
                "automata": (self._automaton, self._allow_automaton, self._pinyin_automaton)}

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.normalizer = Normalizer(state["switches"])
        self.entries, self.version = state["entries"], state["version"]
        self._automaton, self._allow_automaton, self._pinyin_automaton = state["automata"]
        ignore_case = self.normalizer.switches.ignore_case
        self._regexes = [(entry, _compile_regex(entry, ignore_case)) for entry in self.entries if entry.is_regex]
        self._set = _regex_set(self._regexes, ignore_case)
        self._homophones = None
        if any(entry.pinyin for entry in self.entries):
            from imguard.rules import pinyin

            self._homophones = pinyin.Homophones(self.normalizer)

    def _add_pinyin(self, entry: Entry, keywords: Dict[str, List[_Word]], pinyins: Dict[str, List[_Word]]) -> None:
        """The entry's pinyin as extra Latin words (whole words: ``sb`` is no hit in ``usb``) and its
        sound form, for the pinyin view; both report the entry itself (rule 傻逼 for ``shabi``)."""
        from imguard.rules import pinyin

        if self._homophones is None:
            self._homophones = pinyin.Homophones(self.normalizer)
        found, missing = pinyin.syllables(entry.rule)
        if missing or not found:
            return  # parse() refuses this; an Entry made by hand just gets no pinyin
        for form in pinyin.latin_forms(found):
            if not self._homophones.spells_latin:  # only the keyword view knows runs, leet, ...
                key, runs = self.normalizer.keyword(form)
                keywords.setdefault(key, []).append((entry, runs, True, True))
            else:
                pinyins.setdefault(pinyin.latin_key(form), []).append((entry, (), True, True))
        sound = self._homophones.sound_form(entry.rule)
        if sound is not None:
            pinyins.setdefault(sound, []).append((entry, (), False, False))

    @property
    def empty(self) -> bool:
        return not self.entries

    def scan(self, text: str) -> Scan:
        return scan_layers((self,), text)

    def _hits(self, text: str) -> Tuple[List[Hit], bool]:
        """The hits, and whether MAX_HITS matches (kept or not) cut the scan short."""
        hits: List[Hit] = []
        regex_view, keyword_view = self.normalizer.views(text)
        seen = 0
        for automaton, view in ((self._automaton, keyword_view), (self._allow_automaton, regex_view)):
            if automaton is None:
                continue
            for end, (length, entries) in automaton.iter(view.text):
                first, stop_at = end - length + 1, end + 1
                start, stop = view.original_span(first, stop_at)
                for entry, runs, lead, tail in entries:
                    if runs and not keyword_view.runs_cover(first, stop_at, runs):
                        continue
                    if _bounded(text, start, stop, lead, tail, self.normalizer):
                        hits.append(Hit(entry, *_whole_word(text, start, stop, entry, self.normalizer)))
                seen += 1
                if seen >= MAX_HITS:
                    return hits, True
        if self._pinyin_automaton is not None:
            pinyin_view = self._homophones.view(text, regex_view)  # type: ignore[union-attr]
            literal: Optional[Dict[int, List[Tuple[int, int]]]] = None  # each entry's keyword hits
            found, looked = pinyin_view.matches(self._pinyin_automaton, MAX_HITS - seen)
            for entries, (start, stop) in found:
                latin = entries[0][2]  # a key is either a Latin form (bounded) or a sound form
                if not latin and literal is None:
                    literal = {}
                    for hit in hits:
                        literal.setdefault(id(hit.entry), []).append((hit.start, hit.end))
                    for spans in literal.values():
                        spans.sort()
                for entry, _, _, _ in entries:
                    # A text spelled as the keyword also sounds like it: one hit, not two.
                    if latin or not _within(literal.get(id(entry)), start, stop):  # type: ignore[union-attr]
                        hits.append(Hit(entry, start, stop))
            seen += looked
            if seen >= MAX_HITS:
                return hits, True
        if self._set is not None:
            for index in self._set.Match(regex_view.text) or ():
                entry, pattern = self._regexes[index]
                for match in pattern.finditer(regex_view.text):
                    if match.end() > match.start():
                        start, stop = regex_view.original_span(match.start(), match.end())
                        hits.append(Hit(entry, start, stop))
                        if len(hits) >= MAX_HITS:
                            return hits, True
        return hits, False


def scan_layers(layers: Sequence["RuleSet"], text: str) -> Scan:
    """One text against several rule sets at once (a scene's lists over the global ones): their hits are
    pooled, so an allow entry of any layer covers a hit of any other, and block wins over everything."""
    hits: List[Hit] = []
    truncated = False
    for layer in layers:
        found, cut = layer._hits(text)
        hits.extend(found)
        truncated = truncated or cut
    allows = [h for h in hits if h.entry.list == "allow"]
    live = [h for h in hits if h.entry.list != "allow" and not _covered(h, allows)]
    if not live:
        return Scan("pass", text, truncated=truncated)
    live.sort(key=lambda h: (h.start, -h.end))
    lists = {h.entry.list for h in live}
    if "block" in lists:
        return Scan("block", text, tuple(live))
    replaced = [h for h in live if h.entry.list == "replace"]
    masked = _mask(text, replaced) if replaced else text
    return Scan("review" if "review" in lists else "replace", masked, tuple(live), truncated)


def _within(spans: Optional[List[Tuple[int, int]]], start: int, stop: int) -> bool:
    """Does one of ``spans`` (sorted, one entry's hits: a later start never has an earlier end)
    cover [start, stop)?"""
    if not spans:
        return False
    index = bisect_right(spans, (start, float("inf"))) - 1  # the last one starting at or before start
    return index >= 0 and spans[index][1] >= stop


def _covered(hit: Hit, allows: Iterable[Hit]) -> bool:
    return any(a.start <= hit.start and hit.end <= a.end for a in allows)


def _automaton(words: Mapping[str, List[_Word]]) -> Optional[Any]:
    if not words:
        return None
    automaton = ahocorasick.Automaton()
    for key, entries in words.items():
        automaton.add_word(key, (len(key), tuple(entries)))
    automaton.make_automaton()
    return automaton


def _bounded(text: str, start: int, stop: int, lead: bool, tail: bool, normalizer: Normalizer) -> bool:
    """A Latin end of a keyword must not touch a Latin letter or digit (``ass`` in ``class``)."""
    if lead and start > 0 and _is_word_char(normalizer.fold(text[start - 1])):
        return False
    return not (tail and stop < len(text) and _is_word_char(normalizer.fold(text[stop])))


def _keyword(entry: Entry) -> str:
    """What the automaton looks for: the keyword without its wildcards."""
    return entry.rule.strip().strip("*") if entry.wild_start or entry.wild_end else entry.rule


def _whole_word(text: str, start: int, stop: int, entry: Entry, normalizer: Normalizer) -> Tuple[int, int]:
    """A wildcard keyword's hit, run on over the rest of the word at its wildcard end(s)."""
    if entry.wild_start:
        while start > 0 and _is_word_char(normalizer.fold(text[start - 1])):
            start -= 1
    if entry.wild_end:
        while stop < len(text) and _is_word_char(normalizer.fold(text[stop])):
            stop += 1
    return start, stop


def _wildcard(where: str, item: str) -> Tuple[str, bool, bool]:
    """``fuck*`` → (fuck, False, True): the keyword without its wildcards, and which ends had one.
    Latin only (Chinese has no word ends to run on to), and never a wildcard inside."""
    written = item.strip()
    wild_start, wild_end = written.startswith("*"), written.endswith("*")
    core = written.strip("*")
    if not (wild_start or wild_end):
        if "*" in written:
            raise RulesError(f"{where}: a wildcard (*) goes at the start or the end of a keyword: {item!r}")
        return item, False, False
    if len(core) < 2 or "*" in core or not all(_latin(ch) for ch in core):
        raise RulesError(f"{where}: wildcard keywords are Latin letters and digits with * at one or both ends, "
                         f"at least two before it (fuck*, *hole): {item!r}")
    return core, wild_start, wild_end


def _latin(ch: str) -> bool:
    """Latin as written: an ASCII letter or digit once width and styling are folded (NFKC), but not
    a CJK numeral, which only digit folding would make a digit."""
    folded = unicodedata.normalize("NFKC", ch)
    return len(folded) == 1 and _is_word_char(folded)


def _mask(text: str, hits: List[Hit]) -> str:
    pieces, position = [], 0
    for hit in hits:  # sorted by start; overlapping spans are merged into the first
        if hit.end <= position:
            continue
        start = max(hit.start, position)
        pieces.append(text[position:start])
        pieces.append(hit.entry.mask if hit.entry.mask is not None else "*" * (hit.end - start))
        position = hit.end
    pieces.append(text[position:])
    return "".join(pieces)


def _regex_set(regexes: List[Tuple[Entry, Any]], ignore_case: bool) -> Optional[Any]:
    """One RE2 set over all the regexes: which of them match is one pass over the text."""
    if not regexes:
        return None
    regex_set = re2.Set.SearchSet(_options())
    for entry, _ in regexes:
        regex_set.Add(_pattern(entry, ignore_case))
    regex_set.Compile()
    return regex_set


def _options():
    options = re2.Options()
    options.log_errors = False  # RE2 would print every bad pattern to stderr; RulesError says it once
    return options


def _pattern(entry: Entry, ignore_case: bool) -> str:
    return ("(?i)" if ignore_case else "") + entry.rule


def _compile_regex(entry: Entry, ignore_case: bool, where: str = ""):
    try:
        return re2.compile(_pattern(entry, ignore_case), options=_options())
    except re2.error as exc:
        raise RulesError(f"{where or entry.list}: regex {entry.rule!r} is not valid RE2: {_re2_message(exc)}") from None


def _re2_message(exc: Exception) -> str:
    message = exc.args[0] if exc.args else exc
    return message.decode("utf-8", "replace") if isinstance(message, bytes) else str(message)


# -- loading -----------------------------------------------------------------------


def parse(data: Any, version: str = "") -> RuleSet:
    """A RuleSet from the rules file's structure; RulesError names what is wrong."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise RulesError("the rules file must be a mapping with block, replace and allow lists")
    unknown = set(data) - set(LISTS) - {"normalize", "pinyin"}
    if unknown:
        raise RulesError(f"unknown top-level key(s): {', '.join(sorted(map(str, unknown)))}")
    try:
        switches = switches_from(data.get("normalize") or {})
    except ValueError as exc:
        raise RulesError(str(exc)) from None
    pinyin = data.get("pinyin", False)
    if not isinstance(pinyin, bool):
        raise RulesError("pinyin must be true or false")
    normalizer = Normalizer(switches)
    entries: List[Entry] = []
    for list_name in LISTS:
        items = data.get(list_name) or []
        if not isinstance(items, list):
            raise RulesError(f"{list_name} must be a list")
        for position, item in enumerate(items, 1):
            entries.append(_entry(list_name, position, item, normalizer, pinyin))
    if len(entries) > MAX_ENTRIES:
        raise RulesError(f"{len(entries)} entries: at most {MAX_ENTRIES} are allowed")
    regexes = sum(e.is_regex for e in entries)
    if regexes > MAX_REGEXES:
        raise RulesError(f"{regexes} regexes: at most {MAX_REGEXES} are allowed")
    return RuleSet(normalizer, entries, version)


def _entry(list_name: str, position: int, item: Any, normalizer: Normalizer, pinyin: bool = False) -> Entry:
    """One list item as an Entry. ``pinyin`` is the file's top-level switch: it applies to the Chinese
    keywords of block and replace (others are left alone); an entry's own ``pinyin`` overrides it."""
    where = f"{list_name}[{position}]"
    if isinstance(item, (int, float)) and not isinstance(item, bool):
        item = str(item)  # YAML reads 110 as a number; it is still a keyword
    if isinstance(item, str):
        keyword, wild_start, wild_end = _wildcard(where, item)
        if not normalizer.plain(keyword):
            raise RulesError(f"{where}: keyword {item!r} is empty once normalized")
        written = keyword.strip()
        on = pinyin and list_name != "allow" and not (wild_start or wild_end) and not _not_chinese(keyword)
        return Entry(list_name, item, bounded_start=_latin(written[0]) and not wild_start,
                     bounded_end=_latin(written[-1]) and not wild_end, pinyin=on, wild_start=wild_start,
                     wild_end=wild_end)
    if isinstance(item, Mapping) and isinstance(item.get("regex"), str):
        extra = set(item) - {"regex", "mask"}
        if extra or ("mask" in item and list_name != "replace"):
            raise RulesError(f"{where}: unexpected key(s) {', '.join(sorted(map(str, extra or {'mask'})))}")
        mask = item.get("mask")
        if mask is not None and not isinstance(mask, str):
            raise RulesError(f"{where}: mask must be a string")
        if not item["regex"]:
            raise RulesError(f"{where}: empty regex")
        entry = Entry(list_name, item["regex"], is_regex=True, mask=mask)
        _compile_regex(entry, normalizer.switches.ignore_case, where)
        return entry
    if isinstance(item, Mapping) and isinstance(item.get("keyword"), str) and list_name != "allow":
        keys = {"keyword", "pinyin"} | ({"mask"} if list_name == "replace" else set())
        mask, on = item.get("mask"), item.get("pinyin", pinyin)
        if set(item) - keys or (mask is not None and not isinstance(mask, str)) or not isinstance(on, bool):
            raise RulesError(f"{where}: expected {{keyword: ...{', mask: ...' if 'mask' in keys else ''}, pinyin: true}}")
        base = _entry(list_name, position, item["keyword"], normalizer)
        problem = _not_chinese(base.rule) if on else ""
        if problem and "pinyin" in item:
            raise RulesError(f"{where}: pinyin: true needs a Chinese keyword: {problem}")
        return Entry(list_name, base.rule, mask=mask, bounded_start=base.bounded_start, bounded_end=base.bounded_end,
                     pinyin=on and not problem, wild_start=base.wild_start, wild_end=base.wild_end)
    raise RulesError(f"{where}: expected a keyword string or {{regex: PATTERN}}, got {item!r}")


def _not_chinese(keyword: str) -> str:
    """Why ``keyword`` cannot have pinyin ("" if it can): each letter and digit it is written with
    must be a character pypinyin has a reading for."""
    from imguard.rules import pinyin

    found, missing = pinyin.syllables(keyword)
    if missing:
        return f"{missing!r} in {keyword!r} has no pinyin"
    return "" if found else f"{keyword!r} has no Chinese character"


def loads(text: str, version: str = "") -> RuleSet:
    """The lists of a rules file; the whole file (scenes, flood, sanctions) is imguard.rules.book's."""
    return parse(read_yaml(text), version)


def no_rules() -> RuleSet:
    return RuleSet(Normalizer(Switches()), [], "none")
