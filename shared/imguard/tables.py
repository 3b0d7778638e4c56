"""Plain-text tables for the command line, aligned for CJK text (two columns per wide character)."""
from __future__ import annotations

import unicodedata
from typing import Any, Iterable, Optional, Sequence


def width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def cell(value: Any, size: int) -> str:
    """``value`` padded (or cut, with an ellipsis) to ``size`` terminal columns."""
    text = "" if value is None else str(value)
    if width(text) > size:
        while text and width(text) > size - 1:
            text = text[:-1]
        text += "…"
    return text + " " * (size - width(text))


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], widths: Optional[Sequence[int]] = None,
          most: int = 72) -> str:
    """Columns of ``widths``, or each as wide as its widest value (at most ``most``)."""
    rows = [list(row) for row in rows]
    if widths is None:
        widths = [min(most, max(width(str(v if v is not None else "")) for v in column))
                  for column in zip(headers, *rows)]
    lines = ["  ".join(cell(h, w) for h, w in zip(headers, widths)).rstrip()]
    lines += ["  ".join(cell(v, w) for v, w in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(lines)
