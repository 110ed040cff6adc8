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
from PIL import Image

from inference.engine import duplicates
from inference.engine.align import aligned_face
from inference.engine.classifier import CLASSES, IMAGENET_MEAN, IMAGENET_STD, NORMALISATIONS, build_resnet50
from inference.engine.evaluation import (  # noqa: F401  (classification_report: re-exported)
    classification_report,
    roc_auc,
    roc_curve,
    threshold_at_sensitivity,
    threshold_at_specificity,
)
from inference.engine.face import FaceMeshDetector
from inference.engine.imaging import ANALYSIS_MAX_SIDE, ImageRejected, analysis_copy, open_image
from inference.engine.measure import measure

# Part of the cache key: change it when decoding, alignment or measuring changes what prepare() makes.
PREPARATION = "analysis-copy-1024, area-shrink-before-warp, mirror-consistent mesh, signed index"
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
    folds: np.ndarray | None = None  # (N,) cross-validation fold, when the split was made here

    def subset(self, split: str, splits: list[str] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        mask = np.array([s == split for s in (splits or self.splits)], dtype=bool)
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
    try:  # decoded and sized as serving does (Pipeline.analyze_bytes)
        image = open_image(path.read_bytes(), max_pixels=10**9, max_side=ANALYSIS_MAX_SIDE)
    except (OSError, ImageRejected):
        return "unreadable"
    rgb = np.asarray(analysis_copy(image))
    search = detector.find(rgb)
    if len(search.faces) != 1:
        return "no face" if not search.faces else "several faces"
    points = search.faces[0]
    index = float(measure(points).asymmetry_index)
    return aligned_face(rgb, points, size=size), index, duplicates.signature(rgb, points)


def _cache_key(path: Path, size: int) -> str:
    return hashlib.sha1(f"{path.resolve()}:{path.stat().st_size}:{size}:{PREPARATION}".encode()).hexdigest()


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


FOLDS = 5


def group_split(prepared: PreparedSet, *, folds: int = FOLDS, seed: int = 0) -> None:
    """When the layout gave no split: deal whole near-duplicate groups into ``folds`` folds of about
    equal size, stratified by each group's majority class, so each fold keeps both classes. Fold 0
    is the test split, fold 1 the validation split, the rest train (see ``fold_splits``)."""
    if all(prepared.splits):
        return
    names = [f"fold{i}" for i in range(folds)]
    assigned = duplicates.split_groups(prepared.groups, prepared.labels, dict.fromkeys(names[:-1], 1 / folds),
                                       rest=names[-1], seed=seed)
    prepared.folds = np.array([names.index(name) for name in assigned])
    prepared.splits = fold_splits(prepared, 0)


def fold_splits(prepared: PreparedSet, test_fold: int) -> list[str]:
    """Cross-validation round ``test_fold``: that fold is the test split, the next one validation."""
    if prepared.folds is None:
        raise ValueError("this data set came with its own split; it has no folds")
    count = int(prepared.folds.max()) + 1
    val_fold = (test_fold + 1) % count
    return ["test" if f == test_fold else "val" if f == val_fold else "train" for f in prepared.folds.tolist()]


def split_digest(prepared: PreparedSet, splits: list[str] | None = None) -> str:
    """Names the split independently of where the data set lives: class folder, file name and split
    of every photo. A checkpoint trained elsewhere is evaluated only on the split it was trained for."""
    lines = sorted(f"{Path(p).parent.name}/{Path(p).name}:{s}" for p, s in zip(prepared.paths, splits or prepared.splits))
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def leakage(prepared: PreparedSet) -> int:
    """How many near-duplicate groups appear in more than one split (0 for a clean split)."""
    seen: dict[int, set[str]] = {}
    for group, split in zip(prepared.groups, prepared.splits):
        seen.setdefault(int(group), set()).add(split)
    return sum(1 for splits in seen.values() if len(splits) > 1)


# --- packs: aligned faces that travel to a training machine without MediaPipe ---------------------


def save_pack(prepared: PreparedSet, path: Path, *, quality: int = 95) -> None:
    """The prepared set in one .npz file, faces JPEG-encoded (about 20x smaller than raw pixels)."""
    import io

    encoded = []
    for face in prepared.faces:
        buffer = io.BytesIO()
        Image.fromarray(face).save(buffer, format="JPEG", quality=quality)
        encoded.append(np.frombuffer(buffer.getvalue(), dtype=np.uint8))
    offsets = np.cumsum([0] + [len(e) for e in encoded])
    folds = prepared.folds if prepared.folds is not None else np.full(len(prepared.labels), -1)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, jpeg=np.concatenate(encoded), offsets=offsets, labels=prepared.labels,
             asymmetry=prepared.asymmetry, paths=np.array(prepared.paths), splits=np.array(prepared.splits),
             groups=prepared.groups, folds=folds, size=np.array(prepared.faces.shape[1]))


