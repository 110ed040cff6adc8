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
    """The version's own held-out figures, on photos it never trained on, first choice first: an
    evaluation it scored itself (register_model --evaluate-on, or bench/eval_shipped.py on a set it never
    learnt from), its held-out stroke-faces fold (bench/eval_shipped.py: at the record's weight, and at
    the weight palda-dev chose, the stroke veto), then train_classifier's test split.

    Not the palda-dev figures of a version that learnt from palda-dev: cross-fitted siblings scored
    those, each on the people it held out (bench/ship_model.py records ``scored_by``; records written
    before it did say so in their source), and they say nothing of this version's weights."""
    metrics = version.metrics or {}
    evaluation = metrics.get("evaluation") or {}
    figures = []
    if evaluation and not _scored_by_siblings(evaluation):
        figures.append((evaluation, f"evaluation on {evaluation.get('source')}"))
    stroke = metrics.get("stroke_faces_fold0")
    if isinstance(stroke, dict):
        figures.append((_figures(stroke), "its held-out stroke-faces fold"))
    veto = evaluation.get("stroke_veto")
    if isinstance(veto, dict):  # the version's own scores on stroke-faces, at the weight palda-dev chose
        figures.append((_figures(veto), "its held-out stroke-faces fold"))
    figures.append((metrics, "train_classifier's test split"))
    return figures


def _scored_by_siblings(evaluation: dict) -> bool:
    scored_by = evaluation.get("scored_by")
    if scored_by is not None:
        return scored_by == "cross-fitted"
    return "cross-fitted" in str(evaluation.get("source", ""))


def _figures(flat: dict) -> dict:
    """bench/eval_shipped.py's flat {"classifier", "index", "fused", "weight"} as an evaluation's figures."""
    return {
        "classifier": {"roc_auc": flat.get("classifier")},
        "asymmetry_index": {"roc_auc": flat.get("index")},
        "fused": {"roc_auc": flat.get("fused"), "weight": flat.get("weight")},
    }


def _roc_auc(figures: dict, key: str) -> float | None:
    figure = (figures.get(key) or {}).get("roc_auc")
    return float(figure) if isinstance(figure, (int, float)) and np.isfinite(figure) else None


def held_out_auc(version: ModelVersion) -> tuple[float, str] | None:
    """The classifier's own held-out ROC AUC and where it comes from (the first of _held_out_figures
    that has one); None when the version was never evaluated on photos it never trained on."""
    for figures, source in _held_out_figures(version):
        auc = _roc_auc(figures, "classifier")
        if auc is not None:
            return auc, source
    return None


def held_out_fusion(version: ModelVersion, *, weight: float) -> list[tuple[float, float, str]]:
    """Every own held-out (fused ROC AUC, index ROC AUC, source) that speaks for ``weight``: a fused
    figure measured at another weight (when its producer recorded the weight) is not evidence for this one."""
    found = []
    for figures, source in _held_out_figures(version):
        fused, index = _roc_auc(figures, "fused"), _roc_auc(figures, "asymmetry_index")
        measured_at = (figures.get("fused") or {}).get("weight")
        if isinstance(measured_at, (int, float)) and abs(float(measured_at) - weight) > 1e-9:
            continue
        if fused is not None and index is not None:
            found.append((fused, index, source))
    return found


def activation_problems(version: ModelVersion) -> list[str]:
    """Why this version may not decide, or be shown as a second reader ([] when it may).

    A version whose rule gives the classifier a weight decides: its own held-out ROC AUC must reach
    MODEL_ACTIVATION_AUC_FLOOR (0.80), and its fused score at that weight must rank none of its own
    held-out sets below the asymmetry index alone. With weight 0 it is a second reader, shown and not deciding:
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
        worse = [f for f in held_out_fusion(version, weight=weight) if f[0] < f[1]] if weight > 0 else []
        if worse:
            # A weight fitted on one validation split can do this (docs/model-card.md, the five-fold
            # table's round 3): the classifier would then cost screening what the index alone catches, on
            # photos like those. Any one of the version's own held-out sets showing it is enough.
            fused, index, source = worse[0]
            problems.append(
                f"with classifier weight {weight:g} its fused rule ranks its held-out photos below the asymmetry "
                f"index alone ({fused:.3f} against {index:.3f} ROC AUC, {source}): give it weight 0 "
                "to show it as a second reader"
            )
    return problems
