"""Charts for the admin dashboard: inline SVG drawn on the server, with no JavaScript and
no external requests.

Every chart is an ``<svg role="img">`` named by its own ``<title>`` and described by a
``<desc>`` that states the figures in words (screen readers read those, not the bars);
every bar carries a ``<title>`` too, which browsers show as a tooltip. Text takes the
page's colour (``currentColor``), so the charts read in the admin's dark mode as well.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.text import Truncator

WIDTH = 720
GRID = "#d4d4d8"
MAX_DATE_LABELS = 8
LABEL_CHARS = 30


def nice_ceiling(value: int) -> int:
    """The smallest 1, 2 or 5 times a power of ten that is at least ``value`` (and 1)."""
    if value <= 1:
        return 1
    magnitude = 10 ** math.floor(math.log10(value))
    return next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= value)


def ticks(top: int) -> list[int]:
    """Whole-number ticks from 0 to ``top`` (a nice ceiling), at most six of them."""
    parts = next(k for k in (5, 4, 2, 1) if top % k == 0)
    return [top * i // parts for i in range(parts + 1)]


def _n(x: float) -> str:
    return f"{x:.1f}".removesuffix(".0")


def _day(day: date) -> str:
    return f"{day:%b} {day.day}"


def _plural(n: int, unit: str) -> str:
    return f"{n} {unit}" if n == 1 else f"{n} {unit}s"


def _svg(chart_id: str, title: str, desc: str, height: float, body: SafeString) -> SafeString:
    return format_html(
        '<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{id}" role="img" '
        'aria-labelledby="{id}-title {id}-desc" viewBox="0 0 {w} {h}" width="100%" '
        'style="max-width:{w}px;height:auto" font-family="system-ui, sans-serif" '
        'font-size="11">'
        '<title id="{id}-title">{title}</title><desc id="{id}-desc">{desc}</desc>'
        '<text x="0" y="14" font-size="13" font-weight="bold" fill="currentColor">{title}'
        "</text>{body}</svg>",
        id=chart_id,
        w=WIDTH,
        h=_n(height),
        title=title,
        desc=desc,
        body=body,
    )


def daily_description(title: str, unit: str, days: Sequence[date], values: Sequence[int]) -> str:
    """The chart's figures in one sentence: the span, the total and the busiest day."""
    if not days:
        return f"{title}: no days to show."
    span = f"{days[0].isoformat()} to {days[-1].isoformat()}"
    total = sum(values)
    if not total:
        return f"{title}, {span}: none."
    peak = max(range(len(values)), key=lambda i: (values[i], i))
    busiest = f"{days[peak].isoformat()} ({values[peak]})"
    return f"{title}, {span}: {_plural(total, unit)} in all; the most on {busiest}."


