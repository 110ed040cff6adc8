"""Fitting the rule for faces at rest: few constants, each from a stated principle.

- The decision thresholds come from one number, the spread of the lean (the signed asymmetry index,
  measure.composite_lean) over healthy faces at rest. A healthy face's small asymmetries point every
  way, so its lean is taken as normal around 0 with that spread (its root mean square), and the
  thresholds are quantiles of |lean|: negative below the 92.5th percentile, positive from the 97.5th,
  a review item for the care team between. Fitting one spread instead of picking two quantiles from
  a few dozen photos keeps the thresholds from following single photos.
- The pattern thresholds come from one number, the upper-face involvement
  (measure.upper_face_involvement) that best separates central from peripheral palsy on flagged
  photos, counting both kinds' recall alike (balanced accuracy) so that the commoner peripheral
  photos do not push stroke-pattern faces aside; a band of ±PATTERN_BAND around it is undetermined.

bench/eval_screening.py fits these on palda-dev for the shipped rule, and cross-fits them (fit on
some people, measure on the others) for the figures in the model card.
"""

from __future__ import annotations

from dataclasses import replace
from statistics import NormalDist

import numpy as np

from inference.engine import repeatability
from inference.engine.decide import ASYMMETRY_ONLY_RULE, DecisionRule

NEGATIVE_QUANTILE = 0.925  # of healthy faces at rest
POSITIVE_QUANTILE = 0.975
PATTERN_BAND = 0.1  # undetermined within ±10% of the fitted pattern threshold


def half_normal_quantile(q: float, spread: float) -> float:
    """The q-quantile of |x| for x normal around 0 with standard deviation ``spread``."""
    return spread * NormalDist().inv_cdf(0.5 + q / 2)


def fit_rest_rule(
    healthy_leans: np.ndarray, *, interval_rule: bool = False, base: DecisionRule = ASYMMETRY_ONLY_RULE
) -> DecisionRule:
    """Negative below the healthy faces' 92.5th percentile, positive from their 97.5th.

    ``interval_rule``: the rule will be applied to intervals (decide's ``uncertainty``: negative only
    when ``index + half_width`` lies below the threshold). The threshold then sits the narrowest
    half-width a photo can have at the quantile (a sharp face, at least REFERENCE_EYE_PX between the
    eyes, fits agreeing) above it: the surest photos keep the decision the quantile gives, and a less
    sure one is called negative only further below it, or becomes a review item. No photo is called
    negative above the quantile by more than the threshold's rounding (0.005)."""
    leans = np.asarray(healthy_leans, dtype=float)
    if len(leans) < 5:
        raise ValueError(f"need at least 5 healthy faces to fit the rule, got {len(leans)}")
    spread = float(np.sqrt(np.mean(leans**2)))
    negative_below = half_normal_quantile(NEGATIVE_QUANTILE, spread)
    if interval_rule:
        negative_below += repeatability.half_width(
            eye_distance_px=repeatability.REFERENCE_EYE_PX, sharpness=repeatability.REFERENCE_SHARPNESS
        )
    return replace(
        base,
        healthy_below=round(half_normal_quantile(NEGATIVE_QUANTILE, spread), 2),
        asymmetry_negative_below=round(negative_below, 2),
        asymmetry_positive_at=round(half_normal_quantile(POSITIVE_QUANTILE, spread), 2),
    )


def fit_pattern_threshold(involvement: np.ndarray, peripheral: np.ndarray) -> float:
    """The threshold on upper-face involvement (peripheral at or above) with the best balanced
    accuracy; among equally good ones, the middle of the widest gap."""
    involvement = np.asarray(involvement, dtype=float)
    peripheral = np.asarray(peripheral, dtype=bool)
    if peripheral.all() or not peripheral.any():
        raise ValueError("need flagged photos of both central and peripheral palsy")
    values = np.unique(involvement)
    candidates = (values[:-1] + values[1:]) / 2 if len(values) > 1 else values
    best, best_score = float(candidates[0]), -1.0
    for threshold in candidates:
        called = involvement >= threshold
        score = (called[peripheral].mean() + (~called[~peripheral]).mean()) / 2
        if score > best_score + 1e-12:
            best, best_score = float(threshold), score
    return best


def with_pattern_threshold(rule: DecisionRule, threshold: float) -> DecisionRule:
    return replace(
        rule,
        pattern_peripheral_at=round(threshold * (1 + PATTERN_BAND), 3),
        pattern_central_below=round(threshold * (1 - PATTERN_BAND), 3),
    )
