"""Evaluation maths shared by training and the benchmarks (numpy only; sklearn is not a dependency).

Every function takes ``labels`` (1 = paralysis, the positive class) before ``scores`` (higher = more
likely paralysis), as sklearn does. A threshold ``t`` calls a score positive when ``score >= t``.
"""

from __future__ import annotations

import math
import re

import numpy as np

from inference.engine.classifier import CLASSES


def person_of(kind: str, name: str) -> str:
    """palda-dev's person of a photo (its class folder and file name): numbered variants of one patient
    (image0011, image0012) are one person, and stay on one side of every split."""
    stem = name.rsplit(".", 1)[0]
    match = re.match(r"^image(\d{3})\d$", stem)
    return f"{kind}/image{match.group(1)}" if match else f"{kind}/{stem}"


def deal_folds(groups: np.ndarray, classes: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Each class's people (``groups``) dealt at random into ``folds`` folds: every photo of a person
    in one fold, and each fold with its share of every class."""
    rng = np.random.default_rng(seed)
    fold = np.zeros(len(groups), dtype=int)
    for cls in np.unique(classes):
        people = np.unique(groups[classes == cls])
        rng.shuffle(people)
        for k, person in enumerate(people):
            fold[groups == person] = k % folds
    return fold


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Mann-Whitney AUC with average ranks for ties: P(positive's score > negative's), ties half;
    nan without both classes."""
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=float)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    _, first, counts = np.unique(scores[order], return_index=True, return_counts=True)
    ranks[order] = np.repeat(first + (counts + 1) / 2.0, counts)  # 1-based average rank of each tie block
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def roc_curve(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False and true positive rates at every distinct score, from (0, 0) at threshold +inf down to
    (1, 1) at the lowest score; returns (fpr, tpr, thresholds), all of one length."""
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=float)
    thresholds = np.concatenate([[np.inf], np.unique(scores)[::-1]])
    pos, neg = np.sort(scores[labels]), np.sort(scores[~labels])
    # counts of scores >= t, without an N x T comparison matrix
    tpr = (len(pos) - np.searchsorted(pos, thresholds, side="left")) / max(len(pos), 1)
    fpr = (len(neg) - np.searchsorted(neg, thresholds, side="left")) / max(len(neg), 1)
    return fpr, tpr, thresholds


def threshold_at_specificity(labels: np.ndarray, scores: np.ndarray, specificity: float) -> float:
    """Threshold t with P(negative < t) >= specificity: the next negative score above the required
    share (or just above a tied one). Without negatives, the top score, so almost nothing is positive."""
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=float)
    ordered = np.sort(scores[~labels])
    if len(ordered) == 0:
        return float(np.max(scores)) if len(scores) else float("nan")
    k = int(math.ceil(specificity * len(ordered)))  # at least k negatives must lie strictly below t
    if k <= 0:
        return float(ordered[0])
    if k >= len(ordered):
        return float(np.nextafter(ordered[-1], np.inf))
    return float(np.nextafter(ordered[k - 1], np.inf)) if ordered[k] == ordered[k - 1] else float(ordered[k])


def threshold_at_sensitivity(labels: np.ndarray, scores: np.ndarray, sensitivity: float) -> float:
    """Largest threshold t with P(positive >= t) >= sensitivity. Without positives, the lowest score,
    so almost nothing is called negative."""
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=float)
    ordered = np.sort(scores[labels])[::-1]
    if len(ordered) == 0:
        return float(np.min(scores)) if len(scores) else float("nan")
    k = int(math.ceil(sensitivity * len(ordered)))
    return float(ordered[min(max(k - 1, 0), len(ordered) - 1)])


def sensitivity_at_specificity(labels: np.ndarray, scores: np.ndarray, specificity: float) -> float:
    """Sensitivity at the threshold_at_specificity of the same photos (an optimistic, in-sample figure);
    nan without both classes."""
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=float)
    if labels.all() or not labels.any():
        return float("nan")
    return float((scores[labels] >= threshold_at_specificity(labels, scores, specificity)).mean())


def group_bootstrap_auc(
    labels: np.ndarray, scores: np.ndarray, groups: np.ndarray, n_boot: int, seed: int
) -> tuple[float, float]:
    """95% interval of the ROC AUC, resampling whole near-duplicate groups: copies of one photo are
    not independent, so resampling photos would give too narrow an interval."""
    labels, scores = np.asarray(labels), np.asarray(scores)
    return group_bootstrap(lambda pick: roc_auc(labels[pick], scores[pick]), groups, n_boot=n_boot, seed=seed)


def group_bootstrap_rate(hits: np.ndarray, groups: np.ndarray, n_boot: int, seed: int) -> tuple[float, float]:
    """95% interval of a proportion (the mean of boolean ``hits``), resampling whole groups (photos of
    one person, or near-duplicates of one photo)."""
    hits = np.asarray(hits, dtype=float)
    return group_bootstrap(lambda pick: float(hits[pick].mean()), groups, n_boot=n_boot, seed=seed)


def group_bootstrap(statistic, groups: np.ndarray, *, n_boot: int, seed: int) -> tuple[float, float]:
    """2.5th and 97.5th percentiles of ``statistic(indices)`` over resamples of whole groups."""
    groups = np.asarray(groups)
    rng = np.random.default_rng(seed)
    ids = np.unique(groups)
    if len(ids) == 0:
        return float("nan"), float("nan")
    members = [np.nonzero(groups == g)[0] for g in ids]
    values = []
    for _ in range(n_boot):
        value = statistic(np.concatenate([members[i] for i in rng.integers(0, len(ids), len(ids))]))
        if not math.isnan(value):
            values.append(value)
    if not values:
        return float("nan"), float("nan")
    return float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))


def classification_report(
    labels: np.ndarray, scores: np.ndarray, threshold: float, class_names: tuple[str, str] = CLASSES
) -> dict:
    """Accuracy, per-class precision/recall/F1, weighted F1, ROC AUC, sensitivity at 90% specificity
    and the confusion matrix (rows true, columns predicted) of ``score >= threshold``."""
    labels = np.asarray(labels).astype(int)
    scores = np.asarray(scores, dtype=float)
    predicted = (scores >= threshold).astype(int)
    report: dict = {
        "n": int(len(labels)),
        "threshold": float(threshold),
        "accuracy": float(np.mean(predicted == labels)) if len(labels) else float("nan"),
    }
    confusion = [[int(np.sum((labels == t) & (predicted == p))) for p in (0, 1)] for t in (0, 1)]
    report["confusion_matrix"] = {"rows_true_cols_predicted": list(class_names), "matrix": confusion}
    f1s, supports = [], []
    for label, name in enumerate(class_names):
        tp = np.sum((predicted == label) & (labels == label))
        precision = tp / max(np.sum(predicted == label), 1)
        recall = tp / max(np.sum(labels == label), 1)
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        report[name] = {
            "precision": float(precision),
            "recall": float(recall),
            "f1": float(f1),
            "support": int(np.sum(labels == label)),
        }
        f1s.append(f1)
        supports.append(np.sum(labels == label))
    report["weighted_f1"] = float(np.average(f1s, weights=supports)) if sum(supports) else float("nan")
    report["roc_auc"] = roc_auc(labels, scores)
    report["sensitivity_at_90_specificity"] = sensitivity_at_specificity(labels, scores, 0.9)
    return report
