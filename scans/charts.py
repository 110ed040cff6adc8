"""The asymmetry trend as inline SVG: no JavaScript, no build step, readable on a phone.

x is real time (each scan at its upload time, ticks at local midnights; photos taken minutes apart are
spread apart just enough to see each), y the asymmetry index. Two drawings, a desktop's and a phone's. The
healthy range (where healthy faces at rest measure, 92.5% of them) and the positive threshold come from
the latest result's stored rule, so the picture matches how that result was decided; under a rule
judged on the interval a result is positive where its whole bar reaches the threshold. Styling lives
in portal.css: the CSP allows no inline style.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.urls import reverse
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.formats import get_format
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from inference.engine.decide import ASYMMETRY_ONLY_RULE, healthy_below_of
from scans.models import Scan, ScanResult


@dataclass(frozen=True)
class Layout:
    """One drawing of the chart. Text sizes are in viewBox units: the desktop drawing is shown at about
    its own width (12 units ~ 12 px), the phone's at about 350 px for 380 units (13 units ~ 12 px), so
    that no text on a phone is smaller than 11 px (it was 6 px with one drawing for both)."""

    name: str
    width: int
    height: int
    left: int
    top: int  # the plot area's top; the legend is above it
    text: int  # font size of axes and legend (portal.css uses the same numbers)
    value_text: int  # font size of the index above each mark
    legend_columns: int
    max_ticks: int

    @property
    def right(self) -> int:
        return self.width - 20

    @property
    def bottom(self) -> int:
        return self.height - 36

    @property
    def gap(self) -> float:
        """The least distance between two marks: room for the index written above each ("0.93")."""
        return 2.6 * self.value_text


WIDE = Layout("wide", 760, 330, 60, 56, 12, 11, 4, 6)
NARROW = Layout("narrow", 380, 320, 46, 72, 14, 13, 2, 3)
DAY_STEPS = (1, 2, 7, 14, 28, 56, 91, 182, 364, 728)
INDEX_STEPS = (0.1, 0.2, 0.25, 0.5, 1, 2, 5, 10, 20)

# Mark class -> what the legend and the tooltips call it.
MARK_NAMES = {
    "positive": "positive",
    "negative": "negative",
    "inconclusive": "inconclusive",
    "refused": "photo refused",
}
LABEL_MARKS = {
    ScanResult.Label.PARALYSIS: "positive",
    ScanResult.Label.NO_PARALYSIS: "negative",
    ScanResult.Label.INCONCLUSIVE: "inconclusive",
}
PATTERN_LETTERS = {
    ScanResult.Pattern.CENTRAL: "C",
    ScanResult.Pattern.PERIPHERAL: "P",
    ScanResult.Pattern.UNDETERMINED: "?",
}
# Shapes drawn around (0, 0), so that one transform places each mark; {} is the CSS class. Each kind
# has its own shape, so that the marks are told apart without their colours (WCAG 1.4.1): a triangle
# for a positive, a circle for a negative, a diamond for an inconclusive result, a cross for a refusal.
SHAPES = {
    "positive": '<path d="M0,-8L7.5,6L-7.5,6Z" class="{}"/>',
    "negative": '<circle r="5.5" class="{}"/>',
    "inconclusive": '<path d="M0,-8L8,0L0,8L-8,0Z" class="{}"/>',
    "refused": '<path d="M-5,-5L5,5M-5,5L5,-5" class="{}"/>',
}


def _legend(layout: Layout) -> str:
    """The marks' key, above the plot. Its marks get their own class ("key-positive"): `.positive`
    counts the scans only."""
    column = (layout.right - layout.left + 40) / layout.legend_columns
    keys = []
    for i, (mark, name) in enumerate(MARK_NAMES.items()):
        row, col = divmod(i, layout.legend_columns)
        keys.append(
            f'<g transform="translate({layout.left - 30 + column * col + 10:.0f} {18 + row * 22})">'
            f'{SHAPES[mark].format("key-" + mark)}<text x="12" y="5" class="legend">{name}</text></g>'
        )
    return "".join(keys)


def asymmetry_trend_svg(points: list[dict]) -> SafeString:
    """points: patient_timeline()'s, oldest first. Empty when there is nothing to draw. Two drawings,
    one for a desktop and one for a phone; the page's CSS shows the one that fits."""
    if not points:
        return mark_safe("")
    return mark_safe(_draw(points, WIDE) + _draw(points, NARROW))


