"""The decision as applied to one photo (issue 40, item 9): the healthy range is a healthy range, and
the thresholds a photo was judged by are its rule's moved apart by its own ± h."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from inference.engine import calibration
from inference.engine.decide import (
    ASYMMETRY_ONLY_RULE,
    NO_PARALYSIS,
    PARALYSIS,
    DecisionRule,
    applied_thresholds,
    decide,
    explain,
)

FUSED = DecisionRule.from_thresholds(
    {"classifier_weight": 0.4, "fused_positive_at": 0.55, "fused_negative_below": 0.45}, name="fused"
)


def test_it_keeps_the_healthy_range_apart_from_the_negative_threshold():
    """The negative threshold is the healthy faces' 92.5th percentile plus the narrowest ± h (v3: 0.41):
    a decision threshold. The healthy range is the percentile itself, fitted from the same spread."""
    spread = ASYMMETRY_ONLY_RULE.asymmetry_positive_at / calibration.half_normal_quantile(0.975, 1.0)
    assert ASYMMETRY_ONLY_RULE.healthy_below == pytest.approx(calibration.half_normal_quantile(0.925, spread), abs=0.01)
    assert ASYMMETRY_ONLY_RULE.healthy_below < ASYMMETRY_ONLY_RULE.asymmetry_negative_below
    rule = {**ASYMMETRY_ONLY_RULE.as_dict(), "used_classifier": False, "index_uncertainty": 0.08}
    steps = explain(asymmetry_index=0.38, probability=None, rule=rule)
    negative = ASYMMETRY_ONLY_RULE.asymmetry_negative_below - 0.08
    positive = ASYMMETRY_ONLY_RULE.asymmetry_positive_at + 0.08
    said = f"negative below {negative:.2f}, positive from {positive:.2f}, inconclusive between"
    assert f"The rule as applied to this photo (± 0.08): {said}." in steps
    assert "Healthy range: healthy faces at rest measure below 0.33, 92.5% of them." in steps


@given(index=st.floats(0, 3), uncertainty=st.floats(0, 0.5), probability=st.none() | st.floats(0, 1))
@pytest.mark.parametrize("rule", [ASYMMETRY_ONLY_RULE, FUSED], ids=["index alone", "fused"])
def test_it_states_the_thresholds_decide_applied_to_the_photo(rule, index, uncertainty, probability):
    negative, positive = applied_thresholds(rule, uncertainty=uncertainty, probability=probability)
    assume(all(t is None or abs(index - t) > 1e-6 for t in (negative, positive)))
    label = decide(
        asymmetry_index=index, severity="mild", probability=probability, rule=rule, uncertainty=uncertainty
    ).label
    assert (label == NO_PARALYSIS) == (negative is not None and index < negative)
    assert (label == PARALYSIS) == (positive is not None and index >= positive)
