from django import template

from inference.engine.measure import SINGLE_VALUE_REGIONS
from inference.engine.repeatability import meaning

register = template.Library()

REGION_LABELS = {
    "brow_height": "Eyebrow height above the eye line",
    "eye_opening": "Eye opening (lid to lid)",
    "mouth_corner_height": "Mouth-corner height (negative: below the eye line)",
    "mouth_excursion": "Mouth-corner distance from the midline",
    "nasolabial": "Nose wing to mouth corner",
    "lip_line_tilt_deg": "Lip line tilt (positive: left corner higher)",
    "mouth_deviation": "Mouth centre off the midline (positive: to the left)",
}


@register.filter
def region_label(name: str) -> str:
    return REGION_LABELS.get(name, name.replace("_", " ").capitalize())


@register.filter
def region_unit(name: str) -> str:
    return "°" if name.endswith("_deg") else "mm"


@register.filter
def region_is_single(name: str) -> bool:
    """Measured once for the face (a tilt, an offset), so shown once, not per side."""
    return name in SINGLE_VALUE_REGIONS


@register.simple_tag
def repeatability_meaning(first: float | None = None, second: float | None = None) -> str:
    """What ``± h`` states (repeatability.MEANING), with the figure for this photo or these two."""
    return meaning(first, second)
