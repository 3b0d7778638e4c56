"""Reading CI's answers: its XML, parsed here rather than by the SDK, and its verdicts, wherever they sit.

Why not the SDK's parsing. cos-python-sdk-v5 1.9.44 post-processes every answer (``xml_to_dict``, then
``format_dict`` on the scene nodes it knows) and crashes on answers CI documents: an empty scene node
(``<PornInfo></PornInfo>``, as in cos-go-sdk-v5's job fixture) becomes ``None`` and
``'OcrResults' in data['PornInfo']`` raises ``TypeError``. So ci.py keeps the SDK for what it does well
(signing, transport, retries, error statuses) and hands the raw body to :func:`parse_answer`.

Why ElementTree without defusedxml. These bodies come from CI, over a request we signed, to the
endpoint we configured; they are not user input. Still, an XML body may declare a DTD, and entity
expansion is the one way a small body becomes a large one. CI never sends one, so the body is decoded
as UTF-8 (CI's encoding; a str given to ElementTree ignores any ``encoding=`` declaration, so no other
encoding can hide the markup) and refused outright if it holds ``<!DOCTYPE`` or ``<!ENTITY``, before
the parser sees it.

Where CI puts a verdict varies by kind and by document version (cos-ci-moderation.md §4, §8 and
tests/events/ci/): a top-level ``Result``/``Label``/``SubLabel``/``Score``, or none of them (the older
image shape, audio jobs and callbacks); scene nodes (``PornInfo``, ``AdsInfo``, ...) at the top level and
in ``Section`` / ``Snapshot`` / ``AudioSection`` parts, empty or filled; keywords as a comma-separated
string, a repeated element, a JSON list, or inside ``OcrResults`` / ``LibResults``. :func:`read_result`
reads one result node, from XML (via :func:`parse_answer`) or from a JSON callback, the same way.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple

MAX_DEPTH = 32  # CI's answers nest five or six levels; anything deeper is not one of them

# Per-part results: text and audio sections, video snapshots and the video's sound track.
PARTS = ("Section", "Snapshot", "AudioSection")
# Nodes whose names end in "Info" but that carry no scene result: echoed business fields, account lists.
NOT_SCENES = frozenset({"UserInfo", "ListInfo"})
SCENE_NAMES = {"Terrorist": "Terrorism"}  # the SDK's name for CI's Terrorism scene
OK_CODES = ("", "0", "Success")
HIT_RANK = {1: 2, 2: 1, 0: 0}  # a violation outranks a suspicion, which outranks nothing


class CiAnswerError(ValueError):
    """CI's answer could not be read; the message is safe to log."""


