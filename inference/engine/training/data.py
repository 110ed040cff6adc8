"""The training data: photos found, faces aligned (and cached), split, and packed.

The data set may be the paper's layout (train|val|test/paralysis|no_paralysis), two flat class
folders, or healthy/ beside palsy folders (palda-dev's healthy/, central/, peripheral/: each photo
keeps its folder as its kind). Flat folders are split here, keeping near-duplicates (augmented
copies of one photo) on the same side; with a given layout, the groups show how many copies cross
its splits.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from inference.engine import duplicates, quality, repeatability
from inference.engine.align import aligned_face, crop_points
from inference.engine.classifier import CLASSES
from inference.engine.face import FaceMeshDetector
from inference.engine.imaging import ANALYSIS_MAX_SIDE, ImageRejected, analysis_copy, open_image
from inference.engine.measure import measure

# Part of the cache key: change it when decoding, alignment or measuring changes what prepare() makes.
PREPARATION = "analysis-copy-1024, area-shrink-before-warp, mirror-consistent mesh, signed index, crop landmarks"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
SPLITS = ("train", "val", "test")


@dataclass
class Sample:
    path: Path
    label: int  # index into CLASSES
    split: str | None = None  # given by the paper's layout, else assigned by group_split
    kind: str = ""  # the class folder's name (central, peripheral, ...)


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
    landmarks: np.ndarray | None = None  # (N, 478, 2) float32: the face's landmarks in crop pixels
    kinds: list[str] | None = None  # each photo's class folder (central, peripheral, healthy, ...)
    # (N,) each photo's index repeatability ± h, as the worker gives it (repeatability.assess): the
    # interval its decision is judged on. None in packs written before packs carried it.
    half_widths: np.ndarray | None = None

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
    elif (root / "healthy").is_dir() and not (root / CLASSES[0]).is_dir():
        samples += [Sample(p, 0, kind="healthy") for p in _images(root / "healthy")]
        for folder in sorted(f for f in root.iterdir() if f.is_dir() and f.name != "healthy"):
            samples += [Sample(p, 1, kind=folder.name) for p in _images(folder)]
    else:
        for label, name in enumerate(CLASSES):
            samples += [Sample(p, label, kind=name) for p in _images(root / name)]
    if not samples:
        raise FileNotFoundError(
            f"no photos under {root}: expected {'/'.join(CLASSES)} folders (optionally inside train/val/test), "
            "or healthy/ beside palsy folders"
        )
    missing = [name for label, name in enumerate(CLASSES) if not any(s.label == label for s in samples)]
    if missing:
        raise FileNotFoundError(f"no photos of class {', '.join(missing)} under {root}")
    return samples


def _images(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def prepare(
    samples: list[Sample],
    *,
    size: int,
    detector: FaceMeshDetector | None = None,
    cache_dir: Path | None = None,
    progress: Callable[[Iterable], Iterable] = lambda it: it,
) -> PreparedSet:
    """Detect, align and measure every face, as serving does; photos without one face are skipped.
    The near-duplicate signatures are taken here too, because they need the full photo and landmarks."""
    detector = detector or FaceMeshDetector()
    if cache_dir and not getattr(detector, "refits", True):
        cache_dir = cache_dir / "photo-fit"  # other landmarks, other faces: never mixed with the refitted ones
    faces, labels, asym, paths, splits, signatures, landmarks, kinds, widths = [], [], [], [], [], [], [], [], []
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
        face, index, signature, points, width = item
        widths.append(width)
        faces.append(face)
        landmarks.append(points)
        kinds.append(sample.kind)
        labels.append(sample.label)
        asym.append(index)
        signatures.append(signature)
        paths.append(str(sample.path))
        splits.append(sample.split or "")
    if not faces:
        raise ValueError("no usable face was found in any photo")
    return PreparedSet(
        np.stack(faces),
        np.array(labels),
        np.array(asym, dtype=np.float32),
        paths,
        splits,
        duplicates.duplicate_groups(signatures),
        skipped,
        landmarks=np.stack(landmarks).astype(np.float32),
        kinds=kinds,
        half_widths=np.array(widths, dtype=np.float32),
    )


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
    measurements = measure(points)
    figures = quality.assess(rgb, search.faces, measurements).figures
    return (
        aligned_face(rgb, points, size=size),
        float(measurements.asymmetry_index),
        duplicates.signature(rgb, points),
        crop_points(points, size).astype(np.float32),
        repeatability.assess(points, measurements, search.fits, figures, refits_tried=detector.refits).half_width,
    )


def _cache_key(path: Path, size: int) -> str:
    return hashlib.sha1(f"{path.resolve()}:{path.stat().st_size}:{size}:{PREPARATION}".encode()).hexdigest()


def _cached(cache_dir: Path, path: Path, size: int):
    file = cache_dir / f"{_cache_key(path, size)}.npz"
    if not file.exists():
        return None
    with np.load(file, allow_pickle=False) as data:
        if "reason" in data:
            return str(data["reason"])
        if "layout" not in data or "half_width" not in data:  # written by an older version: prepare it again
            return None
        signature = {
            "hash": int(data["hash"]),
            "hash_mirror": int(data["hash_mirror"]),
            "layout": data["layout"],
            "layout_mask": data["layout_mask"],
        }
        return data["face"], float(data["asymmetry"]), signature, data["landmarks"], float(data["half_width"])


def _store(cache_dir: Path, path: Path, size: int, item) -> None:
    cache_dir.mkdir(parents=True, exist_ok=True)
    file = cache_dir / f"{_cache_key(path, size)}.npz"
    if isinstance(item, str):
        np.savez(file, reason=np.array(item))
    else:
        face, index, signature, points, width = item
        np.savez_compressed(
            file,
            face=face,
            asymmetry=np.array(index),
            hash=np.array(signature["hash"], dtype=np.uint64),
            hash_mirror=np.array(signature["hash_mirror"], dtype=np.uint64),
            layout=signature["layout"],
            layout_mask=signature["layout_mask"],
            landmarks=points,
            half_width=np.array(width),
        )


FOLDS = 5


def group_split(prepared: PreparedSet, *, folds: int = FOLDS, seed: int = 0) -> None:
    """When the layout gave no split: deal whole near-duplicate groups into ``folds`` folds of about
    equal size, stratified by each group's majority class, so each fold keeps both classes. Fold 0
    is the test split, fold 1 the validation split, the rest train (see ``fold_splits``)."""
    if all(prepared.splits):
        return
    names = [f"fold{i}" for i in range(folds)]
    assigned = duplicates.split_groups(
        prepared.groups, prepared.labels, dict.fromkeys(names[:-1], 1 / folds), rest=names[-1], seed=seed
    )
    prepared.folds = np.array([names.index(name) for name in assigned])
    prepared.splits = fold_splits(prepared, 0)


def fold_splits(prepared: PreparedSet, test_fold: int) -> list[str]:
    """Cross-validation round ``test_fold``: that fold is the test split, the next one validation."""
    if prepared.folds is None:
        raise ValueError("this data set came with its own split; it has no folds")
    count = int(prepared.folds.max()) + 1
    val_fold = (test_fold + 1) % count
    return ["test" if f == test_fold else "val" if f == val_fold else "train" for f in prepared.folds.tolist()]


def photo_name(path: str) -> str:
    """A photo named independently of where the data set lives: its class folder and file name."""
    return f"{Path(path).parent.name}/{Path(path).name}"


def split_digest(prepared: PreparedSet, splits: list[str] | None = None) -> str:
    """Names the split independently of where the data set lives: class folder, file name and split
    of every photo. A checkpoint trained elsewhere is evaluated only on the split it was trained for."""
    lines = sorted(f"{photo_name(p)}:{s}" for p, s in zip(prepared.paths, splits or prepared.splits))
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
    np.savez(
        path,
        jpeg=np.concatenate(encoded),
        offsets=offsets,
        labels=prepared.labels,
        asymmetry=prepared.asymmetry,
        paths=np.array(prepared.paths),
        splits=np.array(prepared.splits),
        groups=prepared.groups,
        folds=folds,
        size=np.array(prepared.faces.shape[1]),
        **({"landmarks": prepared.landmarks.astype(np.float16)} if prepared.landmarks is not None else {}),
        **({"kinds": np.array(prepared.kinds)} if prepared.kinds is not None else {}),
        **({"half_widths": prepared.half_widths} if prepared.half_widths is not None else {}),
    )


def load_pack(path: Path) -> PreparedSet:
    import io

    with np.load(path, allow_pickle=False) as data:
        jpeg, offsets = data["jpeg"], data["offsets"]
        faces = np.stack(
            [
                np.asarray(Image.open(io.BytesIO(jpeg[offsets[i] : offsets[i + 1]].tobytes())).convert("RGB"))
                for i in range(len(offsets) - 1)
            ]
        )
        folds = data["folds"]
        return PreparedSet(
            faces,
            data["labels"],
            data["asymmetry"],
            data["paths"].tolist(),
            data["splits"].tolist(),
            data["groups"],
            folds=None if (folds < 0).any() else folds,
            landmarks=data["landmarks"].astype(np.float32) if "landmarks" in data else None,
            kinds=data["kinds"].tolist() if "kinds" in data else None,
            half_widths=data["half_widths"] if "half_widths" in data else None,
        )


def limit_per_class(samples: list[Sample], per_class: int, *, seed: int) -> list[Sample]:
    """At most ``per_class`` photos of each class, drawn at random (a quick trial run)."""
    import random

    rng = random.Random(seed)
    chosen = []
    for label in range(len(CLASSES)):
        group = [s for s in samples if s.label == label]
        rng.shuffle(group)
        chosen += group[:per_class]
    return chosen


def split_counts(prepared: PreparedSet) -> dict[str, int]:
    return {split: sum(1 for s in prepared.splits if s == split) for split in SPLITS}
