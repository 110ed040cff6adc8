"""Repeatability (issue 28): a second photo of the same face gives the same index within the result's
stated repeatability, the uncertainty grows where the photo is worse, and an interval across a
threshold is a review item, not a coin toss. The faces are the test suite's astronaut, as is and with
drawn droops; bench/repeatability.py measures the same on the data sets."""

from __future__ import annotations

import io
import math

import cv2
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from inference.engine import calibration, repeatability
from inference.engine.decide import (
    ASYMMETRY_ONLY_RULE,
    INCONCLUSIVE,
    NO_PARALYSIS,
    PARALYSIS,
    REPEATABILITY_MEANING,
    DecisionRule,
    decide,
    explain,
)
from inference.engine.face import FaceMeshDetector
from inference.engine.pipeline import Pipeline
from tests.faces import astronaut, drooped_astronaut


def _jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


def _resize(rgb: np.ndarray, factor: float) -> np.ndarray:
    height, width = rgb.shape[:2]
    size = (round(width * factor), round(height * factor))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC)


def _turn(rgb: np.ndarray, degrees: float) -> np.ndarray:
    height, width = rgb.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, 1.0)
    return cv2.warpAffine(rgb, matrix, (width, height), borderMode=cv2.BORDER_REPLICATE)


# The ways a second photo of the same face differs (the variants).
VARIANTS = {
    "jpeg quality 75": lambda rgb: _jpeg(rgb, 75),
    "0.7x": lambda rgb: _resize(rgb, 0.7),
    "0.9x": lambda rgb: _resize(rgb, 0.9),
    "1.4x": lambda rgb: _resize(rgb, 1.4),
    "reframed": lambda rgb: np.ascontiguousarray(rgb[15:-25, 20:-10]),
    "turned 4 degrees": lambda rgb: _turn(rgb, 4.0),
    "mirrored": lambda rgb: np.ascontiguousarray(rgb[:, ::-1]),
}
FACES = {
    "astronaut": lambda: astronaut(),
    "left droop": lambda: drooped_astronaut(side="left", pixels=16),
    "right droop": lambda: drooped_astronaut(side="right", pixels=10),
}


@pytest.fixture(scope="module")
def pipeline():
    return Pipeline()


@pytest.fixture(scope="module")
def single_fit_pipeline():
    """The engine before the canonical refits: one fit of the photo and one of its mirror."""
    return Pipeline(detector=FaceMeshDetector(jitters=()))


@pytest.fixture(scope="module")
def measured(pipeline, single_fit_pipeline):
    """face -> variant -> (new analysis, single-fit analysis); "" is the unchanged photo."""
    table = {}
    for face, make in FACES.items():
        rgb = make()
        table[face] = {
            name: tuple(p.analyze(Image.fromarray(change(rgb))) for p in (pipeline, single_fit_pipeline))
            for name, change in {"": lambda x: x, **VARIANTS}.items()
        }
    return table


@pytest.mark.parametrize("face", FACES)
def test_a_second_photo_gives_the_same_index_within_the_stated_repeatability(measured, face):
    first = measured[face][""][0]
    assert first.status == "done"
    for name in VARIANTS:
        second = measured[face][name][0]
        assert second.status == "done", name
        a, b = first.measurements, second.measurements
        assert not repeatability.beyond_noise(
            a["asymmetry_index"], a["index_repeatability"], b["asymmetry_index"], b["index_repeatability"]
        ), (name, a["asymmetry_index"], b["asymmetry_index"])
        # The label does not flip between "sent to a clinician" and "not".
        assert (first.label == NO_PARALYSIS) == (second.label == NO_PARALYSIS), name


def test_the_canonical_refits_steady_the_index_where_a_single_fit_wobbled(measured):
    """On the drooped faces one fit moved the index by 0.15-0.16 when the photo was reframed or
    shrunk to 0.7x; the refits keep every variant within 0.1 (fails with jitters=())."""
    worst_new, worst_single = 0.0, 0.0
    for face in ("left droop", "right droop"):
        base_new, base_single = (a.measurements["asymmetry_index"] for a in measured[face][""])
        for name in VARIANTS:
            new, single = (a.measurements["asymmetry_index"] for a in measured[face][name])
            worst_new = max(worst_new, abs(new - base_new))
            worst_single = max(worst_single, abs(single - base_single))
    assert worst_new < 0.1
    assert worst_single > 0.1  # the control: the old engine, on the same photos