def load_pack(path: Path) -> PreparedSet:
    import io

    with np.load(path, allow_pickle=False) as data:
        jpeg, offsets = data["jpeg"], data["offsets"]
        faces = np.stack([np.asarray(Image.open(io.BytesIO(jpeg[offsets[i]:offsets[i + 1]].tobytes())).convert("RGB"))
                          for i in range(len(offsets) - 1)])
        folds = data["folds"]
        return PreparedSet(faces, data["labels"], data["asymmetry"], data["paths"].tolist(), data["splits"].tolist(),
                           data["groups"], folds=None if (folds < 0).any() else folds)


# --- training ---------------------------------------------------------------------------------


def _normalise(x, normalisation: str = "imagenet"):
    """uint8 NHWC tensor -> float NCHW, scaled as serving does (classifier.preprocess, in torch)."""
    return _scaled(x.permute(0, 3, 1, 2).float().div_(255), normalisation)


def _scaled(x, normalisation: str):
    """Float NCHW in 0..1 -> the network's input (see classifier.NORMALISATIONS)."""
    import torch

    if normalisation == "per_face":
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        return (x - mean) / (x.std(dim=(1, 2, 3), keepdim=True, correction=0) + 1e-3)
    if normalisation != "imagenet":
        raise ValueError(f"unknown normalisation {normalisation!r}")
    mean = torch.as_tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.as_tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