def _draw(points: list[dict], layout: Layout) -> str:
    left, right, top_y, bottom = layout.left, layout.right, layout.top, layout.bottom
    latest = next((p["decision"] for p in reversed(points) if p["decision"]), {})
    positive_at = float(latest.get("asymmetry_positive_at", ASYMMETRY_ONLY_RULE.asymmetry_positive_at))
    # Not the negative threshold: under the interval rule that is the healthy quantile plus the narrowest
    # repeatability, a decision threshold (decide.DecisionRule.healthy_below).
    healthy_below = healthy_below_of(latest) if latest else ASYMMETRY_ONLY_RULE.healthy_below
    on_interval = "index_uncertainty" in latest if latest else True
    values = [p["asymmetry_index"] for p in points if p["asymmetry_index"] is not None]
    # Headroom above the threshold, so that a healthy trend does not look alarming by filling the chart.
    index_step, top = _nice_scale(max([positive_at * 1.6, *values]) * 1.1)
    first_day, days, ticks = _day_ticks(points, layout.max_ticks)
    start = _midnight(first_day)
    span = timedelta(days=days).total_seconds()

    def x(moment: datetime) -> float:
        return left + (moment - start).total_seconds() / span * (right - left)

    def y(value: float) -> float:
        return bottom - value / top * (bottom - top_y)

    with_year = ticks[0].year != ticks[-1].year
    label = (
        f"Asymmetry index of {len(points)} scans, {_day(points[0]['uploaded_at'])} to {_day(points[-1]['uploaded_at'])}"
    )
    parts = [
        f'<svg class="trend {layout.name}" viewBox="0 0 {layout.width} {layout.height}" role="group" '
        f'aria-label="{escape(label)}">',
        _legend(layout),
    ]
    # The healthy range and the threshold; their labels are drawn over the trend line, further down.
    band_top, threshold = y(healthy_below or 0.0), y(positive_at)
    if healthy_below is not None:
        parts.append(
            f'<rect x="{left}" y="{band_top:.1f}" width="{right - left}" height="{y(0) - band_top:.1f}" '
            'class="healthy"/>'
        )
    parts.append(f'<line x1="{left}" x2="{right}" y1="{threshold:.1f}" y2="{threshold:.1f}" class="threshold"/>')
    # y axis: gridlines with their values, and the axis name.
    for k in range(round(top / index_step) + 1):
        value = round(k * index_step, 2)
        parts.append(
            f'<line x1="{left}" x2="{right}" y1="{y(value):.1f}" y2="{y(value):.1f}" class="grid"/>'
            f'<text x="{left - 6}" y="{y(value) + 4:.1f}" class="axis" text-anchor="end">{value:g}</text>'
        )
    middle = (top_y + bottom) / 2
    parts.append(
        f'<text x="14" y="{middle}" class="axis-title" text-anchor="middle" '
        f'transform="rotate(-90 14 {middle})">Asymmetry index</text>'
    )
    # x axis: the time line itself (refused photos sit on it) and a date under each tick.
    parts.append(f'<line x1="{left}" x2="{right}" y1="{y(0):.1f}" y2="{y(0):.1f}" class="time-axis"/>')
    for day in ticks:
        tick = x(_midnight(day))
        parts.append(
            f'<line x1="{tick:.1f}" x2="{tick:.1f}" y1="{y(0):.1f}" y2="{y(0) + 5:.1f}" class="tick"/>'
            f'<text x="{tick:.1f}" y="{y(0) + 20:.1f}" class="axis" text-anchor="middle">'
            f"{escape(date_format(day, 'j M Y' if with_year else 'j M'))}</text>"
        )
    # Each photo at its time; photos closer than the layout's gap (three in ten minutes) are spread
    # apart, in order, as little as they need to be, so that each mark and its index can be seen and
    # tapped. A tick under the axis (the rug) keeps each photo's true time.
    true_x = [x(p["uploaded_at"]) for p in points]
    placed = spread(true_x, layout.gap, left + 8, right - 8)
    for tx in true_x:
        parts.append(f'<line x1="{tx:.1f}" x2="{tx:.1f}" y1="{y(0):.1f}" y2="{y(0) + 3:.1f}" class="rug"/>')
    measured = [(px, p) for px, p in zip(placed, points) if p["asymmetry_index"] is not None]
    if len(measured) > 1:
        line = " ".join(f"{px:.1f},{y(p['asymmetry_index']):.1f}" for px, p in measured)
        parts.append(f'<polyline points="{line}" class="trend-line"/>')
    if healthy_below is not None:
        parts.append(
            f'<text x="{left + 6}" y="{band_top + layout.text + 2:.1f}" class="band-label">'
            f"healthy range at rest (92.5% below {healthy_below:g})</text>"
        )
    positive = (
        f"positive where a whole bar is at or above {positive_at:g}"
        if on_interval
        else f"positive at {positive_at:g} or more"
    )
    parts.append(
        f'<text x="{right - 4}" y="{threshold - 5:.1f}" class="threshold-label" text-anchor="end">{positive}</text>'
    )
    # Error bars: index ± h, h the index's 95% repeatability (decide.REPEATABILITY_MEANING says what it states).
    # The index is written above its bar, never across it.
    label_dy = {}
    for i, point in enumerate(points):
        interval = point.get("index_interval")
        if point["asymmetry_index"] is not None and interval:
            label_dy[i] = min(-11.0, y(min(interval[1], top)) - y(point["asymmetry_index"]) - 4)
    for px, point in measured:
        interval = point.get("index_interval")
        if interval:
            low, high = y(max(interval[0], 0.0)), y(min(interval[1], top))
            parts.append(
                f'<path d="M{px - 4:.1f},{high:.1f}H{px + 4:.1f}M{px:.1f},{high:.1f}V{low:.1f}'
                f'M{px - 4:.1f},{low:.1f}H{px + 4:.1f}" class="interval"/>'
            )
    # The index above a mark, where it does not cover another's (newest first: the latest is always
    # written; the tooltip has every one).
    shown, boxes = set(), []
    for i in range(len(points) - 1, -1, -1):
        index = points[i]["asymmetry_index"]
        if index is None:
            continue
        box = (placed[i], y(index) + label_dy.get(i, -11.0))
        if all(abs(box[0] - bx) >= layout.gap - 1 or abs(box[1] - by) >= layout.value_text + 2 for bx, by in boxes):
            shown.add(i)
            boxes.append(box)
    for i, point in enumerate(points):
        index = point["asymmetry_index"]
        # A refused photo has no index: it sits on the time axis.
        parts.append(
            _point(
                point,
                placed[i],
                y(index if index is not None else 0),
                value_dy=label_dy.get(i, -11.0) if i in shown else None,
            )
        )
    parts.append("</svg>")
    return "".join(parts)


