"""The asymmetry trend as inline SVG: no JavaScript, no build step, readable on a phone.

x is real time (each scan at its upload time, ticks at local midnights), y the asymmetry index. The
healthy-at-rest band and the decision threshold come from the latest result's stored rule, so the
picture matches how that result was decided. Styling lives in portal.css: the CSP allows no inline style.
"""

from __future__ import annotations

import math
from datetime import date, datetime, time, timedelta

from django.urls import reverse
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.formats import get_format
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from inference.engine.decide import ASYMMETRY_ONLY_RULE
from scans.models import Scan, ScanResult

WIDTH, HEIGHT = 760, 330
LEFT, RIGHT, TOP, BOTTOM = 60, WIDTH - 20, 56, HEIGHT - 36  # the plot area; legend above, dates below
MAX_TICKS = 6
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
# Shapes drawn around (0, 0), so that one transform places each mark; {} is the CSS class.
SHAPES = {
    "positive": '<circle r="6" class="{}"/>',
    "negative": '<circle r="6" class="{}"/>',
    "inconclusive": '<path d="M0,-8L8,0L0,8L-8,0Z" class="{}"/>',
    "refused": '<path d="M-5,-5L5,5M-5,5L5,-5" class="{}"/>',
}
# The legend's marks get their own class ("key-positive"): `circle.positive` counts the scans only.
LEGEND = "".join(
    f'<g transform="translate({LEFT + 130 * i} 18)">{SHAPES[mark].format("key-" + mark)}'
    f'<text x="12" y="4" class="legend">{name}</text></g>'
    for i, (mark, name) in enumerate(MARK_NAMES.items())
) + (
    f'<text x="{LEFT - 8}" y="42" class="legend">Letter beside a point: the pattern of the weakness. '
    "C central (the stroke pattern), P peripheral, ? undetermined. Bars: repeatability (95%)</text>"
)