def _augment(x, *, erase: float = 0.0, normalisation: str = "imagenet"):
    """Random mirror, rotation, scale, shift, resolution loss and colour, on the batch's device. A
    mirrored face keeps its label; the resolution loss keeps the model from telling the data set's
    sources apart by sharpness."""
    import torch
    import torch.nn.functional as F

    n, device = x.shape[0], x.device
    x = x.permute(0, 3, 1, 2).float().div_(255)

    def uniform(low, high, *shape):
        return torch.rand(n, *shape, device=device) * (high - low) + low

    angle = uniform(-math.radians(10), math.radians(10))
    scale = uniform(0.9, 1.1)
    mirror = torch.where(torch.rand(n, device=device) < 0.5, -1.0, 1.0)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    shift_x, shift_y = uniform(-0.06, 0.06), uniform(-0.06, 0.06)
    theta = torch.stack([torch.stack([cos * mirror, -sin, shift_x], 1), torch.stack([sin * mirror, cos, shift_y], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)

    factor = float(torch.empty(()).uniform_(0.25, 0.75))
    low = F.interpolate(x, scale_factor=factor, mode="bilinear", antialias=True, align_corners=False)
    low = F.interpolate(low, size=x.shape[-2:], mode="bilinear", align_corners=False)
    x = torch.where((torch.rand(n, device=device) < 0.4).view(n, 1, 1, 1), low, x)

    x = x * uniform(0.7, 1.3, 1, 1, 1)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * uniform(0.7, 1.3, 1, 1, 1) + mean
    grey = (x * torch.tensor([0.299, 0.587, 0.114], device=device).view(1, 3, 1, 1)).sum(1, keepdim=True)
    x = grey + (x - grey) * uniform(0.5, 1.4, 1, 1, 1)
    x = x.clamp_(0, 1)
    if erase:
        size = x.shape[-1]
        side = (uniform(0.12, 0.35) * size).long().view(n, 1, 1)
        top = (torch.rand(n, device=device) * size).long().view(n, 1, 1) - side // 2
        left = (torch.rand(n, device=device) * size).long().view(n, 1, 1) - side // 2
        rows = torch.arange(size, device=device).view(1, size, 1)
        cols = torch.arange(size, device=device).view(1, 1, size)
        patch = (rows >= top) & (rows < top + side) & (cols >= left) & (cols < left + side)
        patch &= (torch.rand(n, device=device) < erase).view(n, 1, 1)
        x = torch.where(patch.unsqueeze(1), torch.rand_like(x), x)
    return _scaled(x, normalisation)


def load_initial_weights(model, path: Path) -> None:
    """ImageNet weights from torchvision's .pth (or a .safetensors with the same layer names); the
    classification layer is left new."""
    import torch

    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or [k for k in missing if not k.startswith("fc.")]:
        raise ValueError(f"{path.name} is not a ResNet-50 state dict")


def train(prepared: PreparedSet, *, epochs: int, batch_size: int, lr: float, device: str,
          initial_weights: Path | None, seed: int = 0, splits: list[str] | None = None,
          weight_decay: float = 0.05, mixup: float = 0.0, erase: float = 0.0, ema: float = 0.0,
          normalisation: str = "imagenet", start_from: dict | None = None, pct_start: float = 0.2,
          progress=lambda it, **kw: it, log=print):
    """Train ResNet-50 on the train split (augmented on the device; bf16 on a GPU); keep the weights
    of the epoch with the best validation ROC AUC (ties: lower validation loss).

    Against memorising a small set of faces: ``mixup`` (Beta(a, a) blends of two faces and their
    labels, on half the batches), ``erase`` (that share of faces gets a random patch of noise) and
    ``ema`` (validate and keep an exponential moving average of the weights with this decay)."""
    import torch
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    torch.manual_seed(seed)
    model = build_resnet50()
    if start_from is not None:
        model.load_state_dict(start_from)
        log("initial weights: a trained classifier (fine-tuning)")
    elif initial_weights is not None:
        load_initial_weights(model, initial_weights)
        log(f"initial weights: ImageNet ({initial_weights.name})")
    else:
        log("initial weights: none found, training from scratch (expect weaker results than from ImageNet)")
    cuda = device.startswith("cuda")
    model.to(device, memory_format=torch.channels_last)
    train_x, train_y, _ = prepared.subset("train", splits)
    val_x, val_y, _ = prepared.subset("val", splits)
    faces = torch.from_numpy(train_x).to(device)
    targets_all = torch.from_numpy(train_y).long().to(device)
    counts = np.bincount(train_y, minlength=len(CLASSES)).astype(np.float32)
    weights = torch.tensor(counts.sum() / np.maximum(counts, 1) / len(CLASSES), device=device)
    criterion = torch.nn.CrossEntropyLoss(weight=weights, label_smoothing=0.1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    averaged = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(ema), use_buffers=True) if ema else None
    kept = averaged.module if averaged is not None else model
    per_epoch = max(1, len(train_x) // batch_size)  # the remainder waits for another epoch's shuffle
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=epochs * per_epoch,
                                                    pct_start=pct_start)
    best_key, best_state, best_epoch, history = None, None, 0, []
    for epoch in range(1, epochs + 1):
        model.train()
        losses = []
        order = torch.randperm(len(train_x), device=device)
        for step in progress(range(per_epoch), total=per_epoch, desc=f"epoch {epoch}/{epochs}"):
            index = order[step * batch_size:(step + 1) * batch_size]
            if len(index) < 2:  # batch norm needs two
                index = order[:2]
            inputs, targets = _augment(faces[index], erase=erase, normalisation=normalisation), targets_all[index]
            share, partner = 1.0, None
            if mixup and torch.rand(()) < 0.5:
                share = float(torch.distributions.Beta(mixup, mixup).sample())
                partner = torch.randperm(len(index), device=device)
                inputs = share * inputs + (1 - share) * inputs[partner]
            inputs = inputs.contiguous(memory_format=torch.channels_last)
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
                outputs = model(inputs)
                loss = criterion(outputs, targets)
                if partner is not None:
                    loss = share * loss + (1 - share) * criterion(outputs, targets[partner])
            loss.backward()
            optimizer.step()
            scheduler.step()
            if averaged is not None:
                averaged.update_parameters(model)
            losses.append(loss.detach())
        train_loss = float(torch.stack(losses).mean())
        val_prob = (predict(kept, val_x, batch_size=max(batch_size, 64), device=device, normalisation=normalisation)
                    if len(val_x) else np.array([]))
        val_auc = roc_auc(val_y, val_prob)
        val_loss = _log_loss(val_y, val_prob)
        history.append({"epoch": epoch, "loss": train_loss, "val_auc": val_auc, "val_loss": val_loss})
        log(f"epoch {epoch}: loss {train_loss:.4f}, validation ROC AUC {val_auc:.4f}, log loss {val_loss:.4f}")
        key = (-1.0 if math.isnan(val_auc) else val_auc, -val_loss if not math.isnan(val_loss) else 0.0)
        if best_key is None or key > best_key:
            best_key, best_epoch = key, epoch
            best_state = {k: v.detach().to("cpu", copy=True) for k, v in kept.state_dict().items()}
    model.load_state_dict(best_state)
    model.to("cpu", memory_format=torch.contiguous_format).eval()
    history.append({"best_epoch": best_epoch})
    return model, history


def _log_loss(labels: np.ndarray, prob: np.ndarray) -> float:
    if len(labels) == 0:
        return float("nan")
    p = np.clip(prob, 1e-6, 1 - 1e-6)
    return float(-np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p)))


