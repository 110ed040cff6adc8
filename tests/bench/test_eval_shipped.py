"""bench/eval_shipped.py's decisions are the worker's (issue 40, item 10): judged on each photo's interval,
and a figure that cannot be anything but 0 is not printed as one."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from bench.eval_shipped import decision_flips, labels_of, widths_of
from inference.engine.decide import ASYMMETRY_ONLY_RULE, INCONCLUSIVE, NO_PARALYSIS, PARALYSIS, DecisionRule

FUSED = DecisionRule.from_thresholds(
    {"classifier_weight": 0.5, "fused_positive_at": 0.55, "fused_negative_below": 0.45}, name="fused"
)


def test_it_decides_each_photo_on_its_own_interval_as_the_worker_does():
    """0.45 is past the positive threshold (0.42), but with ± 0.05 the interval reaches below it: the
    worker calls it inconclusive, and so must the figures of the model card."""
    index = np.array([0.45, 0.45, 0.2])
    labels = labels_of([None] * 3, index, ASYMMETRY_ONLY_RULE, np.array([0.0, 0.05, 0.05]))
    assert labels.tolist() == [PARALYSIS, INCONCLUSIVE, NO_PARALYSIS]


def test_it_says_no_decision_can_change_at_weight_0_instead_of_printing_0_percent():
    p, changed = np.array([0.1, 0.9]), np.array([0.9, 0.1])
    index, widths = np.array([0.45, 0.45]), np.array([0.0, 0.0])
    second_reader = DecisionRule.from_thresholds({"classifier_weight": 0.0}, name="second reader")
    assert decision_flips(changed, p, index, second_reader, widths) is None
    # With a weight, the same change of P does change decisions, and the figure says so.
    assert decision_flips(changed, p, index, FUSED, widths) == pytest.approx(1.0)


def test_it_refuses_a_pack_that_carries_no_repeatability():
    with pytest.raises(SystemExit, match="no repeatability"):
        widths_of(SimpleNamespace(half_widths=None), Path("var/palda128.npz"))
