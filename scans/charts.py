"""A severity trend as inline SVG: no JavaScript, no build step, readable on a phone."""

from __future__ import annotations

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from inference.engine.measure import SEVERITY_BANDS

WIDTH, HEIGHT, PAD = 640, 220, 32
RIGHT = 76  # room for the band names


def severity_trend_svg(points: list[dict]) -> SafeString:
    values = [p["asymmetry_index"] for p in points if p["asymmetry_index"] is not None]
    if not values:
        return mark_safe("")
    top = max(3.0, max(values) * 1.1)
    step = (WIDTH - PAD - RIGHT) / max(len(values) - 1, 1)

    def x(i: int) -> float:
        return PAD + i * step if len(values) > 1 else (WIDTH - RIGHT + PAD) / 2

    def y(value: float) -> float:
        return HEIGHT - PAD - (value / top) * (HEIGHT - 2 * PAD)

    parts = [f'<svg class="trend" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
             f'aria-label="Asymmetry index across {len(values)} scans">']
    for lower, name in SEVERITY_BANDS[1:]:
        parts.append(f'<line x1="{PAD}" x2="{WIDTH - RIGHT}" y1="{y(lower):.1f}" y2="{y(lower):.1f}" class="band"/>'
                     f'<text x="{WIDTH - RIGHT + 6}" y="{y(lower) + 4:.1f}" class="band-label">{name}</text>')
    line = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values))
    parts.append(f'<polyline points="{line}" class="trend-line"/>')
    for i, point in enumerate(p for p in points if p["asymmetry_index"] is not None):
        css = "positive" if point["label"] == "paralysis" else "negative"
        title = escape(f"{point['uploaded_at']:%Y-%m-%d %H:%M}: {point['label']}, severity {point['severity']}, "
                       f"index {point['asymmetry_index']:.2f}")
        parts.append(f'<a href="/scans/{point["scan_id"]}/"><circle cx="{x(i):.1f}" cy="{y(point["asymmetry_index"]):.1f}" '
                     f'r="5" class="{css}"><title>{title}</title></circle></a>')
    parts.append(f'<text x="{PAD}" y="{HEIGHT - 8}" class="axis">oldest</text>'
                 f'<text x="{WIDTH - RIGHT}" y="{HEIGHT - 8}" class="axis" text-anchor="end">latest</text></svg>')
    return mark_safe("".join(parts))
