"""The evaluation maths shared by training and bench/, against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from inference.engine import evaluation


def test_roc_auc_matches_the_definition():
    labels = np.array([0, 0, 1, 1])
    # positive/negative pairs: (0.35 > 0.1), (0.35 < 0.4), (0.8 > 0.1), (0.8 > 0.4): 3 of 4
    assert evaluation.roc_auc(labels, np.array([0.1, 0.4, 0.35, 0.8])) == 0.75
    assert evaluation.roc_auc(labels, np.array([0.5, 0.5, 0.5, 0.5])) == 0.5
    # positives {2, 3, 1}, negatives {1, 2}: 1 + 0.5 + 1 + 1 + 0.5 + 0 = 4 of 6 pairs (ties count half)
    assert evaluation.roc_auc(np.array([0, 1, 0, 1, 1]), np.array([1, 2, 2, 3, 1])) == pytest.approx(4 / 6)
    assert math.isnan(evaluation.roc_auc(np.array([1, 1]), np.array([0.2, 0.3])))


def test_roc_curve_runs_from_0_0_to_1_1_and_its_area_is_the_auc():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 300)
    scores = np.round(rng.normal(labels * 0.8, 1.0), 1)  # rounded: plenty of ties
    fpr, tpr, thresholds = evaluation.roc_curve(labels, scores)
    assert len(fpr) == len(tpr) == len(thresholds)
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    area = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))  # trapezoids count ties as half
    assert area == pytest.approx(evaluation.roc_auc(labels, scores))


def test_threshold_at_specificity_reaches_the_requested_specificity():
    negatives = np.arange(1, 11) / 10  # 0.1 ... 1.0
    labels = np.zeros(10, int)
    assert evaluation.threshold_at_specificity(labels, negatives, 0.9) == 1.0  # 9 of 10 lie below 1.0
    assert evaluation.threshold_at_specificity(labels, negatives, 1.0) > 1.0
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 200)
    scores = np.round(rng.random(200), 1)  # ties
    negatives = scores[labels == 0]
    for specificity in (0.5, 0.8, 0.9, 0.95, 1.0):
        threshold = evaluation.threshold_at_specificity(labels, scores, specificity)
        assert (negatives < threshold).mean() >= specificity
        # no lower negative score would do
        assert not any((negatives < s).mean() >= specificity for s in negatives if s < threshold)


def test_threshold_at_sensitivity_and_sensitivity_at_specificity():
    positives = np.arange(1, 11) / 10
    assert evaluation.threshold_at_sensitivity(np.ones(10, int), positives, 0.9) == 0.2  # 9 of 10 are >= 0.2
    labels = np.array([0, 0, 0, 1, 1])
    scores = np.array([0.1, 0.6, 0.2, 0.7, 0.4])
    # 90% of 3 negatives needs all three below the threshold, so only 0.7 of the positives is above it
    assert evaluation.sensitivity_at_specificity(labels, scores, 0.9) == 0.5
    assert math.isnan(evaluation.sensitivity_at_specificity(np.ones(3, int), np.ones(3), 0.9))


def test_group_bootstrap_interval_brackets_the_auc():
    rng = np.random.default_rng(2)
    groups = np.repeat(np.arange(40), 5)
    labels = (groups % 2).astype(int)
    scores = rng.normal(labels * 1.0, 1.0)
    low, high = evaluation.group_bootstrap_auc(labels, scores, groups, 200, seed=0)
    assert 0.0 <= low < evaluation.roc_auc(labels, scores) < high <= 1.0
    assert (low, high) == evaluation.group_bootstrap_auc(labels, scores, groups, 200, seed=0)


def test_classification_report_by_hand():
    labels = np.array([0, 0, 0, 1, 1])
    scores = np.array([0.1, 0.6, 0.2, 0.7, 0.4])
    report = evaluation.classification_report(labels, scores, 0.5)  # predicted 0, 1, 0, 1, 0
    assert report["confusion_matrix"]["matrix"] == [[2, 1], [1, 1]]
    assert report["confusion_matrix"]["rows_true_cols_predicted"] == ["no_paralysis", "paralysis"]
    assert report["accuracy"] == pytest.approx(3 / 5)
    assert report["paralysis"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert report["no_paralysis"]["f1"] == pytest.approx(2 / 3)
    assert report["weighted_f1"] == pytest.approx((3 * 2 / 3 + 2 * 0.5) / 5)
    assert report["roc_auc"] == pytest.approx(5 / 6)
    assert report["sensitivity_at_90_specificity"] == 0.5