def predict(model, faces: np.ndarray, *, batch_size: int = 32, device: str = "cpu",
            normalisation: str = "imagenet") -> np.ndarray:
    """P(paralysis) per face, in float32 with the serving preprocessing."""
    import torch

    model.eval()
    out = []
    with torch.inference_mode():
        for start in range(0, len(faces), batch_size):
            batch = _normalise(torch.from_numpy(faces[start:start + batch_size]).to(device), normalisation)
            out.append(torch.softmax(model(batch).float(), dim=1)[:, 1].cpu().numpy())
    return np.concatenate(out) if out else np.array([])


def checkpoint_payload(model, *, input_size: int, training: dict, normalisation: str = "imagenet") -> dict:
    return {"state_dict": model.state_dict(), "classes": list(CLASSES), "input_size": input_size,
            "architecture": "resnet50", "normalisation": normalisation, "training": training}


# --- robustness: does the model read the face or the photo? --------------------------------------


def _resampled(face: np.ndarray, factor: float) -> np.ndarray:
    import cv2

    height, width = face.shape[:2]
    small = cv2.resize(face, (max(8, round(width * factor)), max(8, round(height * factor))),
                       interpolation=cv2.INTER_AREA)
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


def robustness(model, faces: np.ndarray, labels: np.ndarray, probability: np.ndarray, *,
               device: str = "cpu", normalisation: str = "imagenet") -> dict:
    """ROC AUC, mean P(paralysis) per class and the share of labels (at 0.5) that flip, for held-out
    faces as they are and under each of PHOTO_CHANGES. The two classes of a data set gathered from
    different sources differ in exposure and quality; a model that learned those moves a lot here."""
    def row(p: np.ndarray) -> dict:
        return {"roc_auc": roc_auc(labels, p),
                "mean_p_healthy": float(p[labels == 0].mean()) if (labels == 0).any() else float("nan"),
                "mean_p_paralysis": float(p[labels == 1].mean()) if (labels == 1).any() else float("nan"),
                "flipped": float(np.mean((p >= 0.5) != (probability >= 0.5)))}

    report = {"as stored": row(probability)}
    for name, change in PHOTO_CHANGES.items():
        report[name] = row(predict(model, np.stack([change(face) for face in faces]), device=device,
                                   normalisation=normalisation))
    return report


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


# --- training on another machine: python -m inference.engine.training PACK OUT ---------------------