def daily_bars(
    *,
    chart_id: str,
    title: str,
    unit: str,
    days: Sequence[date],
    values: Sequence[int],
    colour: str,
) -> SafeString:
    """A vertical bar per day, oldest on the left, with a labelled y axis of ``unit``s
    and dates along the x axis (at most eight labelled)."""
    left, right, top, bottom, height = 52, 8, 28, 40, 220
    plot_w, plot_h = WIDTH - left - right, height - top - bottom
    y_max = nice_ceiling(max(values, default=0))
    slot = plot_w / max(len(values), 1)
    base = top + plot_h
    grid = format_html_join(
        "",
        '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-width="1"/>'
        '<text x="{}" y="{}" text-anchor="end" dominant-baseline="middle" '
        'fill="currentColor">{}</text>',
        (
            (left, y, WIDTH - right, y, GRID, left - 6, y, tick)
            for tick in ticks(y_max)
            for y in [_n(base - plot_h * tick / y_max)]
        ),
    )
    bars = format_html_join(
        "",
        '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{}: {}</title></rect>',
        (
            (
                _n(left + i * slot + slot * 0.1),
                _n(base - plot_h * value / y_max),
                _n(max(slot * 0.8, 1)),
                _n(plot_h * value / y_max),
                colour,
                day.isoformat(),
                _plural(value, unit),
            )
            for i, (day, value) in enumerate(zip(days, values, strict=True))
        ),
    )
    every = max(1, math.ceil(len(days) / MAX_DATE_LABELS))
    labels = format_html_join(
        "",
        '<text x="{}" y="{}" text-anchor="middle" fill="currentColor">{}</text>',
        (
            (_n(left + (i + 0.5) * slot), base + 16, _day(days[i]))
            for i in range(0, len(days), every)
        ),
    )
    axes = format_html(
        '<line x1="{l}" y1="{b}" x2="{r}" y2="{b}" stroke="currentColor" stroke-width="1"/>'
        '<text x="{cx}" y="{h}" text-anchor="middle" fill="currentColor">Date</text>'
        '<text x="12" y="{cy}" text-anchor="middle" fill="currentColor" '
        'transform="rotate(-90 12 {cy})">{unit}s</text>',
        l=left,
        r=WIDTH - right,
        b=base,
        cx=_n(left + plot_w / 2),
        h=height - 4,
        cy=_n(top + plot_h / 2),
        unit=unit.capitalize(),
    )
    desc = daily_description(title, unit, days, values)
    return _svg(chart_id, title, desc, height, grid + bars + labels + axes)


def ranking_description(title: str, unit: str, items: Sequence[tuple[str, int]]) -> str:
    if not items:
        return f"{title}: none yet."
    listed = "; ".join(f"{label}: {value}" for label, value in items)
    return f"{title}, in {unit}s: {listed}."


def ranking_bars(
    *, chart_id: str, title: str, unit: str, items: Sequence[tuple[str, int]], colour: str
) -> SafeString:
    """A horizontal bar per item, largest first as given, its label on the left and its
    value at the bar's end, with a labelled x axis of ``unit``s."""
    label_w, right, top, row_h, bottom = 210, 44, 28, 22, 40
    plot_w = WIDTH - label_w - right
    height = top + row_h * max(len(items), 1) + bottom
    base = height - bottom
    x_max = nice_ceiling(max((value for _, value in items), default=0))
    grid = format_html_join(
        "",
        '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-width="1"/>'
        '<text x="{}" y="{}" text-anchor="middle" fill="currentColor">{}</text>',
        (
            (x, top, x, base, GRID, x, base + 14, tick)
            for tick in ticks(x_max)
            for x in [_n(label_w + plot_w * tick / x_max)]
        ),
    )
    bars = format_html_join(
        "",
        '<text x="{}" y="{}" text-anchor="end" dominant-baseline="middle" '
        'fill="currentColor">{}</text>'
        '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{}: {}</title></rect>'
        '<text x="{}" y="{}" dominant-baseline="middle" fill="currentColor">{}</text>',
        (
            (
                label_w - 8,
                _n(y + row_h / 2),
                Truncator(label).chars(LABEL_CHARS),
                label_w,
                _n(y + row_h * 0.15),
                _n(width),
                _n(row_h * 0.7),
                colour,
                label,
                _plural(value, unit),
                _n(label_w + width + 4),
                _n(y + row_h / 2),
                value,
            )
            for i, (label, value) in enumerate(items)
            for y, width in [(top + i * row_h, plot_w * value / x_max)]
        ),
    )
    empty = (
        format_html(
            '<text x="{}" y="{}" fill="currentColor">Nothing to show yet.</text>',
            label_w,
            _n(top + row_h / 2),
        )
        if not items
        else SafeString()
    )
    axis = format_html(
        '<text x="{}" y="{}" text-anchor="middle" fill="currentColor">{}s</text>',
        _n(label_w + plot_w / 2),
        height - 4,
        unit.capitalize(),
    )
    desc = ranking_description(title, unit, items)
    return _svg(chart_id, title, desc, height, grid + bars + empty + axis)