def test_a_result_carries_its_interval(measured):
    result = measured["left droop"][""][0]
    m = result.measurements
    low, high = m["index_interval"]
    assert low == pytest.approx(max(m["asymmetry_index"] - m["index_repeatability"], 0), abs=0.002)
    assert high == pytest.approx(m["asymmetry_index"] + m["index_repeatability"], abs=0.002)
    assert m["refits"] == 3
    assert result.decision["index_uncertainty"] == pytest.approx(m["index_repeatability"], abs=0.001)


def test_the_uncertainty_grows_on_a_blurred_or_small_face(pipeline):
    # A 1024-px photo of the astronaut, so that her face is large enough for the reference width.
    sharp_rgb = _resize(astronaut(), 2.0)
    sharp = pipeline.analyze(Image.fromarray(sharp_rgb))
    blurred = pipeline.analyze(Image.fromarray(cv2.GaussianBlur(sharp_rgb, (0, 0), 2.0)))
    small = pipeline.analyze(Image.fromarray(_resize(sharp_rgb, 0.45)))
    for result in (sharp, blurred, small):
        assert result.status == "done"
    width = {
        name: r.measurements["index_repeatability"]
        for name, r in (("sharp", sharp), ("blurred", blurred), ("small", small))
    }
    assert width["blurred"] > 1.2 * width["sharp"], width
    assert width["small"] > 1.2 * width["sharp"], width


REF = {"eye_distance_px": repeatability.REFERENCE_EYE_PX, "sharpness": repeatability.REFERENCE_SHARPNESS}


def test_half_width_grows_on_smaller_faces_and_softer_photos():
    assert repeatability.half_width(**REF) == pytest.approx(repeatability.FLOOR)
    assert repeatability.half_width(eye_distance_px=30, sharpness=REF["sharpness"]) == pytest.approx(
        2 * repeatability.half_width(**REF)
    )
    assert repeatability.half_width(eye_distance_px=REF["eye_distance_px"], sharpness=3.75) == pytest.approx(
        2 * repeatability.half_width(**REF)
    )


def test_it_widens_the_interval_with_the_photos_own_refit_spread_at_every_spread():
    """Issue 40, item 8: the spread counted only past 0.19, so 84 of palda-dev's 102 photos got exactly
    the index's function. A usual spread (palda-dev's median 0.055, its 95th percentile 0.156) widens it."""
    agreeing, median, wide = (repeatability.half_width(**REF, fits_spread=s) for s in (0.0, 0.055, 0.156))
    assert agreeing < median < wide
    assert wide == pytest.approx(math.hypot(repeatability.FLOOR, repeatability.SPREAD_GAIN * 0.156))


def test_it_widens_the_interval_of_a_turned_face():
    assert (
        repeatability.half_width(**REF, yaw=0.3)
        > repeatability.half_width(**REF, yaw=0.1)
        > (repeatability.half_width(**REF))
    )


def test_a_photo_whose_refits_all_lost_the_face_gets_a_wider_interval_and_a_warning(pipeline, monkeypatch):
    """The spread of no refits is 0: it used to give the narrowest interval and no warning. Measured by
    one fit alone, the photo's index moves more between photos (NO_REFIT, fitted on the bench's
    single-fit pairs)."""
    rgb = drooped_astronaut(side="left", pixels=16)
    refitted = pipeline.analyze(Image.fromarray(rgb))
    monkeypatch.setattr(FaceMeshDetector, "refit", lambda self, rgb, search: search)  # every copy lost
    alone = Pipeline().analyze(Image.fromarray(rgb))
    assert alone.status == "done" and alone.measurements["refits"] == 0
    assert alone.measurements["index_repeatability"] > 1.5 * refitted.measurements["index_repeatability"]
    assert "refits_failed" in [w["code"] for w in alone.quality["warnings"]]
    assert "refits_failed" not in [w["code"] for w in refitted.quality["warnings"]]


