"""The held-out evaluation of a trained classifier: the fused rule's thresholds, metrics, robustness to
how a photo was taken, plots and the JSON record."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from inference.engine.classifier import CLASSES
from inference.engine.decide import ASYMMETRY_ONLY_RULE
from inference.engine.evaluation import (
    classification_report,
    roc_auc,
    roc_curve,
    threshold_at_sensitivity,
    threshold_at_specificity,
)
from inference.engine.training.data import PreparedSet
from inference.engine.training.fitting import predict

# --- robustness: does the model read the face or the photo? --------------------------------------


def _resampled(face: np.ndarray, factor: float) -> np.ndarray:
    import cv2

    height, width = face.shape[:2]
    small = cv2.resize(
        face, (max(8, round(width * factor)), max(8, round(height * factor))), interpolation=cv2.INTER_AREA
    )
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


def _recompressed(face: np.ndarray, quality: int) -> np.ndarray:
    import io

    buffer = io.BytesIO()
    Image.fromarray(face).save(buffer, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


# Changes to how a photo was taken that leave a droop as it is. The mirror is the control: droop on
# the other side is still droop.
PHOTO_CHANGES = {
    "mirrored (control)": lambda face: np.ascontiguousarray(face[:, ::-1]),
    "resolution 35%": lambda face: _resampled(face, 0.35),
    "JPEG quality 25": lambda face: _recompressed(face, 25),
    "darker x0.7": lambda face: (face * 0.7).astype(np.uint8),
    "brighter x1.3": lambda face: np.clip(face * 1.3, 0, 255).astype(np.uint8),
}


def robustness(
    model,
    faces: np.ndarray,
    labels: np.ndarray,
    probability: np.ndarray,
    *,
    device: str = "cpu",
    normalisation: str = "imagenet",
) -> dict:
    """ROC AUC, mean P(paralysis) per class and the share of labels (at 0.5) that flip, for held-out
    faces as they are and under each of PHOTO_CHANGES. The two classes of a data set gathered from
    different sources differ in exposure and quality; a model that learned those moves a lot here."""

    def row(p: np.ndarray) -> dict:
        return {
            "roc_auc": roc_auc(labels, p),
            "mean_p_healthy": float(p[labels == 0].mean()) if (labels == 0).any() else float("nan"),
            "mean_p_paralysis": float(p[labels == 1].mean()) if (labels == 1).any() else float("nan"),
            "flipped": float(np.mean((p >= 0.5) != (probability >= 0.5))),
        }

    report = {"as stored": row(probability)}
    for name, change in PHOTO_CHANGES.items():
        report[name] = row(
            predict(model, np.stack([change(face) for face in faces]), device=device, normalisation=normalisation)
        )
    return report


# --- fused decision and report ------------------------------------------------------------------


def fused_scores(
    probability: np.ndarray, asymmetry: np.ndarray, *, weight: float, positive_at: float, negative_below: float
) -> np.ndarray:
    from inference.engine.decide import DecisionRule, asymmetry_score

    rule = DecisionRule(name="fit", asymmetry_positive_at=positive_at, asymmetry_negative_below=negative_below)
    asym = np.array([asymmetry_score(float(a), rule) for a in asymmetry])
    return weight * probability + (1 - weight) * asym


def fit_thresholds(
    val_labels, val_prob, val_asym, *, asymmetry_positive_at: float, asymmetry_negative_below: float
) -> dict:
    """Pick the classifier's weight in the fused score by validation ROC AUC, then the fused
    thresholds: positive at 90% specificity, negative below the score that keeps 95% sensitivity."""
    best = (-1.0, 1.0)
    for weight in np.linspace(0, 1, 11):
        scores = fused_scores(
            val_prob,
            val_asym,
            weight=weight,
            positive_at=asymmetry_positive_at,
            negative_below=asymmetry_negative_below,
        )
        auc = roc_auc(val_labels, scores)
        if not math.isnan(auc) and auc > best[0] + 1e-9:
            best = (auc, float(weight))
    weight = best[1]
    scores = fused_scores(
        val_prob, val_asym, weight=weight, positive_at=asymmetry_positive_at, negative_below=asymmetry_negative_below
    )
    positive_at = threshold_at_specificity(val_labels, scores, 0.9)
    negative_below = min(positive_at, threshold_at_sensitivity(val_labels, scores, 0.95))
    return {
        "classifier_weight": weight,
        "fused_positive_at": positive_at,
        "fused_negative_below": negative_below,
        "asymmetry_positive_at": asymmetry_positive_at,
        "asymmetry_negative_below": asymmetry_negative_below,
        "validation_fused_auc": best[0],
    }


def save_plots(
    out_dir: Path, curves: dict[str, tuple[np.ndarray, np.ndarray]], confusion: list[list[int]]
) -> list[Path]:
    """ROC curves and the confusion matrix as PNG (matplotlib, headless)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    figure, axis = plt.subplots(figsize=(5, 5))
    for name, (labels, scores) in curves.items():
        fpr, tpr, _ = roc_curve(labels, scores)
        axis.plot(fpr, tpr, label=f"{name} (AUC {roc_auc(labels, scores):.3f})")
    axis.plot([0, 1], [0, 1], "--", color="grey")
    axis.set(xlabel="1 - specificity", ylabel="sensitivity", title="ROC on the held-out test split")
    axis.legend(loc="lower right")
    roc_path = out_dir / "roc.png"
    figure.savefig(roc_path, dpi=110, bbox_inches="tight")
    plt.close(figure)

    figure, axis = plt.subplots(figsize=(4, 4))
    axis.imshow(confusion, cmap="Blues")
    for i in range(2):
        for j in range(2):
            axis.text(j, i, str(confusion[i][j]), ha="center", va="center")
    axis.set_xticks([0, 1], CLASSES)
    axis.set_yticks([0, 1], CLASSES)
    axis.set(xlabel="predicted", ylabel="true", title="Confusion matrix (fused decision)")
    confusion_path = out_dir / "confusion.png"
    figure.savefig(confusion_path, dpi=110, bbox_inches="tight")
    plt.close(figure)
    return [roc_path, confusion_path]


