"""Registering, evaluating and activating classifier versions: one service for the command line
(register_model, train_classifier) and the admin, so that untrained or unvalidated weights never
decide, however a version is activated.

A version may be activated only when
- its file is a ResNet-50 with a two-class head (the training checkpoint or a plain torchvision
  state_dict), whose hash the registry holds;
- it carries a held-out evaluation: made by train_classifier on its test split, or by
  `register_model --evaluate-on DIR` over labelled photos it never trained on;
- the classifier's held-out ROC AUC reaches the floor (settings.MODEL_ACTIVATION_AUC_FLOOR, 0.80);
- its thresholds make a fused rule with an inconclusive band (negative below < positive from).
- with a classifier weight above 0, its fused score at that weight ranks none of its own held-out
  sets below the asymmetry index alone (a weight fitted on one validation split can fail this); the
  palda-dev figures of a version that learnt from palda-dev are its cross-fitted siblings', not its own.
The conditions are inference.selectors.activation_problems; the worker checks them too before it lets a
version decide (inference/runtime.py): a version activated behind the service's back screens nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.files import File
from django.db import transaction

from inference.engine.classifier import CheckpointError, file_sha256, read_checkpoint
from inference.models import ModelVersion
from inference.selectors import activation_problems

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}


class ModelRefused(Exception):
    """The file, the evaluation or the thresholds do not allow what was asked; the message says why."""


def model_register(
    *,
    checkpoint: Path,
    name: str,
    thresholds: dict | None = None,
    metrics: dict | None = None,
    notes: str = "",
    input_size: int = 224,
) -> ModelVersion:
    """Store a checkpoint as a new, inactive version. Raises ModelRefused for a file that is not a
    ResNet-50 with a two-class head, or a name already taken."""
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise ModelRefused(f"{checkpoint} is not a file")
    try:
        payload, _ = read_checkpoint(checkpoint)
    except CheckpointError as exc:
        raise ModelRefused(str(exc)) from None
    if ModelVersion.objects.filter(name=name).exists():
        raise ModelRefused(f"a version named {name!r} is already registered; choose another name")
    version = ModelVersion(
        name=name,
        architecture="resnet50",
        sha256=file_sha256(checkpoint),
        input_size=int(payload.get("input_size", input_size)),
        thresholds=thresholds or {},
        metrics=metrics or {},
        notes=notes,
    )
    with checkpoint.open("rb") as handle:
        version.checkpoint.save(checkpoint.name, File(handle), save=False)
    version.save()
    return version


def labelled_photos(folder: Path) -> list[tuple[Path, int]]:
    """(photo, 1 for palsy / 0 for healthy) from paralysis/ + no_paralysis/, or healthy/ + palsy
    folders (palda-dev's healthy/, central/, peripheral/). Raises ModelRefused for another layout."""
    folder = Path(folder)

    def photos(sub: Path) -> list[Path]:
        return sorted(p for p in sub.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) if sub.is_dir() else []

    if (folder / "paralysis").is_dir() and (folder / "no_paralysis").is_dir():
        groups = {1: photos(folder / "paralysis"), 0: photos(folder / "no_paralysis")}
    elif (folder / "healthy").is_dir():
        groups = {
            0: photos(folder / "healthy"),
            1: [p for sub in sorted(folder.iterdir()) if sub.is_dir() and sub.name != "healthy" for p in photos(sub)],
        }
    else:
        raise ModelRefused(f"{folder} needs paralysis/ and no_paralysis/ folders, or healthy/ and palsy folders")
    if not groups[0] or not groups[1]:
        raise ModelRefused(f"{folder} needs photos of both healthy and palsied faces")
    return [(path, label) for label, paths in groups.items() for path in paths]


def model_evaluate(
    *, version: ModelVersion, folder: Path, progress: Callable[[Iterable], Iterable] = lambda items: items
) -> dict:
    """Run the serving pipeline with this version over labelled photos and store the held-out figures
    as metrics["evaluation"]: ROC AUC of the classifier, of the asymmetry index and of the fused score.
    Photos the quality gate refuses are counted, not scored."""
    from inference.engine.classifier import ResNetClassifier
    from inference.engine.decide import DecisionRule
    from inference.engine.evaluation import roc_auc
    from inference.engine.imaging import ImageRejected, open_image
    from inference.engine.pipeline import Pipeline
    from inference.runtime import shared_detector

    samples = labelled_photos(folder)
    try:
        classifier = ResNetClassifier(version.checkpoint.path, expected_sha256=version.sha256, runtime="torch")
    except CheckpointError as exc:
        raise ModelRefused(str(exc)) from None
    pipeline = Pipeline(
        detector=shared_detector(),
        classifier=classifier,
        classifier_name=version.name,
        classifier_sha256=version.sha256,
        rule=DecisionRule.for_version(version.thresholds or {}, name=f"fused:{version.name}"),
        max_pixels=settings.SCAN_MAX_PIXELS,
    )
    labels, probability, index, fused, refused = [], [], [], [], 0
    for path, label in progress(samples):
        try:
            analysis = pipeline.analyze(open_image(path.read_bytes(), max_pixels=settings.SCAN_MAX_PIXELS))
        except ImageRejected:
            analysis = None
        if analysis is None or analysis.status != "done":
            refused += 1
            continue
        labels.append(label)
        probability.append(analysis.classifier["probability"])
        index.append(analysis.measurements["asymmetry_index"])
        fused.append(analysis.score)
    y = np.asarray(labels)
    if len(set(labels)) < 2:
        raise ModelRefused(
            f"too few photos of {folder} could be measured to evaluate ({len(labels)}; {refused} refused)"
        )
    evaluation = {
        "source": str(folder),
        "photos": len(samples),
        "scored": len(labels),
        "refused": refused,
        "classifier": {"roc_auc": round(roc_auc(y, np.asarray(probability)), 4)},
        "asymmetry_index": {"roc_auc": round(roc_auc(y, np.asarray(index)), 4)},
        "fused": {"roc_auc": round(roc_auc(y, np.asarray(fused)), 4)},
    }
    ModelVersion.objects.filter(id=version.id).update(metrics={**(version.metrics or {}), "evaluation": evaluation})
    version.refresh_from_db()
    return evaluation


def model_activate(*, version: ModelVersion) -> ModelVersion:
    """Make `version` the one the workers use. Raises ModelRefused (and the active version stays)
    when activation_problems lists anything."""
    problems = activation_problems(version)
    if problems:
        raise ModelRefused(f"{version.name} cannot be activated: " + "; ".join(problems) + ".")
    with transaction.atomic():
        ModelVersion.objects.filter(is_active=True).exclude(id=version.id).update(is_active=False)
        ModelVersion.objects.filter(id=version.id).update(is_active=True)
    version.refresh_from_db()
    return version


# --- the version shipped in the repository ---------------------------------------------------------


def model_install_shipped(*, shipped=None) -> tuple[ModelVersion, str]:
    """Register the checkpoint shipped under models/ (inference/shipped.py) after checking its sha256,
    with the thresholds and held-out figures recorded beside it, and activate it when no version is
    active (an admin's choice is never overridden). Idempotent: run by `make run` and compose's migrate.

    Returns the version and what was done ("registered and activated", "already active", "registered
    and VERSION stays active", "registered and not activated (why)"). Raises ModelRefused for a file
    whose hash is not the recorded one (a corrupted or swapped file never becomes a version)."""
    import json

    from inference.shipped import SHIPPED_MODEL

    shipped = shipped or SHIPPED_MODEL
    path = Path(shipped.path)
    if not path.is_file():
        raise ModelRefused(f"{path} is missing: the clone is incomplete (check out models/ again)")
    sha = file_sha256(path)
    if sha != shipped.sha256:
        raise ModelRefused(
            f"{path} has sha256 {sha[:16]}…, not the recorded {shipped.sha256[:16]}…: refusing to register it"
        )
    record = json.loads(Path(shipped.record_path).read_text())
    if record.get("sha256") != shipped.sha256:
        raise ModelRefused(f"{shipped.record_path} describes another file than {path.name}")
    done = []
    version = ModelVersion.objects.filter(name=shipped.name).first()
    if version is not None and version.sha256 != shipped.sha256:
        raise ModelRefused(f"a version named {shipped.name!r} with another file is registered; rename one of them")
    if version is None:
        version = model_register(
            checkpoint=path,
            name=shipped.name,
            thresholds=record["thresholds"],
            metrics=record["metrics"],
            notes=record.get("notes", "shipped in the repository (models/)"),
        )
        done.append("registered")
    active = ModelVersion.objects.filter(is_active=True).first()
    if active is None:
        try:
            version = model_activate(version=version)
        except ModelRefused as exc:  # its record does not meet the floor: registered, the rule decides
            done.append(f"not activated ({exc})")
        else:
            done.append("activated")
    elif active.id == version.id:
        done.append("already active")
    else:
        done.append(f"{active.name} stays active")
    return version, " and ".join(done)