def spread(xs: list[float], gap: float, low: float, high: float) -> list[float]:
    """Positions as near as possible (least squares) to ``xs`` (ascending) that keep ``gap`` apart, in
    order, within [low, high]; an even spacing when there is not room for that gap. With y_i = x_i - i *
    gap the gaps become y ascending: the isotonic regression of xs_i - i * gap (pool adjacent
    violators), clipped to the room left."""
    n = len(xs)
    if n <= 1:
        return [min(max(value, low), high) for value in xs]
    gap = min(gap, (high - low) / (n - 1))
    ceiling = high - (n - 1) * gap
    blocks: list[list[float]] = []  # [sum, count] of each pooled run
    for i, value in enumerate(xs):
        blocks.append([min(max(value - i * gap, low), ceiling), 1])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
            total, count = blocks.pop()
            blocks[-1][0] += total
            blocks[-1][1] += count
    pooled = [total / count for total, count in blocks for _ in range(int(count))]
    return [value + i * gap for i, value in enumerate(pooled)]


def _point(point: dict, px: float, py: float, *, value_dy: float | None) -> str:
    """One scan's mark, linked to its page, with its index ``value_dy`` above it (None: not written)
    and its pattern letter beside it."""
    when = date_format(timezone.localtime(point["uploaded_at"]), get_format("DATETIME_FORMAT"))
    index = point["asymmetry_index"]
    labels = ""
    if point["status"] == Scan.Status.REJECTED:
        mark = "refused"
        title = f"{when}: photo refused. {point['status_reason']}"
    else:
        mark = LABEL_MARKS[point["label"]]
        title = f"{when}: {MARK_NAMES[mark]}, severity {point['severity']}"
        if index is not None:
            title += f", asymmetry index {index:.2f}"
            if point.get("index_repeatability") is not None:
                title += f" ± {point['index_repeatability']:.2f}"
            if point.get("change"):
                title += f" ({point['change']} since the previous photo)"
            if value_dy is not None:
                labels = f'<text y="{value_dy:.1f}" class="value" text-anchor="middle">{index:.2f}</text>'
        if point["pattern"]:
            title += f", pattern: {ScanResult.Pattern(point['pattern']).label}"
            labels += (
                f'<text x="9" y="14" class="pattern {escape(point["pattern"])}">'
                f"{escape(PATTERN_LETTERS[point['pattern']])}</text>"
            )
    return (
        f'<a href="{reverse("scans:detail", args=[point["scan_id"]])}" class="point">'
        f"<title>{escape(title)}</title>"
        f'<g transform="translate({px:.1f} {py:.1f})">{SHAPES[mark].format(mark)}{labels}</g></a>'
    )


def _nice_scale(highest: float) -> tuple[float, float]:
    """A round gridline step giving at most six steps, and the top of the axis on that step."""
    step = next((s for s in INDEX_STEPS if highest / s <= 6), INDEX_STEPS[-1])
    return step, math.ceil(highest / step) * step


def _day_ticks(points: list[dict], max_ticks: int) -> tuple[date, int, list[date]]:
    """The axis runs from the first scan's local midnight to the midnight after the last one, with
    ticks every whole number of days so that there are at most ``max_ticks`` gaps between them."""
    first = timezone.localtime(points[0]["uploaded_at"]).date()
    days = (timezone.localtime(points[-1]["uploaded_at"]).date() - first).days + 1
    step = next((s for s in DAY_STEPS if days / s <= max_ticks), DAY_STEPS[-1])
    return first, days, [first + timedelta(days=k) for k in range(0, days + 1, step)]


def _midnight(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time()))


def _day(moment: datetime) -> str:
    return date_format(timezone.localtime(moment), "j M Y")
