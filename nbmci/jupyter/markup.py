"""Tables rendered two ways, HTML for notebooks and fixed-width text for logs, plus a chart.

Every value that reaches HTML is escaped here: model names, messages, parameters and metric
names come from users and teammates, so they are text, never markup (RELIABILITY SE-10).
"""

from __future__ import annotations

import datetime as dt
import html
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

# Row marks, as in a diff: the symbol starts the text line, the colour tints the HTML row.
MARKS: dict[str, tuple[str, str]] = {
    "": (" ", ""),
    "same": (" ", ""),
    "changed": ("~", "background:rgba(255,193,7,.18)"),
    "added": ("+", "background:rgba(40,167,69,.15)"),
    "removed": ("-", "background:rgba(220,53,69,.15)"),
}
_CELL = "padding:2px 10px 2px 0;text-align:left;vertical-align:top"
FONT = "font-family:var(--jp-ui-font-family,system-ui,sans-serif);font-size:13px"
TEXT_LIMIT = 80


class Html(str):
    """Markup built by this module; any other string is escaped when it is joined in."""


def escape(value: object) -> Html:
    return value if isinstance(value, Html) else Html(html.escape(str(value), quote=True))


class Cell(str):
    """A table cell with markup of its own: the string is what the text view shows, ``html``
    what the HTML view shows (a coloured badge, lines)."""

    html: Html

    def __new__(cls, text: str, html: Html) -> Cell:
        cell = super().__new__(cls, text)
        cell.html = html
        return cell


# CI status -> badge colour; anything else (no CI result yet) is grey
BADGES = {"passed": "#1a7f37", "failed": "#cf222e", "error": "#bc4c00"}
_BADGE = ("display:inline-block;padding:0 7px;border-radius:9px;color:#fff;font-size:12px;"
          "line-height:18px;background:{}")


def badge(status: str) -> Cell:
    """``status`` as a coloured badge in HTML and as the word itself in text."""
    return Cell(status, tag("span", status, style=_BADGE.format(BADGES.get(status, "#6e7781"))))


def lines(items: Sequence[str]) -> Cell:
    """Items one per line in HTML, joined by "; " in text."""
    return Cell("; ".join(items), Html("<br>".join(escape(i) for i in items)))


def tag(name: str, *children: object, style: str = "") -> Html:
    """``<name style=...>children</name>`` with every child that is not ``Html`` escaped."""
    attrs = f' style="{html.escape(style, quote=True)}"' if style else ""
    return Html(f"<{name}{attrs}>{''.join(escape(c) for c in children)}</{name}>")


@dataclass(frozen=True)
class Table:
    """A titled table; ``marks[i]`` (same/changed/added/removed) highlights row ``i``.

    An empty ``header`` makes a two-column list of facts (label, value) without a header row.
    """

    title: str
    header: Sequence[str]
    rows: Sequence[Sequence[str]]
    marks: Sequence[str] = field(default_factory=tuple)
    empty: str = "nothing to show"
    note: str = ""

    def mark(self, index: int) -> str:
        return self.marks[index] if index < len(self.marks) else ""


def to_html(heading: str, tables: Sequence[Table], extra: Html | None = None) -> Html:
    """The whole view as one HTML fragment: a heading, the tables, then ``extra``."""
    parts = [tag("div", tag("strong", heading), style="font-size:14px;margin-bottom:4px")]
    parts.extend(table_html(t) for t in tables)
    return tag("div", *parts, extra or "", style=FONT)


def table_html(table: Table) -> Html:
    """One table with its title (and its note, if any)."""
    title = tag("div", table.title, style="font-weight:600;margin:8px 0 2px")
    if not table.rows:
        return Html(title + tag("div", table.empty, style="opacity:.7"))
    marked = any(table.mark(i) not in ("", "same") for i in range(len(table.rows)))
    head = tag("thead", tag("tr", *(tag("th", h, style=_CELL) for h in _with_mark_column(
        table.header, marked, "")))) if table.header else ""
    body = [
        tag("tr", *(tag("td", _html(c), style=_CELL) for c in _with_mark_column(
            row, marked, MARKS[table.mark(i)][0])), style=MARKS[table.mark(i)][1])
        for i, row in enumerate(table.rows)
    ]
    note = tag("div", table.note, style="opacity:.7") if table.note else ""
    return Html(title + tag("table", head, tag("tbody", *body),
                            style="border-collapse:collapse") + note)