def test_a_borderline_face_whose_interval_straddles_the_positive_threshold_is_inconclusive():
    rule = ASYMMETRY_ONLY_RULE
    index = rule.asymmetry_positive_at + 0.03
    assert decide(asymmetry_index=index, severity="mild", probability=None, rule=rule).label == PARALYSIS
    straddling = decide(asymmetry_index=index, severity="mild", probability=None, rule=rule, uncertainty=0.05)
    assert straddling.label == INCONCLUSIVE
    # The same with the classifier as a second reader (weight 0): its probability decides nothing, so
    # the index's path, interval and all, decides (test_a_fused_rule_judges_the_whole_interval below
    # tests the fused path).
    second = rule.__class__(**{**rule.as_dict(), "classifier_weight": 0.0, "fused_negative_below": 0.42})
    assert decide(asymmetry_index=index, severity="mild", probability=0.9, rule=second, uncertainty=0.05).label == (
        INCONCLUSIVE
    )
    steps = explain(asymmetry_index=index, probability=None, rule=straddling.rule)
    assert any(REPEATABILITY_MEANING in step and "0.40–0.50" in step for step in steps)


def test_a_fused_rule_judges_the_whole_interval():
    """A deciding classifier (weight 0.5): the fused score at each end of index ± h must give the label.
    With P 0.6 the fused score reaches 0.55 where the index's score reaches 0.5, at the index threshold."""
    rule = DecisionRule.from_thresholds(
        {"classifier_weight": 0.5, "fused_positive_at": 0.55, "fused_negative_below": 0.45}, name="fused"
    )
    index = rule.asymmetry_positive_at + 0.03

    def label(uncertainty: float, at: float = index) -> str:
        return decide(asymmetry_index=at, severity="mild", probability=0.6, rule=rule, uncertainty=uncertainty).label

    assert label(0.0) == PARALYSIS and label(0.02) == PARALYSIS
    assert label(0.05) == INCONCLUSIVE  # the interval's bottom is below the point where fused reaches 0.55
    assert label(0.0, at=0.05) == NO_PARALYSIS and label(0.5, at=0.05) == INCONCLUSIVE


@given(index=st.floats(0, 5), uncertainty=st.floats(0, 1))
def test_a_label_holds_only_where_the_whole_interval_gives_it(index, uncertainty):
    rule = ASYMMETRY_ONLY_RULE
    label = decide(asymmetry_index=index, severity="mild", probability=None, rule=rule, uncertainty=uncertainty).label
    low, high = max(index - uncertainty, 0.0), index + uncertainty
    assert (label == PARALYSIS) == (low >= rule.asymmetry_positive_at)
    assert (label == NO_PARALYSIS) == (high < rule.asymmetry_negative_below)
    if uncertainty == 0:
        assert label == decide(asymmetry_index=index, severity="mild", probability=None, rule=rule).label


def test_changes_between_visits_are_read_against_both_photos_repeatability():
    assert repeatability.beyond_noise(0.62, 0.08, 0.31, 0.08)
    assert not repeatability.beyond_noise(0.62, 0.08, 0.55, 0.08)
    # Together the two photos may differ by hypot(0.06, 0.08) = 0.10.
    assert not repeatability.beyond_noise(0.30, 0.06, 0.39, 0.08)
    assert repeatability.beyond_noise(0.30, 0.06, 0.41, 0.08)


@given(
    spread=st.floats(0.05, 0.5),
    index=st.floats(0, 3),
    eye_distance_px=st.floats(10, 400),
    sharpness=st.floats(0.5, 200),
    fits_spread=st.floats(0, 0.5),
    yaw=st.floats(0, 0.45),
    refitted=st.booleans(),
)
def test_repeatability_never_calls_a_face_negative_above_the_healthy_quantile(
    spread, index, eye_distance_px, sharpness, fits_spread, yaw, refitted
):
    """The interval rule's threshold sits the narrowest half-width above the 92.5th percentile: a
    sure photo keeps the quantile's decision, a less sure one can only lose its negative."""
    leans = np.random.default_rng(0).normal(0, spread, size=400)
    rule = calibration.fit_rest_rule(leans, interval_rule=True)
    quantile = calibration.half_normal_quantile(calibration.NEGATIVE_QUANTILE, float(np.sqrt(np.mean(leans**2))))
    width = repeatability.half_width(
        eye_distance_px=eye_distance_px, sharpness=sharpness, fits_spread=fits_spread, yaw=yaw, refitted=refitted
    )
    label = decide(asymmetry_index=index, severity="mild", probability=None, rule=rule, uncertainty=width).label
    if index >= quantile + 0.005:  # the threshold is rounded to two decimals
        assert label != NO_PARALYSIS
    # The surest photo just below the quantile is still called negative.
    sure = repeatability.half_width(eye_distance_px=200, sharpness=100)
    assert (
        decide(asymmetry_index=quantile - 0.01, severity="none", probability=None, rule=rule, uncertainty=sure).label
        == NO_PARALYSIS
    )