def main(argv: list[str] | None = None) -> int:
    """Fit on a pack written by ``manage.py train_classifier DATA_DIR --save-pack PACK``, where only
    PyTorch is installed (a GPU machine): writes OUT/fold<i>.pt per cross-validation round (fold 0 is
    the pack's own test split) and OUT/cv.npz, every model's P(paralysis) for every photo. Bring
    fold0.pt back and evaluate and register it with ``train_classifier DATA_DIR --checkpoint``."""
    import argparse
    import time

    import torch
    from tqdm import tqdm

    parser = argparse.ArgumentParser(prog="python -m inference.engine.training", description=main.__doc__)
    parser.add_argument("pack", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--weights", type=Path, help="ImageNet weights (.pth or .safetensors)")
    parser.add_argument("--folds", default="0", help="comma-separated test folds to train, e.g. 0,1,2,3,4")
    parser.add_argument("--weight-decay", type=float, default=0.05)
    parser.add_argument("--mixup", type=float, default=0.0, help="Beta(a, a) of mixup; 0: off")
    parser.add_argument("--erase", type=float, default=0.0, help="share of faces with a noise patch")
    parser.add_argument("--ema", type=float, default=0.0, help="decay of the weights' moving average; 0: off")
    parser.add_argument("--normalisation", choices=NORMALISATIONS, default="imagenet",
                        help="per_face: standardise each face by its own brightness and contrast")
    parser.add_argument("--start-from", type=Path, help="fine-tune this classifier checkpoint (fold 0 only)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--time-budget", type=float, default=0, help="seconds; start no fold that would end later")
    args = parser.parse_args(argv)
    start_from, trained_on = None, {}
    if args.start_from:
        payload = torch.load(args.start_from, map_location="cpu", weights_only=True)
        start_from = {k: v.float() if v.is_floating_point() else v for k, v in payload["state_dict"].items()}
        trained_on = payload.get("training", {})

    started = time.monotonic()
    torch.backends.cudnn.benchmark = True
    prepared = load_pack(args.pack)
    size = int(prepared.faces.shape[1])
    folds = [int(f) for f in args.folds.split(",")]
    if prepared.folds is None and folds != [0]:
        parser.error("this pack came with its own split: only --folds 0")
    if args.start_from:
        for fold in folds:
            splits = fold_splits(prepared, fold) if prepared.folds is not None else prepared.splits
            if trained_on.get("split_digest") != split_digest(prepared, splits):
                parser.error(f"{args.start_from} was trained on another split than fold {fold}'s: "
                             "fine-tuning it would train on that fold's test photos")
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"{len(prepared.labels)} faces of {size} px from {args.pack}; device {args.device} "
          f"({torch.cuda.get_device_name() if args.device.startswith('cuda') else 'cpu'}); torch {torch.__version__}")
    probabilities = np.full((max(folds) + 1, len(prepared.labels)), np.nan, dtype=np.float32)
    seconds_per_fold = 0.0
    for fold in folds:
        elapsed = time.monotonic() - started
        if args.time_budget and seconds_per_fold and elapsed + seconds_per_fold > args.time_budget:
            print(f"stopping before fold {fold}: {elapsed:.0f} s spent of a {args.time_budget:.0f} s budget")
            break
        fold_started = time.monotonic()
        splits = fold_splits(prepared, fold) if prepared.folds is not None else prepared.splits
        model, history = train(prepared, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                               device=args.device, initial_weights=args.weights, seed=args.seed + fold, splits=splits,
                               weight_decay=args.weight_decay, mixup=args.mixup, erase=args.erase, ema=args.ema,
                               normalisation=args.normalisation, start_from=start_from,
                               progress=lambda it, **kw: tqdm(it, leave=False, mininterval=5, **kw))
        model.to(args.device)
        probabilities[fold] = predict(model, prepared.faces, batch_size=256, device=args.device,
                                      normalisation=args.normalisation)
        model.to("cpu")
        seconds_per_fold = time.monotonic() - fold_started
        test = np.array([s == "test" for s in splits])
        test_auc = roc_auc(prepared.labels[test], probabilities[fold][test])
        training = {"fold": fold, "split_digest": split_digest(prepared, splits), "epochs": args.epochs,
                    "batch_size": args.batch_size, "lr": args.lr, "seed": args.seed + fold, "history": history,
                    "weight_decay": args.weight_decay, "mixup": args.mixup, "erase": args.erase, "ema": args.ema,
                    "initial_weights": (f"fine-tuned from {args.start_from.name}" if args.start_from else
                                        args.weights.name if args.weights else "none (from scratch)"),
                    "device": args.device, "torch": str(torch.__version__), "seconds": round(seconds_per_fold, 1),
                    "test_auc_on_pack": test_auc}
        torch.save(checkpoint_payload(model, input_size=size, training=training, normalisation=args.normalisation),
                   args.out / f"fold{fold}.pt")
        np.savez(args.out / "cv.npz", probabilities=probabilities, labels=prepared.labels, paths=np.array(prepared.paths),
                 folds=prepared.folds if prepared.folds is not None else np.zeros(len(prepared.labels), int))
        print(f"fold {fold}: best epoch {history[-1]['best_epoch']}, test ROC AUC {test_auc:.4f}, "
              f"{seconds_per_fold:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