def as_list(value: Any) -> List[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def as_int(value: Any) -> Optional[int]:
    if isinstance(value, bool):
        return None
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def text_of(value: Any) -> str:
    """A leaf as text: XML gives strings, JSON callbacks numbers; a node or a list is no leaf."""
    if value is None or isinstance(value, (dict, list)):
        return ""
    return str(value).strip()


# -- XML -----------------------------------------------------------------------------------


def parse_answer(body: bytes) -> Tuple[str, Dict[str, Any]]:
    """CI's XML body as (root tag, node): children by tag, a repeated tag as a list, a leaf as its
    stripped text ("" when empty, an empty scene node included), never the SDK's ``None``."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise CiAnswerError("not UTF-8") from None
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        raise CiAnswerError("document type declarations are refused")
    try:
        root = ET.fromstring(text)
    except ET.ParseError:
        raise CiAnswerError("not XML") from None
    node = _node(root, 0)
    return _local(root.tag), node if isinstance(node, dict) else {}


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _node(element: ET.Element, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise CiAnswerError("nested too deep")
    if len(element) == 0:
        return (element.text or "").strip()
    node: Dict[str, Any] = {}
    for child in element:
        tag, value = _local(child.tag), _node(child, depth + 1)
        if tag not in node:
            node[tag] = value
        elif isinstance(node[tag], list):
            node[tag].append(value)
        else:
            node[tag] = [node[tag], value]
    return node


# -- verdicts ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reading:
    """What one result node says. ``result`` is None exactly when ``problem`` says why."""

    result: Optional[int]  # 0 normal, 1 violation, 2 suspicious
    label: str = ""
    sub_label: str = ""
    score: Optional[int] = None
    keywords: Tuple[str, ...] = ()
    problem: str = ""


@dataclass(frozen=True)
class _Scene:
    name: str  # Porn, Ads, Politics, ... (from PornInfo, AdsInfo, PoliticsInfo, ...)
    hit: Optional[int]  # HitFlag: 0 none, 1 hit, 2 suspected; None when CI left it out or empty
    score: Optional[int]
    sub_label: str
    category: str
    keywords: Tuple[str, ...]
    code: str  # an image scene's own error code ("0" when it worked)


def _scene_nodes(node: Mapping[str, Any]) -> Iterator[Tuple[str, Any]]:
    """(name, value) of the scene nodes of ``node``, empty ones included."""
    for key, value in node.items():
        if isinstance(key, str) and key.endswith("Info") and len(key) > 4 and key not in NOT_SCENES:
            for item in as_list(value):
                yield key, item


def _keywords(value: Any) -> List[str]:
    words: List[str] = []
    for item in as_list(value):
        if isinstance(item, str):
            words.extend(word.strip() for word in item.split(",") if word.strip())
    return words


def _read_scene(key: str, info: Any, label_is_keyword: bool) -> Optional[_Scene]:
    if not isinstance(info, Mapping):  # <PornInfo></PornInfo>, or a JSON null: nothing was found there
        return None
    words = _keywords(info.get("Keywords"))
    for nested in ("OcrResults", "LibResults"):
        for item in as_list(info.get(nested)):
            if isinstance(item, Mapping):
                words.extend(_keywords(item.get("Keywords")))
    # An audio scene's Label is "the keyword hit" (audio callback doc); an image scene's is a composite tag
    # that may be a person's name (image doc). Only the former is evidence, and it is user content.
    if label_is_keyword:
        words.extend(_keywords(info.get("Label")))
    name = key[: -len("Info")]
    return _Scene(name=SCENE_NAMES.get(name, name), hit=as_int(info.get("HitFlag")), score=as_int(info.get("Score")),
                  sub_label=text_of(info.get("SubLabel")), category=text_of(info.get("Category")),
                  keywords=tuple(words), code=text_of(info.get("Code")))


def _parts(node: Mapping[str, Any]) -> List[Mapping[str, Any]]:
    return [part for name in PARTS for part in as_list(node.get(name)) if isinstance(part, Mapping)]


def _all_scenes(node: Mapping[str, Any], label_is_keyword: bool) -> List[_Scene]:
    """The scenes of the node itself and of each of its parts, in the order CI gives them."""
    found = (_read_scene(key, info, label_is_keyword) for level in [node, *_parts(node)]
             for key, info in _scene_nodes(level))
    return [scene for scene in found if scene is not None]


def _worst(results: List[int]) -> Optional[int]:
    return max(results, key=lambda r: HIT_RANK[r]) if results else None


def read_result(node: Mapping[str, Any], label_is_keyword: bool = False) -> Reading:
    """The verdict in one result node (an image's RecognitionResult, a text or media JobsDetail).

    The outcome is CI's top-level Result when there is one; without it (the older image shape, some audio
    answers) it is the worst of the parts' Results and the scenes' HitFlags, and with none of those the
    answer holds no verdict. The label, sub-label and score are the top-level ones when CI gives them, else
    those of the highest-scoring hit among the scene nodes at every level; keywords are gathered from every
    hit, wherever CI put them.
    """
    state, code = text_of(node.get("State")), text_of(node.get("Code"))
    found = _all_scenes(node, label_is_keyword)
    hits = [s for s in found if s.hit in (1, 2)]
    top_result = text_of(node.get("Result"))
    if state == "Failed" or (code not in OK_CODES and not top_result):
        message = text_of(node.get("Message"))[:120]
        return Reading(None, problem=f"CI job failed: {code or state}" + (f" ({message})" if message else ""))
    if top_result:
        result = as_int(top_result)
        if result not in HIT_RANK:
            return Reading(None, problem=f"unexpected Result {top_result[:20]!r}")
    else:
        evidence = [r for r in (as_int(p.get("Result")) for p in _parts(node)) if r in HIT_RANK]
        evidence += [s.hit for s in found if s.hit in HIT_RANK]
        result = _worst(evidence)
        failed_scenes = [s for s in found if s.code not in OK_CODES]
        if failed_scenes and not hits:
            return Reading(None, problem=f"CI scene failed: {failed_scenes[0].name} code {failed_scenes[0].code[:20]}")
        if result is None:
            return Reading(None, problem="no Result and no scene results in the answer")

    best = max(hits, key=lambda s: (s.score if s.score is not None else -1, s.hit == 1), default=None)
    label = text_of(node.get("Label"))
    if not label or (label == "Normal" and result != 0):
        label = best.name if best else _part_label(node) or label
    sub_label = next((v for v in (text_of(node.get("SubLabel")), best.sub_label if best else "",
                                  text_of(node.get("Category")), best.category if best else "") if v), "")
    score = as_int(node.get("Score"))
    if score is None and best is not None:
        score = best.score
    keywords = tuple(dict.fromkeys(word for s in hits for word in s.keywords))
    return Reading(result, label=label, sub_label=sub_label, score=score, keywords=keywords)


def _part_label(node: Mapping[str, Any]) -> str:
    """The label of the worst violating part, when neither the top level nor any scene names one."""
    flagged = [(as_int(p.get("Result")), text_of(p.get("Label"))) for p in _parts(node)]
    flagged = [(r, label) for r, label in flagged if r in (1, 2) and label and label != "Normal"]
    return max(flagged, key=lambda item: HIT_RANK[item[0]])[1] if flagged else ""