def write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True, default=float))


CAVEAT = (
    "Near-duplicate-aware split of an augmented data set whose classes come from different sources; "
    "figures may still overstate accuracy on new patients."
)


@dataclass
class HeldOut:
    """A trained classifier judged on photos it never trained on."""

    thresholds: dict  # the fused rule's, fitted on the validation split
    metrics: dict  # classifier, asymmetry_index, fused (classification reports), robustness
    curves: dict[str, tuple[np.ndarray, np.ndarray]]  # (labels, scores) on the test split, for plots
    thresholds_on_test: bool  # the validation split was too small: fitted on the test split


def held_out(model, prepared: PreparedSet, *, normalisation: str, splits: list[str] | None = None) -> HeldOut:
    """Fit the fused rule's thresholds on the validation split, then report the classifier, the
    asymmetry index and the fused score on the test split, and the classifier under PHOTO_CHANGES."""
    val_x, val_y, val_asym = prepared.subset("val", splits)
    test_x, test_y, test_asym = prepared.subset("test", splits)
    thresholds_on_test = len(val_y) == 0 or len(set(val_y.tolist())) < 2
    if thresholds_on_test:
        val_x, val_y, val_asym = test_x, test_y, test_asym  # tiny data sets: the metrics say so
    val_prob = predict(model, val_x, device="cpu", normalisation=normalisation)
    test_prob = predict(model, test_x, device="cpu", normalisation=normalisation)
    thresholds = fit_thresholds(
        val_y,
        val_prob,
        val_asym,
        asymmetry_positive_at=ASYMMETRY_ONLY_RULE.asymmetry_positive_at,
        asymmetry_negative_below=ASYMMETRY_ONLY_RULE.asymmetry_negative_below,
    )
    fused = fused_scores(
        test_prob,
        test_asym,
        weight=thresholds["classifier_weight"],
        positive_at=thresholds["asymmetry_positive_at"],
        negative_below=thresholds["asymmetry_negative_below"],
    )
    metrics = {
        "classifier": classification_report(test_y, test_prob, 0.5),
        "asymmetry_index": classification_report(test_y, test_asym, ASYMMETRY_ONLY_RULE.asymmetry_positive_at),
        "fused": classification_report(test_y, fused, thresholds["fused_positive_at"]),
        "robustness": robustness(model, test_x, test_y, test_prob, normalisation=normalisation),
        "normalisation": normalisation,
        "caveat": CAVEAT,
    }
    curves = {"classifier": (test_y, test_prob), "asymmetry index": (test_y, test_asym), "fused": (test_y, fused)}
    return HeldOut(thresholds=thresholds, metrics=metrics, curves=curves, thresholds_on_test=thresholds_on_test)


def summary_lines(metrics: dict, thresholds: dict) -> list[str]:
    """The held-out figures as a person reads them at the end of a training run."""
    lines = ["", "Held-out test split (" + metrics["caveat"] + ")"]
    for key in ("classifier", "asymmetry_index", "fused"):
        report = metrics[key]
        lines.append(
            f"  {key:<16} accuracy {report['accuracy']:.3f}  ROC AUC {report['roc_auc']:.3f}  "
            f"sensitivity@90%spec {report['sensitivity_at_90_specificity']:.3f}"
        )
    lines.append("  fused decision, per class:")
    for name in CLASSES:
        row = metrics["fused"][name]
        lines.append(
            f"    {name:<13} precision {row['precision']:.2f}  recall {row['recall']:.2f}  f1 {row['f1']:.2f}"
            f"  support {row['support']}"
        )
    lines.append("  classifier under photo changes (a droop is unchanged by them; the mirror is the control):")
    for change, row in metrics["robustness"].items():
        lines.append(
            f"    {change:<20} ROC AUC {row['roc_auc']:.3f}  mean P healthy {row['mean_p_healthy']:.3f}  "
            f"paralysis {row['mean_p_paralysis']:.3f}  labels flipped {row['flipped']:.1%}"
        )
    lines.append(f"  thresholds: {thresholds}")
    return lines
