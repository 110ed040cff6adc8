"""How sure a measurement is: the asymmetry index's repeatability, from what a second photo would give.

A second photo of the same face (re-encoded, resized, reframed, the camera turned a little, another
light) moves the mesh by a fraction of a pixel, and that moves the index. `bench/repeatability.py`
measures how far, on palda-dev and stroke-faces photos and their variants; the constants below are a
fit of its 95th percentile (`--fit`), so that for a photo measured once:

- ``half_width`` is the 95% repeatability of the index, ``h``: two photos of an unchanged face, taken
  the same way, differ by less than ``sqrt(h1**2 + h2**2)`` (``combined``) 19 times in 20. That is
  what ``--fit`` fits, and ``MEANING`` says it in the words every page uses. It is not "a second
  photo falls within this one's ``index +- h``": on palda-dev that held for fewer pairs (the model
  card gives the figure), as two photos' noise adds up;
- it carries the photo's own evidence: how much the estimates its landmarks average disagree
  (``fits_spread``: the photo's own fit and its canonical refits, inference/engine/face.py), how far
  the head is turned (yaw), and it grows on a small face (fewer pixels per millimetre) and on a soft
  one. Each photo's variance is the sum ``FLOOR² + (SPREAD_GAIN·spread)² + (POSE_GAIN·|yaw|)²``, so a
  photo whose refits agree and which faces the camera gets the narrowest interval, and no photo one
  narrower than FLOOR;
- a photo whose canonical refits all lost the face has no spread to show and is measured by one fit
  alone, which moves more between photos: its half-width is NO_REFIT times the one it would have with
  agreeing refits (fitted on the bench's single-fit pairs), and it gets a quality warning;
- past FITS_DISAGREE the photo also gets the warning that its fits disagree.

A result whose interval reaches across a decision threshold is inconclusive, not a coin toss
(decide.decide's ``uncertainty``), and a change between two visits counts only beyond both photos'
repeatability (``beyond_noise``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from inference.engine.decide import REPEATABILITY_MEANING
from inference.engine.measure import Measurements, measure
from inference.engine.quality import WARNINGS

# 95% half-width of the index of a sharp face with at least REFERENCE_EYE_PX between the eyes:
# sqrt(FLOOR² + (SPREAD_GAIN·fits spread)² + (POSE_GAIN·|yaw|)²). Fitted by bench/repeatability.py --fit
# (the narrowest that keeps 95% of pairs within their combined repeatability in every band of index,
# spread and yaw); NO_REFIT on its single-fit pairs. The model card gives the table and the held-out check.
FLOOR = 0.0575
SPREAD_GAIN = 0.9
POSE_GAIN = 0.3
NO_REFIT = 2.25
# Below this eye distance (pixels of the analysed photo) the half-width grows as 1 / eye distance;
# below this sharpness (quality.face_figures) as 1 / sqrt(sharpness).
REFERENCE_EYE_PX = 60.0
REFERENCE_SHARPNESS = 15.0  # quality.SOFT_SHARPNESS: where the soft-focus warning starts
# Standard deviation of the signed index over one photo's canonical refits past which they
# "disagree" (a warning): palda-dev's 99th percentile (median 0.055, 95th 0.156, 99th 0.192 over its
# 102 photos).
FITS_DISAGREE = 0.19


# What ``± h`` states, in the one wording every page uses (``meaning`` adds the photos' own figure).
MEANING = REPEATABILITY_MEANING


def meaning(first: float | None = None, second: float | None = None) -> str:
    """MEANING, with what it gives for one photo (two photos as sure as it) or for two."""
    if first is None:
        return MEANING
    if second is None:
        return f"{MEANING}; for two photos as sure as this one, less than {combined(first, first):.2f}"
    return f"{MEANING}; for these two, less than {combined(first, second):.2f}"


def half_width(
    *,
    eye_distance_px: float,
    sharpness: float,
    fits_spread: float = 0.0,
    yaw: float = 0.0,
    refitted: bool = True,
) -> float:
    """The index's 95% repeatability, in index units (see the module's docstring). ``refitted``: False
    for a photo measured by one fit alone (no canonical refit held the face), whose ``fits_spread`` says
    nothing. The index itself is no term: beside the spread and the turn it narrowed nothing (--fit)."""
    base = math.sqrt(FLOOR**2 + (SPREAD_GAIN * fits_spread) ** 2 + (POSE_GAIN * yaw) ** 2)
    if not refitted:
        base = NO_REFIT * math.sqrt(FLOOR**2 + (POSE_GAIN * yaw) ** 2)
    resolution = max(1.0, REFERENCE_EYE_PX / max(eye_distance_px, 1.0))
    softness = max(1.0, math.sqrt(REFERENCE_SHARPNESS / max(sharpness, 0.1)))
    return float(base * resolution * softness)


def fits_spread(leans: list[float]) -> float:
    """The standard deviation of the signed index over the refits (0 with fewer than two)."""
    if len(leans) < 2:
        return 0.0
    return float(np.std(np.asarray(leans, dtype=float), ddof=1))


def combined(first_half_width: float, second_half_width: float) -> float:
    """How far two photos of an unchanged face may differ, 19 times in 20."""
    return math.hypot(first_half_width, second_half_width)


def beyond_noise(first: float, first_half_width: float, second: float, second_half_width: float) -> bool:
    """Whether two visits' indices differ by more than their photos' combined repeatability."""
    return abs(second - first) > combined(first_half_width, second_half_width)


@dataclass(frozen=True)
class Sureness:
    index: float
    half_width: float
    fits: int
    spread: float
    warnings: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        """What a result's measurements carry: the interval beside the value."""
        return {
            "index_repeatability": round(self.half_width, 3),
            "index_interval": [
                round(max(self.index - self.half_width, 0.0), 3),
                round(self.index + self.half_width, 3),
            ],
            "refits": self.fits,
            "refit_spread": round(self.spread, 3),
        }


def assess(
    points: np.ndarray, measurements: Measurements, fits: tuple, figures: dict, *, refits_tried: bool = True
) -> Sureness:
    """The repeatability of one analysed face: its landmarks and their measurements, its canonical
    refits (face.FaceSearch.fits, one-way fits in pairs), its quality figures (eye_distance_px,
    sharpness) and its turn (measurements.yaw). The spread is over the estimates the landmarks average:
    the photo's own fit (recovered from the mean, which is half of it) and each canonical refit.
    ``refits_tried``: whether the detector refits at all (face.FaceMeshDetector.refits); where it tried
    and no refit held the face, the photo is measured by one fit, widened, and says so."""
    refits = [(fits[k] + fits[k + 1]) / 2 for k in range(0, len(fits) - 1, 2)]
    leans = [measure(points).lean for points in refits]
    if refits:
        own = 2 * points - np.mean(refits, axis=0)
        leans.append(measure(own).lean)
    spread = fits_spread(leans)
    width = half_width(
        eye_distance_px=float(figures.get("eye_distance_px", REFERENCE_EYE_PX)),
        sharpness=float(figures.get("sharpness", REFERENCE_SHARPNESS)),
        fits_spread=spread,
        yaw=abs(float(measurements.yaw)),
        refitted=bool(refits),
    )
    codes = ["fits_disagree"] if spread > FITS_DISAGREE else []
    if refits_tried and not refits:
        codes.append("refits_failed")
    warnings = [{"code": code, "message": WARNINGS[code]} for code in codes]
    return Sureness(measurements.asymmetry_index, width, len(refits), spread, warnings)
