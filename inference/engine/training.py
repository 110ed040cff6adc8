"""Training and evaluating the ResNet-50 classifier on aligned face crops (pure library, no Django).

The data set may be the paper's layout (train|val|test/paralysis|no_paralysis) or two flat class
folders. Flat folders are split here, keeping near-duplicates (augmented copies of one photo) on the
same side; with a given layout, the groups show how many copies cross its splits. The grouping is
inference/engine/duplicates.py, the metrics inference/engine/evaluation.py (shared with bench/).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from inference.engine import duplicates
from inference.engine.align import aligned_face
from inference.engine.classifier import CLASSES, IMAGENET_MEAN, IMAGENET_STD, build_resnet50
from inference.engine.evaluation import (  # noqa: F401  (classification_report: re-exported)
    classification_report,
    roc_auc,
    roc_curve,
    threshold_at_sensitivity,
    threshold_at_specificity,
)
from inference.engine.face import FaceMeshDetector
from inference.engine.measure import measure

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
SPLITS = ("train", "val", "test")


@dataclass
class Sample:
    path: Path
    label: int  # index into CLASSES
    split: str | None = None  # given by the paper's layout, else assigned by group_split


@dataclass
class PreparedSet:
    faces: np.ndarray  # (N, S, S, 3) uint8 aligned crops
    labels: np.ndarray  # (N,)
    asymmetry: np.ndarray  # (N,) composite asymmetry index of each face
    paths: list[str]
    splits: list[str]
    groups: np.ndarray  # (N,) near-duplicate group id
    skipped: dict[str, int] = field(default_factory=dict)

    def subset(self, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        mask = np.array([s == split for s in self.splits], dtype=bool)
        return self.faces[mask], self.labels[mask], self.asymmetry[mask]


def discover(root: Path) -> list[Sample]:
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder")
    samples: list[Sample] = []
    if all((root / split).is_dir() for split in ("train", "test")):
        for split in SPLITS:
            for label, name in enumerate(CLASSES):
                samples += [Sample(p, label, split) for p in _images(root / split / name)]
    else:
        for label, name in enumerate(CLASSES):
            samples += [Sample(p, label) for p in _images(root / name)]
    if not samples:
        raise FileNotFoundError(f"no photos under {root}: expected {'/'.join(CLASSES)} folders "
                                "(optionally inside train/val/test)")
    missing = [name for label, name in enumerate(CLASSES) if not any(s.label == label for s in samples)]
    if missing:
        raise FileNotFoundError(f"no photos of class {', '.join(missing)} under {root}")
    return samples


def _images(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def prepare(samples: list[Sample], *, size: int, detector: FaceMeshDetector | None = None,
            cache_dir: Path | None = None, progress: Callable[[Iterable], Iterable] = lambda it: it) -> PreparedSet:
    """Detect, align and measure every face, as serving does; photos without one face are skipped.
    The near-duplicate signatures are taken here too, because they need the full photo and landmarks."""
    detector = detector or FaceMeshDetector()
    faces, labels, asym, paths, splits, signatures = [], [], [], [], [], []
    skipped: dict[str, int] = {}
    for sample in progress(samples):
        item = _cached(cache_dir, sample.path, size) if cache_dir else None
        if item is None:
            item = _prepare_one(sample.path, size, detector)
            if cache_dir:
                _store(cache_dir, sample.path, size, item)
        if isinstance(item, str):
            skipped[item] = skipped.get(item, 0) + 1
            continue
        face, index, signature = item
        faces.append(face)
        labels.append(sample.label)
        asym.append(index)
        signatures.append(signature)
        paths.append(str(sample.path))
        splits.append(sample.split or "")
    if not faces:
        raise ValueError("no usable face was found in any photo")
    return PreparedSet(np.stack(faces), np.array(labels), np.array(asym, dtype=np.float32), paths, splits,
                       duplicates.duplicate_groups(signatures), skipped)


def _prepare_one(path: Path, size: int, detector: FaceMeshDetector):
    try:
        image = ImageOps.exif_transpose(Image.open(path)).convert("RGB")
    except (OSError, ValueError):
        return "unreadable"
    rgb = np.asarray(image)
    search = detector.find(rgb)
    if len(search.faces) != 1:
        return "no face" if not search.faces else "several faces"
    points = search.faces[0]
    index = float(measure(points).asymmetry_index)
    return aligned_face(rgb, points, size=size), index, duplicates.signature(rgb, points)


def _cache_key(path: Path, size: int) -> str:
    return hashlib.sha1(f"{path.resolve()}:{path.stat().st_size}:{size}".encode()).hexdigest()


def _cached(cache_dir: Path, path: Path, size: int):
    file = cache_dir / f"{_cache_key(path, size)}.npz"
    if not file.exists():
        return None
    with np.load(file, allow_pickle=False) as data:
        if "reason" in data:
            return str(data["reason"])
        if "layout" not in data:  # written before the signatures were cached: prepare it again
            return None
        signature = {"hash": int(data["hash"]), "hash_mirror": int(data["hash_mirror"]),
                     "layout": data["layout"], "layout_mask": data["layout_mask"]}
        return data["face"], float(data["asymmetry"]), signature


def _store(cache_dir: Path, path: Path, size: int, item) -> None:
    cache_dir.mkdir(parents=True, exist_ok=True)
    file = cache_dir / f"{_cache_key(path, size)}.npz"
    if isinstance(item, str):
        np.savez(file, reason=np.array(item))
    else:
        face, index, signature = item
        np.savez_compressed(file, face=face, asymmetry=np.array(index),
                            hash=np.array(signature["hash"], dtype=np.uint64),
                            hash_mirror=np.array(signature["hash_mirror"], dtype=np.uint64),
                            layout=signature["layout"], layout_mask=signature["layout_mask"])


def group_split(prepared: PreparedSet, *, fractions=(0.7, 0.15, 0.15), seed: int = 0) -> None:
    """Assign whole near-duplicate groups to test/val/train (fractions in SPLITS order) when the
    layout gave no split; stratified by each group's majority class, so each split keeps both classes."""
    if all(prepared.splits):
        return
    assigned = duplicates.split_groups(prepared.groups, prepared.labels, {"test": fractions[2], "val": fractions[1]},
                                       rest="train", seed=seed)
    prepared.splits = [str(split) for split in assigned]


