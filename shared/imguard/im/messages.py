"""What a message body contains that moderation cares about (im-callback-protocol.md §4).

``extract`` walks ``MsgBody`` once and returns the texts (with where each one
lives, so a rewrite can put masked text back), the image URLs to judge now and
the audio/video/file URLs to hand to asynchronous review.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from imguard.im.callbacks import text

# Merged-forward messages may nest; IM bounds them, we bound them harder.
MAX_RELAY_DEPTH = 8
# A message has at most a handful of elements; more is an attack on our time budget.
MAX_ELEMENTS = 1000

PathKey = Union[int, str]
Path = Tuple[PathKey, ...]

# Large image first: it is what the receiver sees; the original may be huge, the thumbnail too small.
_IMAGE_PREFERENCE = (2, 1, 3)


@dataclass(frozen=True)
class TextPiece:
    path: Path  # where in MsgBody the text lives
    text: str


@dataclass(frozen=True)
class Media:
    kind: str  # "sound", "video" or "file"
    url: str
    name: str = ""  # a file's FileName


@dataclass
class MessageContent:
    texts: List[TextPiece] = field(default_factory=list)
    images: List[str] = field(default_factory=list)
    media: List[Media] = field(default_factory=list)
    types: List[str] = field(default_factory=list)  # every MsgType seen, relays included
    truncated: bool = False  # elements past MAX_ELEMENTS or MAX_RELAY_DEPTH were not read

    def joined_text(self) -> str:
        return "\n".join(piece.text for piece in self.texts)


def extract(msg_body: Sequence[Mapping[str, Any]]) -> MessageContent:
    content = MessageContent()
    _walk(msg_body, (), 0, content)
    content.images = list(dict.fromkeys(content.images))
    return content


def _walk(elements: Iterable[Any], path: Path, depth: int, out: MessageContent) -> None:
    for index, element in enumerate(elements):
        if not isinstance(element, Mapping):
            continue
        if len(out.types) >= MAX_ELEMENTS:
            out.truncated = True
            return
        msg_type = text(element.get("MsgType"))
        body = element.get("MsgContent")
        out.types.append(msg_type or "?")
        if not isinstance(body, Mapping):
            continue
        here = path + (index, "MsgContent")
        reader = _READERS.get(msg_type)
        if reader is not None:
            reader(body, here, depth, out)


def _add_texts(body: Mapping[str, Any], here: Path, keys: Tuple[str, ...], out: MessageContent) -> None:
    for key in keys:
        value = body.get(key)
        if isinstance(value, str) and value.strip():
            out.texts.append(TextPiece(here + (key,), value))


def _read_text(body, here, depth, out):
    _add_texts(body, here, ("Text",), out)


def _read_custom(body, here, depth, out):
    _add_texts(body, here, ("Data", "Desc", "Ext"), out)


def _read_location(body, here, depth, out):
    _add_texts(body, here, ("Desc",), out)


def _read_image(body, here, depth, out):
    url = best_image_url(body.get("ImageInfoArray"))
    if url:
        out.images.append(url)


def _read_sound(body, here, depth, out):
    url = text(body.get("Url"))
    if url:
        out.media.append(Media("sound", url))


def _read_video(body, here, depth, out):
    cover = text(body.get("ThumbUrl"))
    if cover:
        out.images.append(cover)
    url = text(body.get("VideoUrl"))
    if url:
        out.media.append(Media("video", url))


def _read_file(body, here, depth, out):
    url = text(body.get("Url"))
    if url:
        out.media.append(Media("file", url, text(body.get("FileName"))))


def _read_relay(body, here, depth, out):
    if depth >= MAX_RELAY_DEPTH:
        out.truncated = True
        return
    _add_texts(body, here, ("Title",), out)
    abstracts = body.get("AbstractList")
    if isinstance(abstracts, list):
        for i, line in enumerate(abstracts):
            if isinstance(line, str) and line.strip():
                out.texts.append(TextPiece(here + ("AbstractList", i), line))
    messages = body.get("MsgList")
    if isinstance(messages, list):
        for i, message in enumerate(messages):
            if isinstance(message, Mapping) and isinstance(message.get("MsgBody"), list):
                _walk(message["MsgBody"], here + ("MsgList", i, "MsgBody"), depth + 1, out)


_READERS = {
    "TIMTextElem": _read_text,
    "TIMCustomElem": _read_custom,
    "TIMLocationElem": _read_location,
    "TIMImageElem": _read_image,
    "TIMSoundElem": _read_sound,
    "TIMVideoFileElem": _read_video,
    "TIMFileElem": _read_file,
    "TIMRelayElem": _read_relay,
}


def best_image_url(infos: Any) -> Optional[str]:
    if not isinstance(infos, list):
        return None
    by_type = {}
    for info in infos:
        if isinstance(info, Mapping) and text(info.get("URL")):
            by_type.setdefault(info.get("Type"), text(info["URL"]))
    for image_type in _IMAGE_PREFERENCE:
        if image_type in by_type:
            return by_type[image_type]
    return next(iter(by_type.values()), None)


def rewritten(msg_body: Sequence[Mapping[str, Any]], replacements: Mapping[Path, str]) -> List[Any]:
    """A copy of ``msg_body`` with the texts at ``replacements``' paths replaced."""
    body = copy.deepcopy(list(msg_body))
    for path, new_text in replacements.items():
        node: Any = body
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = new_text
    return body
