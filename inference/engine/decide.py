"""The decision: classifier probability and asymmetry measurements -> label, score and severity.

The rule and its thresholds travel with every result, so any label can be traced and reproduced.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

# The severities, least first: the one order the portal compares them by (severity_rank).
NONE, MILD, MODERATE, SEVERE = SEVERITIES = ("none", "mild", "moderate", "severe")


def severity_rank(severity: str) -> int:
    """0 for "none" up to 3 for "severe"; a ValueError for a name that is not a severity."""
    return SEVERITIES.index(severity)


PARALYSIS = "paralysis"
NO_PARALYSIS = "no_paralysis"
INCONCLUSIVE = "inconclusive"

CENTRAL = "central"  # lower face weak, forehead and eye spared: the stroke pattern
PERIPHERAL = "peripheral"  # the whole half of the face, as in Bell's palsy
UNDETERMINED = "undetermined"

# What each pattern asks of the person reading the result: the one wording of the scan page, the alert
# card, the REST result and the browser notification.
PATTERN_ADVICE = {
    CENTRAL: "Stroke pattern (lower face weak, forehead spared): contact the stroke team / emergency services now.",
    PERIPHERAL: "Whole-side pattern (as in Bell's palsy): a stroke is not ruled out; a clinician should see the "
    "patient today.",
    UNDETERMINED: "Pattern undetermined: treat as a possible stroke until a clinician has seen the patient.",
}
# An inconclusive result is a review item: the measurement could not decide, so its pattern says how
# soon to look and what to look for, never "act now" as if the face were known to be weak.
REVIEW_ADVICE = {
    CENTRAL: "Inconclusive, with the stroke pattern's shape (lower face weaker, forehead spared): review the "
    "photo now; with other stroke signs, contact the stroke team.",
    PERIPHERAL: "Inconclusive, with a whole-side shape: review the photo today; a stroke is not ruled out.",
    UNDETERMINED: "Inconclusive, pattern undetermined: review the photo; with other stroke signs, treat as a "
    "possible stroke.",
}


# What a result's ``± h`` states (inference/engine/repeatability.py, as bench/repeatability.py --fit fits
# it): the one wording of the scan page, the patient page and its trend, the API, FHIR and ``explain``.
REPEATABILITY_MEANING = (
    "95% repeatability: two photos of an unchanged face, taken the same way, differ by less than "
    "√(h₁² + h₂²), h₁ and h₂ being the two photos' ± figures, 19 times in 20"
)


def pattern_advice(pattern: str, *, inconclusive: bool = False) -> str:
    """What a pattern asks of the clinician reading a flagged result ("" for none)."""
    return (REVIEW_ADVICE if inconclusive else PATTERN_ADVICE).get(pattern, "")


@dataclass(frozen=True)
class DecisionRule:
    name: str
    # Asymmetry index at which the asymmetry evidence alone counts as positive / negative.
    asymmetry_positive_at: float
    asymmetry_negative_below: float
    # Fused score thresholds (only used when a classifier probability is present).
    fused_positive_at: float = 0.5
    fused_negative_below: float = 0.5
    classifier_weight: float = 0.0
    # How fast the asymmetry score rises around asymmetry_positive_at (0.5 there; 0.95 about 1.0 above).
    asymmetry_score_width: float = 0.35
    # The pattern of a flagged face, from its upper-face involvement (measure.upper_face_involvement):
    # peripheral at or above the first, central below the second, undetermined between.
    pattern_peripheral_at: float = 0.023
    pattern_central_below: float = 0.018
    # The healthy range: healthy faces at rest measure below this 92.5% of the time (the quantile
    # calibration.fit_rest_rule fits; asymmetry_negative_below is it plus the narrowest repeatability
    # a photo can have, so it is a decision threshold, not the edge of the healthy range).
    healthy_below: float = 0.33

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def for_version(cls, thresholds: dict, *, name: str) -> DecisionRule:
        """The rule a classifier version's results are decided by. A deciding version (weight > 0)
        brings its own fused thresholds; a second reader (weight 0) decides nothing, so its results
        are decided by the engine's own rule for faces at rest, with today's thresholds, not with the
        copy frozen in its record when it was evaluated."""
        rule = cls.from_thresholds(thresholds, name=name)
        if rule.classifier_weight > 0:
            return rule
        return replace(ASYMMETRY_ONLY_RULE, name=f"{ASYMMETRY_ONLY_RULE.name}, {name}", classifier_weight=0.0)

    @classmethod
    def from_thresholds(cls, thresholds: dict, *, name: str) -> DecisionRule:
        fields = {
            key: float(value) for key, value in thresholds.items() if key in cls.__dataclass_fields__ and key != "name"
        }
        base = asdict(ASYMMETRY_ONLY_RULE)
        base.update(fields)
        base["name"] = name
        return cls(**base)


# Training-free rule for photos of faces at rest, used when no trained classifier is active. Its
# constants are fitted by `bench/eval_screening.py` (calibration.fit_rest_rule and
# calibration.fit_pattern_threshold on every photo of palda-dev; the model card reports them
# cross-fitted, on photos they were not fitted on). Negative below the healthy-at-rest 92.5th
# percentile plus the healthy faces' median repeatability (a result is negative only when its whole
# interval lies below), positive from the 97.5th (when its whole interval lies above: decide's
# ``uncertainty``), inconclusive (a review item for the care team) between. v4: the narrowest
# repeatability fell from 0.08 to 0.0575 when the interval came to carry each photo's own refit spread
# and turn (issue 40), so the negative threshold is the same 92.5th percentile (0.33) plus it (v3:
# 0.41 / 0.42 for the canonical refits of issue 28 and the interval rule; v2: 0.39 / 0.49, pattern
# 0.018 / 0.023).
ASYMMETRY_ONLY_RULE = DecisionRule(
    name="asymmetry-rest-v4",
    asymmetry_positive_at=0.42,
    asymmetry_negative_below=0.39,
    pattern_peripheral_at=0.024,
    pattern_central_below=0.019,
    healthy_below=0.33,
)
# The healthy range of rules whose results were stored before rules carried it (same fit, same data).
HEALTHY_BELOW_OF = {"asymmetry-rest-v3": 0.33}


def healthy_below_of(rule: dict) -> float | None:
    """The healthy range's upper end (healthy faces at rest measure below it 92.5% of the time) of a
    stored rule; None where it cannot be known. A rule judged on the index alone (no
    ``index_uncertainty``: asymmetry-rest-v2 and before) was negative exactly below that quantile."""
    value = rule.get("healthy_below")
    if isinstance(value, (int, float)):
        return float(value)
    name = str(rule.get("name", ""))
    for known, below in HEALTHY_BELOW_OF.items():
        if name == known or name.startswith(f"{known}, "):  # DecisionRule.for_version names it so
            return below
    negative_below = rule.get("asymmetry_negative_below")
    if "index_uncertainty" not in rule and isinstance(negative_below, (int, float)):
        return float(negative_below)
    return None


def applied_thresholds(
    rule: DecisionRule, *, uncertainty: float, probability: float | None = None
) -> tuple[float | None, float | None]:
    """The rule as ``decide`` applies it to one photo, in its own index units: (negative below,
    positive from). A label holds only where the whole interval ``index ± uncertainty`` gives it,
    so for this photo the thresholds move apart by its uncertainty (with a deciding classifier, by
    what its probability leaves to the index). None where no index gives that label."""
    if probability is None or rule.classifier_weight <= 0:
        return _applied(rule.asymmetry_negative_below, rule.asymmetry_positive_at, uncertainty)
    weight = rule.classifier_weight

    def index_at(fused_score: float) -> float | None:
        """The index whose fused score is ``fused_score``: -inf where any index reaches it, None where none."""
        if weight >= 1:  # the probability alone: every index or none
            return -math.inf if probability >= fused_score else None
        score = (fused_score - weight * probability) / (1 - weight)
        if score <= 0:
            return -math.inf
        if score >= 1:
            return None
        width = max(rule.asymmetry_score_width, 1e-6)
        return rule.asymmetry_positive_at + width * math.log(score / (1 - score))

    negative, positive = index_at(rule.fused_negative_below), index_at(rule.fused_positive_at)
    return _applied(math.inf if negative is None else negative, positive, uncertainty)


def _applied(negative_below: float, positive_at: float | None, uncertainty: float) -> tuple[float | None, float | None]:
    """``negative_below``: where the interval's top must lie below (inf: any index; -inf: none);
    ``positive_at``: where its bottom (never below 0) must reach (None: no index)."""
    negative = negative_below - uncertainty
    if positive_at is None:
        positive = None
    else:
        positive = 0.0 if positive_at <= 0 else positive_at + uncertainty
    return (
        None if negative <= 0 else round(negative, 3) if math.isfinite(negative) else negative,
        None if positive is None else round(positive, 3),
    )


@dataclass(frozen=True)
class Decision:
    label: str
    score: float
    severity: str
    rule: dict
    pattern: str = ""  # named for positive and inconclusive results only


def pattern_of(*, label: str, upper_face_involvement: float | None, rule: DecisionRule) -> str:
    """Central, peripheral or undetermined, for a flagged face; "" for a negative one.

    Only the upper face decides: how severe the mouth looks says nothing about where the lesion is
    (a dense stroke can droop the mouth as much as Bell's palsy), so it never argues for peripheral.
    """
    if label == NO_PARALYSIS:
        return ""
    if upper_face_involvement is None:
        return UNDETERMINED
    if upper_face_involvement >= rule.pattern_peripheral_at:
        return PERIPHERAL
    if upper_face_involvement < rule.pattern_central_below:
        return CENTRAL
    return UNDETERMINED


def asymmetry_score(index: float, rule: DecisionRule) -> float:
    """Map the index to 0..1 so that the positive threshold is 0.5 (a logistic curve): a score a
    clinician can read, which still grows across the mild, moderate and severe bands."""
    width = max(rule.asymmetry_score_width, 1e-6)
    return 1.0 / (1.0 + math.exp(-(index - rule.asymmetry_positive_at) / width))


def decide(
    *,
    asymmetry_index: float,
    severity: str,
    probability: float | None,
    rule: DecisionRule,
    upper_face_involvement: float | None = None,
    uncertainty: float = 0.0,
) -> Decision:
    """``uncertainty``: the index's 95% repeatability (inference/engine/repeatability.py). A label
    holds only when the whole interval ``index +- uncertainty`` gives it; an interval that reaches
    across a threshold is inconclusive (a review item), not a coin toss."""
    asym = asymmetry_score(asymmetry_index, rule)
    low_index, high_index = max(asymmetry_index - uncertainty, 0.0), asymmetry_index + uncertainty
    if probability is None or rule.classifier_weight <= 0:  # a second reader's probability decides nothing
        score = asym
        if low_index >= rule.asymmetry_positive_at:
            label = PARALYSIS
        elif high_index < rule.asymmetry_negative_below:
            label = NO_PARALYSIS
        else:
            label = INCONCLUSIVE
    else:
        weight = rule.classifier_weight

        def fused(index: float) -> float:
            return weight * probability + (1 - weight) * asymmetry_score(index, rule)

        score = fused(asymmetry_index)
        if fused(low_index) >= rule.fused_positive_at:
            label = PARALYSIS
        elif fused(high_index) < rule.fused_negative_below:
            label = NO_PARALYSIS
        else:
            label = INCONCLUSIVE
    # A negative label with a raised band would read as a contradiction: the band describes the
    # measured asymmetry, which natural faces have a little of, so it is kept but capped at mild.
    if label == NO_PARALYSIS and severity_rank(severity) > severity_rank(MILD):
        severity = MILD
    # A face sent to a clinician is never "none": the band follows the label.
    if label != NO_PARALYSIS and severity == NONE:
        severity = MILD
    return Decision(
        label=label,
        score=round(score, 4),
        severity=severity,
        rule={**rule.as_dict(), "used_classifier": probability is not None, "index_uncertainty": round(uncertainty, 3)},
        pattern=pattern_of(label=label, upper_face_involvement=upper_face_involvement, rule=rule),
    )


def explain(
    *,
    asymmetry_index: float,
    probability: float | None,
    rule: dict,
    pattern: str = "",
    upper_face_involvement: float | None = None,
) -> list[str]:
    """How a stored result's label (and pattern) came about, in its rule's own numbers, for the
    clinician reading it."""
    fitted = DecisionRule.from_thresholds(rule, name=str(rule.get("name", "")))
    steps = _label_steps(asymmetry_index, probability, fitted)
    uncertainty = float(rule.get("index_uncertainty") or 0.0)
    if uncertainty > 0:
        low, high = max(asymmetry_index - uncertainty, 0.0), asymmetry_index + uncertainty
        steps.append(
            f"Repeatability ± {uncertainty:.2f} ({REPEATABILITY_MEANING}). The label holds only where the whole "
            f"range {low:.2f}–{high:.2f} gives it, so a range across a threshold is inconclusive."
        )
        applied = applied_wording(*applied_thresholds(fitted, uncertainty=uncertainty, probability=probability))
        steps.append(f"The rule as applied to this photo (± {uncertainty:.2f}): {applied}.")
    healthy = healthy_below_of(rule)
    if healthy is not None:
        steps.append(f"Healthy range: healthy faces at rest measure below {healthy:g}, 92.5% of them.")
    # Results stored before the pattern existed have no pattern thresholds in their rule.
    if pattern and upper_face_involvement is not None and "pattern_peripheral_at" in rule:
        steps.append(
            f"Pattern {pattern}: the lower lids differ by {upper_face_involvement:.3f} of an eye's width "
            f"(central below {fitted.pattern_central_below:g}, peripheral from "
            f"{fitted.pattern_peripheral_at:g}, undetermined between)."
        )
    return steps


def applied_wording(negative: float | None, positive: float | None) -> str:
    """``applied_thresholds`` in words: "negative below 0.33, positive from 0.50, inconclusive between"."""
    parts = [
        "never negative"
        if negative is None
        else "negative at any index"
        if math.isinf(negative)
        else f"negative below {negative:.2f}",
        "never positive" if positive is None else f"positive from {positive:.2f}",
    ]
    return (
        ", ".join(parts) + ", inconclusive between"
        if None not in (negative, positive)
        else ", ".join(parts) + ", inconclusive otherwise"
    )


def _label_steps(asymmetry_index: float, probability: float | None, fitted: DecisionRule) -> list[str]:
    asym = asymmetry_score(asymmetry_index, fitted)
    at = f"{fitted.asymmetry_positive_at:g}"
    if probability is None:
        return [
            f"Asymmetry index {asymmetry_index:.2f}: positive at {at} or more, negative below "
            f"{fitted.asymmetry_negative_below:g}, inconclusive between.",
            f"Score {asym:.2f}: the index mapped to 0–1 (0.50 at {at}). No classifier took part.",
        ]
    weight = fitted.classifier_weight
    score = weight * probability + (1 - weight) * asym
    if weight <= 0:
        return [
            f"Classifier P(paralysis) {probability:.2f}: a second reader, shown, not deciding (validation "
            "gave it weight 0).",
            f"Asymmetry index {asymmetry_index:.2f}: positive at {at} or more, negative below "
            f"{fitted.asymmetry_negative_below:g}, inconclusive between (score {asym:.2f}, 0.50 at {at}).",
        ]
    steps = [
        f"Classifier P(paralysis) {probability:.2f}; asymmetry index {asymmetry_index:.2f}, as a score "
        f"{asym:.2f} (0.50 at {at}).",
        f"Fused score {weight:.2f} × {probability:.2f} + {1 - weight:.2f} × {asym:.2f} = {score:.2f}.",
    ]
    if fitted.fused_negative_below < fitted.fused_positive_at:
        steps.append(
            f"Positive at {fitted.fused_positive_at:.2f} or more, negative below "
            f"{fitted.fused_negative_below:.2f}, inconclusive between."
        )
    else:
        steps.append(f"Positive at {fitted.fused_positive_at:.2f} or more, negative below it.")
    return steps


def explain_result(*, measurements: dict, classifier: dict, decision: dict, pattern: str = "") -> list[str]:
    """``explain`` for a result as stored (the portal's ScanResult, analyze_image's record)."""
    index = (measurements or {}).get("asymmetry_index")
    if index is None or not decision:
        return []
    probability = (classifier or {}).get("probability") if decision.get("used_classifier") else None
    return explain(
        asymmetry_index=float(index),
        probability=probability,
        rule=decision,
        pattern=pattern,
        upper_face_involvement=(measurements.get("upper_face") or {}).get("involvement"),
    )


def applied_to_result(*, classifier: dict, decision: dict) -> tuple[float | None, float | None] | None:
    """``applied_thresholds`` for a result as stored; None for one decided before results carried
    their index's repeatability (its rule was applied to the index alone)."""
    if not decision or "index_uncertainty" not in decision:
        return None
    rule = DecisionRule.from_thresholds(decision, name=str(decision.get("name", "")))
    probability = (classifier or {}).get("probability") if decision.get("used_classifier") else None
    return applied_thresholds(
        rule, uncertainty=float(decision.get("index_uncertainty") or 0.0), probability=probability
    )
