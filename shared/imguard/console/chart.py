"""Decisions per hour by action, drawn as stacked bars in SVG on the server: no script library to ship,
and a page that shows its data even with scripts off. Each bar carries its numbers (data-*, <title>)."""
from __future__ import annotations

from typing import Dict, List, Sequence
from xml.sax.saxutils import escape

from markupsafe import Markup

# Worst at the bottom, where the eye starts; colours that read on white and in grey.
ORDER = ("block", "rewrite", "withdrawn", "muted", "allow")
COLOURS = {"block": "#c0392b", "rewrite": "#e67e22", "withdrawn": "#8e44ad", "muted": "#2c3e50", "allow": "#95a5a6"}
OTHER = "#3498db"
WIDTH, HEIGHT, LEFT, BOTTOM = 720, 220, 36, 24


def ordered(actions: Sequence[str]) -> List[str]:
    return sorted(actions, key=lambda action: (ORDER.index(action) if action in ORDER else len(ORDER), action))


def colour(action: str) -> str:
    return COLOURS.get(action, OTHER)


def stacked_bars(hours: Sequence, by_action: Dict[str, List[int]], label_every: int) -> Markup:
    totals = [sum(counts[i] for counts in by_action.values()) for i in range(len(hours))]
    top = max(totals + [1])
    step = (WIDTH - LEFT) / max(len(hours), 1)
    scale = (HEIGHT - BOTTOM - 8) / top
    parts = [f'<svg class="chart" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" data-max="{top}">',
             f'<text x="{LEFT - 4}" y="14" text-anchor="end" class="axis">{top}</text>',
             f'<line x1="{LEFT}" y1="{HEIGHT - BOTTOM}" x2="{WIDTH}" y2="{HEIGHT - BOTTOM}" class="axis"/>']
    for i, start in enumerate(hours):
        x, y = LEFT + i * step, HEIGHT - BOTTOM
        for action in ordered(list(by_action)):
            count = by_action[action][i]
            if not count:
                continue
            height = count * scale
            y -= height
            when = start.strftime("%m-%d %H:00")
            parts.append(f'<rect class="bar" x="{x + 1:.1f}" y="{y:.1f}" width="{max(step - 2, 1):.1f}" '
                         f'height="{height:.1f}" fill="{colour(action)}" data-action="{escape(action)}" '
                         f'data-count="{count}" data-hour="{when}"><title>{when} {escape(action)}: {count}</title></rect>')
        if i % label_every == 0:
            parts.append(f'<text x="{x + step / 2:.1f}" y="{HEIGHT - 6}" text-anchor="middle" class="axis">'
                         f'{start.strftime("%H:00" if label_every < 24 else "%m-%d")}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
