"""Reads of the model registry: may a version decide, and how the active one is doing.

The worker's side (loading the active version) is inference/runtime.py; registering and activating
are inference/services.py.
"""

from __future__ import annotations

import numpy as np
from django.conf import settings

from inference.models import ModelVersion


def classifier_problem() -> str:
    """Why the active classifier is not screening ("" when it is, or when none is active): a worker
    could not load its checkpoint and the asymmetry rule decides alone."""
    version = ModelVersion.objects.filter(is_active=True).exclude(load_error="").values("name", "load_error").first()
    if version is None:
        return ""
    return (
        f"The active classifier {version['name']} could not be used ({version['load_error']}); "
        "scans are screened by the asymmetry rule alone until a working version is activated."
    )


def classifier_health() -> str:
    """/healthz's line for the classifier."""
    problem = classifier_problem()
    if problem:
        return f"degraded: {problem}"
    name = ModelVersion.objects.filter(is_active=True).values_list("name", flat=True).first()
    return f"ok ({name})" if name else "ok (none active: the asymmetry rule decides)"


def _held_out_figures(version: ModelVersion) -> list[tuple[dict, str]]:
    """The version's held-out figures, first choice first: an --evaluate-on run on photos it never
    trained on, then train_classifier's test split."""
    metrics = version.metrics or {}
    evaluation = metrics.get("evaluation") or {}
    return [(evaluation, f"evaluation on {evaluation.get('source')}"), (metrics, "train_classifier's test split")]


def _roc_auc(figures: dict, key: str) -> float | None:
    figure = (figures.get(key) or {}).get("roc_auc")
    return float(figure) if isinstance(figure, (int, float)) and np.isfinite(figure) else None


def held_out_auc(version: ModelVersion) -> tuple[float, str] | None:
    """The classifier's held-out ROC AUC and where it comes from: an --evaluate-on run if there is one,
    else train_classifier's test split; None when the version was never evaluated."""
    for figures, source in _held_out_figures(version):
        auc = _roc_auc(figures, "classifier")
        if auc is not None:
            return auc, source
    return None


def held_out_fusion(version: ModelVersion) -> tuple[float, float, str] | None:
    """The fused score's and the asymmetry index's ROC AUC on the same held-out photos, and where they
    come from (the first source of held_out_auc's order with both); None when none has both."""
    for figures, source in _held_out_figures(version):
        fused, index = _roc_auc(figures, "fused"), _roc_auc(figures, "asymmetry_index")
        if fused is not None and index is not None:
            return fused, index, source
    return None


def activation_problems(version: ModelVersion) -> list[str]:
    """Why this version may not decide, or be shown as a second reader ([] when it may).

    A version whose rule gives the classifier a weight decides: its held-out ROC AUC must reach
    MODEL_ACTIVATION_AUC_FLOOR (0.80), and its fused score must rank the same held-out photos no worse
    than the asymmetry index alone. With weight 0 it is a second reader, shown and not deciding:
    it still needs a held-out evaluation, and an ROC AUC of MODEL_SECOND_READER_AUC_FLOOR (0.65)."""
    problems = []
    thresholds = version.thresholds or {}
    try:
        negative, positive = float(thresholds["fused_negative_below"]), float(thresholds["fused_positive_at"])
        weight = float(thresholds["classifier_weight"])
    except (KeyError, TypeError, ValueError):
        weight = None
    deciding = weight is None or weight > 0
    floor = settings.MODEL_ACTIVATION_AUC_FLOOR if deciding else settings.MODEL_SECOND_READER_AUC_FLOOR
    auc = held_out_auc(version)
    if auc is None:
        problems.append(
            "it has no held-out evaluation (train it with train_classifier, or register it with "
            "--evaluate-on a folder of labelled photos it never trained on)"
        )
    elif auc[0] < floor:
        problems.append(
            f"its held-out ROC AUC is {auc[0]:.3f} ({auc[1]}), below the floor of {floor:.2f}"
            + ("" if deciding else " for a second reader")
        )
    if weight is None:
        problems.append(
            "its thresholds are incomplete (fused_negative_below, fused_positive_at and classifier_weight are needed)"
        )
    else:
        if not 0 < negative < positive < 1:
            problems.append(
                f"its thresholds leave no inconclusive band (negative below {negative}, positive from "
                f"{positive}): borderline faces would not reach a clinician for review"
            )
        if not 0 <= weight <= 1:  # 0: a second reader, shown and not deciding
            problems.append(f"its classifier weight {weight} is outside [0, 1]")
        fusion = held_out_fusion(version) if weight > 0 else None
        if fusion is not None and fusion[0] < fusion[1]:
            # A weight fitted on one validation split can do this (docs/model-card.md, the five-fold
            # table's round 3): the classifier would then cost screening what the index alone catches.
            problems.append(
                f"with classifier weight {weight:g} its fused rule ranks its held-out photos below the asymmetry "
                f"index alone ({fusion[0]:.3f} against {fusion[1]:.3f} ROC AUC, {fusion[2]}): give it weight 0 "
                "to show it as a second reader"
            )
    return problems