def asymmetry_trend_svg(points: list[dict]) -> SafeString:
    """points: patient_timeline()'s, oldest first. Empty when there is nothing to draw."""
    if not points:
        return mark_safe("")
    latest = next((p["decision"] for p in reversed(points) if p["decision"]), {})
    positive_at = float(latest.get("asymmetry_positive_at", ASYMMETRY_ONLY_RULE.asymmetry_positive_at))
    negative_below = float(latest.get("asymmetry_negative_below", ASYMMETRY_ONLY_RULE.asymmetry_negative_below))
    values = [p["asymmetry_index"] for p in points if p["asymmetry_index"] is not None]
    # Headroom above the threshold, so that a healthy trend does not look alarming by filling the chart.
    index_step, top = _nice_scale(max([positive_at * 1.6, *values]) * 1.1)
    first_day, days, ticks = _day_ticks(points)
    start = _midnight(first_day)
    span = timedelta(days=days).total_seconds()

    def x(moment: datetime) -> float:
        return LEFT + (moment - start).total_seconds() / span * (RIGHT - LEFT)

    def y(value: float) -> float:
        return BOTTOM - value / top * (BOTTOM - TOP)

    with_year = ticks[0].year != ticks[-1].year
    label = (
        f"Asymmetry index of {len(points)} scans, {_day(points[0]['uploaded_at'])} to {_day(points[-1]['uploaded_at'])}"
    )
    parts = [f'<svg class="trend" viewBox="0 0 {WIDTH} {HEIGHT}" role="group" aria-label="{escape(label)}">', LEGEND]
    # The healthy range and the threshold; their labels are drawn over the trend line, further down.
    band_top, threshold = y(negative_below), y(positive_at)
    parts.append(
        f'<rect x="{LEFT}" y="{band_top:.1f}" width="{RIGHT - LEFT}" height="{y(0) - band_top:.1f}" class="healthy"/>'
        f'<line x1="{LEFT}" x2="{RIGHT}" y1="{threshold:.1f}" y2="{threshold:.1f}" class="threshold"/>'
    )
    # y axis: gridlines with their values, and the axis name.
    for k in range(round(top / index_step) + 1):
        value = round(k * index_step, 2)
        parts.append(
            f'<line x1="{LEFT}" x2="{RIGHT}" y1="{y(value):.1f}" y2="{y(value):.1f}" class="grid"/>'
            f'<text x="{LEFT - 6}" y="{y(value) + 4:.1f}" class="axis" text-anchor="end">{value:g}</text>'
        )
    middle = (TOP + BOTTOM) / 2
    parts.append(
        f'<text x="16" y="{middle}" class="axis-title" text-anchor="middle" '
        f'transform="rotate(-90 16 {middle})">Asymmetry index</text>'
    )
    # x axis: the time line itself (refused photos sit on it) and a date under each tick.
    parts.append(f'<line x1="{LEFT}" x2="{RIGHT}" y1="{y(0):.1f}" y2="{y(0):.1f}" class="time-axis"/>')
    for day in ticks:
        tick = x(_midnight(day))
        parts.append(
            f'<line x1="{tick:.1f}" x2="{tick:.1f}" y1="{y(0):.1f}" y2="{y(0) + 5:.1f}" class="tick"/>'
            f'<text x="{tick:.1f}" y="{y(0) + 20:.1f}" class="axis" text-anchor="middle">'
            f"{escape(date_format(day, 'j M Y' if with_year else 'j M'))}</text>"
        )
    measured = [p for p in points if p["asymmetry_index"] is not None]
    if len(measured) > 1:
        line = " ".join(f"{x(p['uploaded_at']):.1f},{y(p['asymmetry_index']):.1f}" for p in measured)
        parts.append(f'<polyline points="{line}" class="trend-line"/>')
    parts.append(
        f'<text x="{LEFT + 6}" y="{band_top + 14:.1f}" class="band-label">'
        f"healthy at rest (below {negative_below:g})</text>"
        f'<text x="{RIGHT - 4}" y="{threshold - 5:.1f}" class="threshold-label" text-anchor="end">'
        f"positive at {positive_at:g} or more</text>"
    )
    # Error bars: where a second photo of the same face would measure (the index's 95% repeatability).
    for point in measured:
        interval = point.get("index_interval")
        if interval:
            px = x(point["uploaded_at"])
            low, high = y(max(interval[0], 0.0)), y(min(interval[1], top))
            parts.append(
                f'<path d="M{px - 4:.1f},{high:.1f}H{px + 4:.1f}M{px:.1f},{high:.1f}V{low:.1f}'
                f'M{px - 4:.1f},{low:.1f}H{px + 4:.1f}" class="interval"/>'
            )
    for point in points:
        index = point["asymmetry_index"]
        # A refused photo has no index: it sits on the time axis.
        parts.append(_point(point, x(point["uploaded_at"]), y(index if index is not None else 0)))
    parts.append("</svg>")
    return mark_safe("".join(parts))


def _point(point: dict, px: float, py: float) -> str:
    """One scan's mark, linked to its page, with its index above it and its pattern letter beside it."""
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
            labels = f'<text y="-11" class="value" text-anchor="middle">{index:.2f}</text>'
        if point["pattern"]:
            title += f", pattern: {ScanResult.Pattern(point['pattern']).label}"
            labels += (
                f'<text x="10" y="5" class="pattern {escape(point["pattern"])}">'
                f"{escape(PATTERN_LETTERS[point['pattern']])}</text>"
            )
    return (
        f'<a href="{reverse("scans:detail", args=[point["scan_id"]])}" class="point">'
        f"<title>{escape(title)}</title>"
        f'<g transform="translate({px:.1f} {py:.1f})">{SHAPES[mark].format(mark)}{labels}</g></a>'
    )


def _nice_scale(highest: float) -> tuple[float, float]:
    """A round gridline step giving at most MAX_TICKS steps, and the top of the axis on that step."""
    step = next((s for s in INDEX_STEPS if highest / s <= MAX_TICKS), INDEX_STEPS[-1])
    return step, math.ceil(highest / step) * step


def _day_ticks(points: list[dict]) -> tuple[date, int, list[date]]:
    """The axis runs from the first scan's local midnight to the midnight after the last one, with
    ticks every whole number of days so that there are at most MAX_TICKS gaps between them."""
    first = timezone.localtime(points[0]["uploaded_at"]).date()
    days = (timezone.localtime(points[-1]["uploaded_at"]).date() - first).days + 1
    step = next((s for s in DAY_STEPS if days / s <= MAX_TICKS), DAY_STEPS[-1])
    return first, days, [first + timedelta(days=k) for k in range(0, days + 1, step)]


def _midnight(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time()))


def _day(moment: datetime) -> str:
    return date_format(timezone.localtime(moment), "j M Y")
