"""The pattern of a flagged face (central: the stroke pattern; peripheral: the whole half) and the
rule for faces at rest, fitted from few constants."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from inference.engine import calibration
from inference.engine.decide import (
    ASYMMETRY_ONLY_RULE,
    CENTRAL,
    INCONCLUSIVE,
    NO_PARALYSIS,
    PARALYSIS,
    PERIPHERAL,
    UNDETERMINED,
    decide,
    pattern_of,
)
from inference.engine.measure import LOWER_LID, measure
from inference.engine.pipeline import Pipeline
from tests.faces import droop, symmetric_astronaut, symmetric_landmarks

RULE = ASYMMETRY_ONLY_RULE


def test_a_mouth_droop_on_an_otherwise_symmetric_face_is_the_central_pattern():
    face, points = symmetric_astronaut(), symmetric_landmarks()
    result = Pipeline().analyze(Image.fromarray(droop(face, points, side="right", pixels=10)))
    assert result.label == PARALYSIS
    assert result.pattern == CENTRAL
    assert result.measurements["upper_face"]["involvement"] < RULE.pattern_central_below


def test_a_sagging_lower_lid_on_the_weak_side_makes_the_pattern_peripheral():
    points = symmetric_landmarks().copy()
    points[291] += [0, 6]  # the left mouth corner sags
    eye_width = float(np.linalg.norm(points[263] - points[362]))
    central = measure(points)
    points[list(LOWER_LID["left"])] += [0, 0.06 * eye_width]  # and the left lower lid with it
    peripheral = measure(points)
    assert central.upper_face["involvement"] < RULE.pattern_central_below
    assert peripheral.upper_face["involvement"] == pytest.approx(0.06, abs=0.01)
    calls = [
        decide(
            asymmetry_index=m.asymmetry_index,
            severity=m.severity,
            probability=None,
            rule=RULE,
            upper_face_involvement=m.upper_face["involvement"],
        )
        for m in (central, peripheral)
    ]
    assert [c.label for c in calls] == [PARALYSIS, PARALYSIS]
    assert [c.pattern for c in calls] == [CENTRAL, PERIPHERAL]


@pytest.mark.parametrize(
    "involvement, pattern",
    [
        (0.0, CENTRAL),
        (RULE.pattern_central_below, UNDETERMINED),
        (RULE.pattern_peripheral_at, PERIPHERAL),
        (None, UNDETERMINED),
    ],
)
def test_the_pattern_follows_the_upper_face_with_an_undetermined_band(involvement, pattern):
    assert pattern_of(label=PARALYSIS, upper_face_involvement=involvement, rule=RULE) == pattern
    assert pattern_of(label=INCONCLUSIVE, upper_face_involvement=involvement, rule=RULE) == pattern


def test_a_negative_result_names_no_pattern():
    assert pattern_of(label=NO_PARALYSIS, upper_face_involvement=0.5, rule=RULE) == ""
    assert (
        decide(asymmetry_index=0.0, severity="none", probability=None, rule=RULE, upper_face_involvement=0.5).pattern
        == ""
    )


def test_a_flagged_face_is_never_severity_none():
    middle = (RULE.asymmetry_negative_below + RULE.asymmetry_positive_at) / 2
    assert decide(asymmetry_index=middle, severity="none", probability=None, rule=RULE).severity == "mild"


def test_the_rest_rule_sits_at_quantiles_of_the_healthy_spread():
    leans = np.random.default_rng(0).normal(0, 0.2, size=4000)
    rule = calibration.fit_rest_rule(leans)
    spread = float(np.sqrt(np.mean(leans**2)))
    assert rule.asymmetry_negative_below == pytest.approx(round(1.780 * spread, 2), abs=0.011)
    assert rule.asymmetry_positive_at == pytest.approx(round(2.241 * spread, 2), abs=0.011)
    assert np.mean(np.abs(leans) < rule.asymmetry_negative_below) == pytest.approx(0.925, abs=0.02)


def test_the_rest_rule_needs_enough_healthy_faces():
    with pytest.raises(ValueError):
        calibration.fit_rest_rule(np.array([0.1, 0.2]))


def test_the_pattern_threshold_separates_the_two_kinds_and_leaves_a_band():
    involvement = np.array([0.001, 0.004, 0.008, 0.03, 0.05, 0.07])
    peripheral = np.array([False, False, False, True, True, True])
    threshold = calibration.fit_pattern_threshold(involvement, peripheral)
    assert 0.008 < threshold < 0.03
    rule = calibration.with_pattern_threshold(RULE, threshold)
    assert rule.pattern_central_below < threshold < rule.pattern_peripheral_at
    with pytest.raises(ValueError):
        calibration.fit_pattern_threshold(involvement, np.ones(6, bool))


def test_the_shipped_rule_has_an_inconclusive_band_and_a_pattern_band():
    assert RULE.asymmetry_negative_below < RULE.asymmetry_positive_at
    assert RULE.pattern_central_below < RULE.pattern_peripheral_at


def test_the_explanation_gives_the_patterns_arithmetic_only_where_the_rule_had_one():
    from inference.engine.decide import explain

    rule = RULE.as_dict()
    steps = explain(asymmetry_index=1.2, probability=None, rule=rule, pattern=CENTRAL, upper_face_involvement=0.004)
    assert steps[-1] == (
        f"Pattern central: the lower lids differ by 0.004 of an eye's width (central below "
        f"{RULE.pattern_central_below:g}, peripheral from {RULE.pattern_peripheral_at:g}, "
        "undetermined between)."
    )
    old = {key: value for key, value in rule.items() if not key.startswith("pattern_")}
    assert not any(
        step.startswith("Pattern")
        for step in explain(
            asymmetry_index=1.2, probability=None, rule=old, pattern=CENTRAL, upper_face_involvement=0.004
        )
    )