def leakage(prepared: PreparedSet) -> int:
    """How many near-duplicate groups appear in more than one split (0 for a clean split)."""
    seen: dict[int, set[str]] = {}
    for group, split in zip(prepared.groups, prepared.splits):
        seen.setdefault(int(group), set()).add(split)
    return sum(1 for splits in seen.values() if len(splits) > 1)


# --- training ---------------------------------------------------------------------------------


def _batches(faces: np.ndarray, labels: np.ndarray, batch_size: int, *, shuffle: bool, augment: bool,
             rng: np.random.Generator):
    import torch

    order = rng.permutation(len(faces)) if shuffle else np.arange(len(faces))
    for start in range(0, len(order), batch_size):
        index = order[start:start + batch_size]
        batch = faces[index].astype(np.float32) / 255.0
        if augment:
            flip = rng.random(len(batch)) < 0.5
            batch[flip] = batch[flip, :, ::-1]  # a mirrored face has the same label
            gain = rng.uniform(0.75, 1.25, size=(len(batch), 1, 1, 1)).astype(np.float32)
            batch = np.clip(batch * gain, 0, 1)
        batch = (batch - IMAGENET_MEAN) / IMAGENET_STD
        yield torch.from_numpy(np.ascontiguousarray(batch.transpose(0, 3, 1, 2))), torch.from_numpy(labels[index])