def _html(cell: str) -> str:
    return cell.html if isinstance(cell, Cell) else cell


def _with_mark_column(cells: Sequence[str], marked: bool, symbol: str) -> list[str]:
    return [symbol.strip(), *cells] if marked else list(cells)


def to_text(heading: str, tables: Sequence[Table]) -> str:
    """The same view as fixed-width text, for papermill logs, CI output and terminals."""
    lines = [heading]
    for table in tables:
        lines += ["", f"{table.title}:", *_text_lines(table)]
    return "\n".join(lines)


def _text_lines(table: Table) -> list[str]:
    if not table.rows:
        return [f"  {table.empty}"]
    head = [table.header] if table.header else []
    cells = [[_clip(c) for c in row] for row in [*head, *table.rows]]
    widths = [max(len(row[i]) for row in cells if i < len(row))
              for i in range(max(len(row) for row in cells))]
    marks = [" "] * len(head) + [MARKS[table.mark(i)][0] for i in range(len(table.rows))]
    lines = [f"{mark} " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False))
             for mark, row in zip(marks, cells, strict=True)]
    return [line.rstrip() for line in lines] + ([f"  {table.note}"] if table.note else [])


def _clip(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= TEXT_LIMIT else flat[:TEXT_LIMIT - 1] + "…"


# -- values ----------------------------------------------------------------------------------


def value(item: Any, limit: int = 120) -> str:
    """A parameter, metric or statistic as people read it: ``0.9731``, ``'gini'``, ``None``."""
    if isinstance(item, float):
        text = "nan" if math.isnan(item) else format(item, ".6g")
    elif isinstance(item, str):
        text = repr(item)
    elif item is None or isinstance(item, bool | int):
        text = str(item)
    else:
        text = json.dumps(item, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def nbytes(count: int) -> str:
    size = float(count)
    for unit in ("B", "KB", "MB"):
        if size < 1000:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"


def seconds(duration: float) -> str:
    return f"{duration * 1000:.0f} ms" if duration < 1 else f"{duration:.2f} s"


def when(moment: dt.datetime) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def short_class(name: str) -> str:
    return name.rsplit(".", 1)[-1]


# -- chart -----------------------------------------------------------------------------------


def line_chart(title: str, points: Sequence[tuple[str, float]], *, width: int = 360,
               height: int = 110) -> Html:
    """A small SVG line chart of ``(label, value)`` points, left to right, with its range."""
    if not points:
        return Html("")
    low = min(v for _, v in points)
    high = max(v for _, v in points)
    pad, span = 14, (high - low) or 1.0
    step = (width - 2 * pad) / max(len(points) - 1, 1)
    xy = [(pad + i * step, height - pad - (v - low) / span * (height - 2 * pad))
          for i, (_, v) in enumerate(points)]
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)
    dots = "".join(
        f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3"><title>{escape(label)}: {escape(value(v))}'
        f"</title></circle>" for (x, y), (label, v) in zip(xy, points, strict=True))
    svg = Html(
        f'<svg width="{width}" height="{height}" role="img" style="overflow:visible">'
        f"<title>{escape(title)}</title>"
        f'<g fill="#1976d2"><polyline points="{path}" fill="none" stroke="#1976d2" '
        f'stroke-width="2"/>{dots}</g></svg>')
    caption = (f"{title}, {points[0][0]} to {points[-1][0]}: "
               f"min {value(low)}, max {value(high)}")
    return tag("figure", svg, tag("figcaption", caption, style="opacity:.7"),
               style="margin:6px 0")
