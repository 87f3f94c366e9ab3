"""Charts as inline SVG, drawn on the server: no script, no library, nothing fetched.

A stacked bar chart: one bar per category (a day), one segment per series (an
organisation, a decision), the total above each bar, a legend, and a `<title>`
on every segment so a pointer or a screen reader gets the exact number. Every
text is escaped; colours must be `#rrggbb`, so nothing a user named can reach an
attribute unescaped. The same numbers belong in a table beside the chart.
"""

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH = 720
PLOT_HEIGHT = 220
TOP, BOTTOM, LEFT, RIGHT = 22, 28, 44, 12
LEGEND_ROW, LEGEND_SWATCH = 20, 12
MAX_TICK_LABELS = 16
COLOUR = re.compile(r"#[0-9a-fA-F]{6}")

# Colour-blind-safe (Okabe–Ito), in an order that keeps neighbours apart.
PALETTE = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442", "#000000")


@dataclass(frozen=True)
class Series:
    """One stacked segment per category: its name, a count per category, its colour."""

    name: str
    values: Sequence[int]
    colour: str


def nice_ceiling(value: int) -> tuple[int, int]:
    """(axis maximum, tick step): the step 1, 2 or 5 × 10^k giving at most five
    ticks, and the smallest multiple of it that holds `value`."""
    if value <= 0:
        return 1, 1
    for step in (m * 10**k for k in range(0, 19) for m in (1, 2, 5)):
        if math.ceil(value / step) <= 5:
            return math.ceil(value / step) * step, step
    raise ValueError("value too large for a chart")  # pragma: no cover


def _checked(labels: Sequence[str], series: Sequence[Series]) -> None:
    for each in series:
        if len(each.values) != len(labels):
            raise ValueError(
                f"series {each.name!r} has {len(each.values)} values for {len(labels)}"
            )
        if any(value < 0 for value in each.values):
            raise ValueError(f"series {each.name!r} has a negative value")
        if not COLOUR.fullmatch(each.colour):
            raise ValueError(f"series {each.name!r}: a colour is #rrggbb, not {each.colour!r}")


def _legend(series: Sequence[Series], top: int) -> tuple[list[str], int]:
    """The legend's elements, wrapped into rows; and its height."""
    parts, x, y = [], LEFT, top
    for each in series:
        width = LEGEND_SWATCH + 6 + 7 * len(each.name) + 18
        if x + width > WIDTH - RIGHT and x > LEFT:
            x, y = LEFT, y + LEGEND_ROW
        parts.append(
            f'<g class="legend-item"><rect x="{x}" y="{y}" width="{LEGEND_SWATCH}" '
            f'height="{LEGEND_SWATCH}" fill="{each.colour}"/>'
            f'<text x="{x + LEGEND_SWATCH + 6}" y="{y + LEGEND_SWATCH - 1}">'
            f"{escape(each.name)}</text></g>"
        )
        x += width
    return parts, (y - top + LEGEND_ROW if series else 0)


@dataclass(frozen=True)
class Scales:
    """Where the bars go: the axis's maximum and tick step, pixels per unit, and
    each category's slot and bar width."""

    maximum: int
    step: int
    per_unit: float
    slot: float
    bar: float

    @classmethod
    def of(cls, totals: Sequence[int]) -> "Scales":
        maximum, step = nice_ceiling(max(totals))
        slot = (WIDTH - LEFT - RIGHT) / len(totals)
        return cls(maximum, step, PLOT_HEIGHT / maximum, slot, max(slot * 0.7, 1.0))

    def left(self, i: int) -> float:
        """The left edge of the `i`th bar."""
        return LEFT + i * self.slot + (self.slot - self.bar) / 2


def _axis(scales: Scales) -> list[str]:
    """A grid line and a number at each tick of the value axis."""
    parts = []
    for tick in range(0, scales.maximum + 1, scales.step):
        y = TOP + PLOT_HEIGHT - tick * scales.per_unit
        parts.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="#d8dde5"/><text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{tick}</text>"
        )
    return parts


def _bar(scales: Scales, i: int, label: str, total: int, series: Sequence[Series]) -> list[str]:
    """The `i`th category's stack, bottom up in series order (zero segments left
    out), each segment with its tooltip, and the total above it."""
    x, base = scales.left(i), float(TOP + PLOT_HEIGHT)
    parts = [f'<g class="bar" data-total="{total}">']
    for each in series:
        value = each.values[i]
        if value:
            top = base - value * scales.per_unit
            parts.append(
                f'<rect x="{x:.1f}" y="{top:.1f}" width="{scales.bar:.1f}" '
                f'height="{base - top:.1f}" fill="{each.colour}" '
                f'data-series="{escape(each.name)}" data-value="{value}">'
                f"<title>{escape(label)} · {escape(each.name)}: {value}</title></rect>"
            )
            base = top
    if total:
        parts.append(
            f'<text class="total" x="{x + scales.bar / 2:.1f}" y="{base - 4:.1f}" '
            f'text-anchor="middle">{total}</text>'
        )
    parts.append("</g>")
    return parts


def _ticks(scales: Scales, ticks: Sequence[str]) -> list[str]:
    """The category names under the bars, thinned to at most MAX_TICK_LABELS; and
    the baseline."""
    every = math.ceil(len(ticks) / MAX_TICK_LABELS)
    parts = [
        f'<text class="tick" x="{scales.left(i) + scales.bar / 2:.1f}" '
        f'y="{TOP + PLOT_HEIGHT + 16}" text-anchor="middle">{escape(tick)}</text>'
        for i, tick in enumerate(ticks)
        if i % every == 0
    ]
    parts.append(
        f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{TOP + PLOT_HEIGHT}" '
        f'y2="{TOP + PLOT_HEIGHT}" stroke="#5b6574"/>'
    )
    return parts


def _opening(chart_id: str, title: str, height: int) -> list[str]:
    """The `<svg>` element's start and its title, which names the chart for screen readers."""
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{escape(chart_id)}" '
        f'viewBox="0 0 {WIDTH} {height}" role="img" aria-labelledby="{escape(chart_id)}-title">',
        f'<title id="{escape(chart_id)}-title">{escape(title)}</title>',
    ]


def stacked_bars(
    chart_id: str,
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    ticks: Sequence[str] | None = None,
    empty: str = "Nothing to show",
) -> Markup:
    """An `<svg class="chart" id=chart_id>` of one stacked bar per label. `labels`
    name the categories in tooltips; `ticks` (default: the labels) under the bars.
    ValueError for values that do not fit the labels, negative values, or a colour
    that is not #rrggbb."""
    ticks = labels if ticks is None else ticks
    if len(ticks) != len(labels):
        raise ValueError("one tick per label")
    _checked(labels, series)
    totals = [sum(each.values[i] for each in series) for i in range(len(labels))]
    legend, legend_height = _legend(series, TOP + PLOT_HEIGHT + BOTTOM)
    parts = _opening(chart_id, title, TOP + PLOT_HEIGHT + BOTTOM + legend_height)
    if not any(totals):
        parts.append(
            f'<text class="empty" x="{WIDTH / 2:.0f}" y="{TOP + PLOT_HEIGHT / 2:.0f}" '
            f'text-anchor="middle">{escape(empty)}</text></svg>'
        )
        return Markup("".join(parts))
    scales = Scales.of(totals)
    parts += _axis(scales)
    for i, (label, total) in enumerate(zip(labels, totals, strict=True)):
        parts += _bar(scales, i, label, total, series)
    parts += _ticks(scales, ticks)
    parts += legend
    parts.append("</svg>")
    return Markup("".join(parts))