def train(prepared: PreparedSet, *, epochs: int, batch_size: int, lr: float, device: str,
          initial_weights: Path | None, seed: int = 0, progress=lambda it, **kw: it, log=print):
    """Fine-tune ResNet-50; keep the weights of the epoch with the best validation ROC AUC."""
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = build_resnet50()
    if initial_weights is not None:
        state = torch.load(initial_weights, map_location="cpu", weights_only=True)
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
        model.load_state_dict(state, strict=False)
        log(f"initial weights: ImageNet ({initial_weights.name})")
    else:
        log("initial weights: none found, training from scratch (expect weaker results than from ImageNet)")
    model.to(device)
    train_x, train_y, _ = prepared.subset("train")
    val_x, val_y, _ = prepared.subset("val")
    counts = np.bincount(train_y, minlength=len(CLASSES)).astype(np.float32)
    weights = torch.tensor(counts.sum() / np.maximum(counts, 1) / len(CLASSES), device=device)
    criterion = torch.nn.CrossEntropyLoss(weight=weights)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    steps = max(1, epochs * math.ceil(len(train_x) / batch_size))
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps)
    best_auc, best_state, history = -1.0, None, []
    for epoch in range(1, epochs + 1):
        model.train()
        losses = []
        batches = _batches(train_x, train_y, batch_size, shuffle=True, augment=True, rng=rng)
        for inputs, targets in progress(batches, total=math.ceil(len(train_x) / batch_size),
                                        desc=f"epoch {epoch}/{epochs}"):
            optimizer.zero_grad(set_to_none=True)
            loss = criterion(model(inputs.to(device)), targets.to(device))
            loss.backward()
            optimizer.step()
            scheduler.step()
            losses.append(float(loss.detach()))
        val_prob = predict(model, val_x, batch_size=batch_size, device=device) if len(val_x) else np.array([])
        val_auc = roc_auc(val_y, val_prob)
        history.append({"epoch": epoch, "loss": float(np.mean(losses)), "val_auc": val_auc})
        log(f"epoch {epoch}: loss {np.mean(losses):.4f}, validation ROC AUC {val_auc:.4f}")
        if best_state is None or (not math.isnan(val_auc) and val_auc > best_auc):
            best_auc = val_auc
            best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    model.to("cpu").eval()
    return model, history


def predict(model, faces: np.ndarray, *, batch_size: int = 32, device: str = "cpu") -> np.ndarray:
    import torch

    model.eval()
    out = []
    with torch.inference_mode():
        for inputs, _ in _batches(faces, np.zeros(len(faces), dtype=np.int64), batch_size, shuffle=False,
                                  augment=False, rng=np.random.default_rng(0)):
            out.append(torch.softmax(model(inputs.to(device)), dim=1)[:, 1].float().cpu().numpy())
    return np.concatenate(out) if out else np.array([])


# --- fused decision and report ------------------------------------------------------------------


def fused_scores(probability: np.ndarray, asymmetry: np.ndarray, *, weight: float,
                 positive_at: float, negative_below: float) -> np.ndarray:
    from inference.engine.decide import DecisionRule, asymmetry_score

    rule = DecisionRule(name="fit", asymmetry_positive_at=positive_at, asymmetry_negative_below=negative_below)
    asym = np.array([asymmetry_score(float(a), rule) for a in asymmetry])
    return weight * probability + (1 - weight) * asym


def fit_thresholds(val_labels, val_prob, val_asym, *, asymmetry_positive_at: float,
                   asymmetry_negative_below: float) -> dict:
    """Pick the classifier's weight in the fused score by validation ROC AUC, then the fused
    thresholds: positive at 90% specificity, negative below the score that keeps 95% sensitivity."""
    best = (-1.0, 1.0)
    for weight in np.linspace(0, 1, 11):
        scores = fused_scores(val_prob, val_asym, weight=weight, positive_at=asymmetry_positive_at,
                              negative_below=asymmetry_negative_below)
        auc = roc_auc(val_labels, scores)
        if not math.isnan(auc) and auc > best[0] + 1e-9:
            best = (auc, float(weight))
    weight = best[1]
    scores = fused_scores(val_prob, val_asym, weight=weight, positive_at=asymmetry_positive_at,
                          negative_below=asymmetry_negative_below)
    positive_at = threshold_at_specificity(val_labels, scores, 0.9)
    negative_below = min(positive_at, threshold_at_sensitivity(val_labels, scores, 0.95))
    return {"classifier_weight": weight, "fused_positive_at": positive_at, "fused_negative_below": negative_below,
            "asymmetry_positive_at": asymmetry_positive_at, "asymmetry_negative_below": asymmetry_negative_below,
            "validation_fused_auc": best[0]}


def save_plots(out_dir: Path, curves: dict[str, tuple[np.ndarray, np.ndarray]], confusion: list[list[int]]) -> list[Path]:
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
