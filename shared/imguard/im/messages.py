"""What a message body contains that moderation cares about (im-callback-protocol.md §4).

``extract`` walks ``MsgBody`` once and returns the texts (with where each one
lives, so a rewrite can put masked text back), the image URLs to judge now and
the audio/video/file URLs to hand to asynchronous review.

The sender shapes the body: merged-forwards nest, and elements can be padded.
So the walk is iterative and reads everything, however deep or long (its cost
is bounded by the body's size), and nothing here recurses on the body's depth.
What cannot all be judged (too many images for CI, say) is for the moderator's
caps to decide, in the open, not for the walk to drop silently.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

from imguard.im.callbacks import text

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
    types: List[str] = field(default_factory=list)  # each MsgType seen once, relays included, in order

    def joined_text(self) -> str:
        return "\n".join(piece.text for piece in self.texts)


Elements = Iterator[Tuple[Path, Mapping[str, Any]]]


def extract(msg_body: Sequence[Mapping[str, Any]]) -> MessageContent:
    content = MessageContent()
    seen_types: Dict[str, None] = {}
    # A stack of element iterators instead of recursion: a relay pushes its messages' elements.
    stack: List[Elements] = [_elements(msg_body, ())]
    while stack:
        item = next(stack[-1], None)
        if item is None:
            stack.pop()
            continue
        here, element = item
        msg_type = text(element.get("MsgType"))
        seen_types.setdefault(msg_type or "?")
        body = element.get("MsgContent")
        reader = _READERS.get(msg_type)
        if reader is not None and isinstance(body, Mapping):
            nested = reader(body, here + ("MsgContent",), content)
            if nested is not None:
                stack.append(nested)
    content.types = list(seen_types)
    content.images = list(dict.fromkeys(content.images))
    return content


def _elements(elements: Iterable[Any], path: Path) -> Elements:
    for index, element in enumerate(elements):
        if isinstance(element, Mapping):
            yield path + (index,), element


def _add_texts(body: Mapping[str, Any], here: Path, keys: Tuple[str, ...], out: MessageContent) -> None:
    for key in keys:
        value = body.get(key)
        if isinstance(value, str) and value.strip():
            out.texts.append(TextPiece(here + (key,), value))


Reader = Callable[[Mapping[str, Any], Path, MessageContent], Optional[Elements]]


def _read_text(body, here, out):
    _add_texts(body, here, ("Text",), out)


def _read_custom(body, here, out):
    _add_texts(body, here, ("Data", "Desc", "Ext"), out)


def _read_location(body, here, out):
    _add_texts(body, here, ("Desc",), out)


def _read_image(body, here, out):
    url = best_image_url(body.get("ImageInfoArray"))
    if url:
        out.images.append(url)


def _read_sound(body, here, out):
    url = text(body.get("Url"))
    if url:
        out.media.append(Media("sound", url))


def _read_video(body, here, out):
    cover = text(body.get("ThumbUrl"))
    if cover:
        out.images.append(cover)
    url = text(body.get("VideoUrl"))
    if url:
        out.media.append(Media("video", url))


def _read_file(body, here, out):
    _add_texts(body, here, ("FileName",), out)  # the receiver sees the name before opening anything
    url = text(body.get("Url"))
    if url:
        out.media.append(Media("file", url, text(body.get("FileName"))))


def _read_face(body, here, out):
    _add_texts(body, here, ("Data",), out)  # free text the app attaches to the face (emoji) index


def _read_relay(body, here, out) -> Elements:
    # CompatibleText is what clients too old for merged-forwards show instead of the relay.
    _add_texts(body, here, ("Title", "CompatibleText"), out)
    abstracts = body.get("AbstractList")
    if isinstance(abstracts, list):
        for i, line in enumerate(abstracts):
            if isinstance(line, str) and line.strip():
                out.texts.append(TextPiece(here + ("AbstractList", i), line))
    return _relayed(body.get("MsgList"), here)


def _relayed(messages: Any, here: Path) -> Elements:
    """The elements of every forwarded message, in order."""
    if not isinstance(messages, list):
        return
    for i, message in enumerate(messages):
        if isinstance(message, Mapping) and isinstance(message.get("MsgBody"), list):
            yield from _elements(message["MsgBody"], here + ("MsgList", i, "MsgBody"))


_READERS: Dict[str, Reader] = {
    "TIMTextElem": _read_text,
    "TIMCustomElem": _read_custom,
    "TIMLocationElem": _read_location,
    "TIMImageElem": _read_image,
    "TIMSoundElem": _read_sound,
    "TIMVideoFileElem": _read_video,
    "TIMFileElem": _read_file,
    "TIMFaceElem": _read_face,
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
    """``msg_body`` with the texts at ``replacements``' paths replaced. Only the containers on
    those paths are copied (one level at a time, never recursively), so the original is
    untouched and a body nested however deep costs no more than its paths."""
    body: List[Any] = list(msg_body)
    copies = {id(body)}  # containers that are ours to change
    for path, new_text in replacements.items():
        node: Any = body
        for key in path[:-1]:
            child = node[key]
            if id(child) not in copies:
                child = list(child) if isinstance(child, list) else dict(child)
                node[key] = child
                copies.add(id(child))
            node = child
        node[path[-1]] = new_text
    return body
