"""Benchmark of the training-free facial asymmetry index on the stroke-faces photos.

    PYTHONPATH=. .venv/bin/python bench/eval_asymmetry.py --per-class 400 --seed 0 --out /tmp/asym-eval
    PYTHONPATH=. .venv/bin/python bench/eval_asymmetry.py --per-class 0 --seed 0 --rule 1.0 0.85 --out /tmp/asym-all

What it does, one process on one core:

1. Samples ``--per-class`` photos from each class folder (``paralysis/`` is the positive class,
   ``no_paralysis/`` the negative one; ``--per-class 0`` takes every photo), decodes them the way
   the portal does (PIL, EXIF orientation applied, RGB) and runs ``FaceMeshDetector.find``. The
   landmarks (largest face when there are several), the pass that found them and a perceptual hash
   of the aligned face are cached in an ``.npz`` outside the repository (``--cache``), so reruns
   with other settings cost seconds. Photos are only read, never copied.
2. Groups near-duplicates. The dataset is heavily augmented (rotated, stretched, cropped and
   mirrored copies of the same photo, about 40-60 copies of each), so a plain random split puts the
   same face on both sides. Both signatures are taken of the *aligned face*: an affine warp that
   sends the two eye centres and the mouth centre to fixed positions. Three point pairs fix an
   affine map exactly, so the warp undoes rotation (any angle), scale, translation, stretch and
   shear, which is what the augmentation does, and leaves the face in the same place whatever the
   framing. Two photos are linked when either
   - the 64-bit DCT hash (pHash) of the tight 64x64 grey face crop is within ``--dup-bits`` bits
     (copies of one photo: mostly 0-4 bits; different photos: mostly 16-40; a looser cut chains
     the whole data set into one group), or
   - the colour layout of a wider aligned crop (face, hair, collar and the background right next to
     the head: mean CIELAB colour in an 8x8 grid, cells the photo does not cover left out) differs by
     at most ``--dup-colour`` (root-mean-square Delta E; copies: mostly under 12, different photos:
     mostly over 20). This catches the copies whose fine detail the hash misses (strong stretch,
     heavy crops, blur) and errs towards linking similar-looking photos.
   Both compare each photo with the others and with their mirror image (a flipped copy aligns to the
   mirrored crop). The groups are the connected components (union-find), so chains of copies end up
   together. Linking too much only makes the held-out figures more pessimistic; linking too little
   leaks a face into both parts. Different photos of the same person are not recognised (no face
   identity model), which is the main remaining leak.
3. Splits the *groups* (not the photos) at random, per class, into a fitting part and a held-out
   part (``--holdout``). Anything fitted (the decision thresholds, the reference logistic refit) is
   fitted on the fitting groups only, and every figure called "held-out" is computed on the other
   groups.
4. Prints and writes (``--out``: ``eval_asymmetry.json`` and ``roc.png``): faces found per class and
   which detector pass found them, ROC AUC of each regional |difference| and of the composite
   ``asymmetry_index`` (all photos and held-out groups, with a group bootstrap interval), the
   sensitivity at 90% specificity, the recommended asymmetry-only decision thresholds
   (``positive_at`` at 90% specificity and ``negative_below`` at 90% sensitivity on the fitting
   groups) with their held-out sensitivity, specificity and inconclusive rate, and a reference
   non-negative logistic refit of the index weights on the fitting groups (how the constants in
   ``inference/engine/measure.py`` were obtained; see ``--per-class 0 --seed 0``).

Caveats that go with every figure: the two classes come from different sources (close-up patient
photos against press photos of public figures), near-duplicate grouping is approximate, and the
photos are not a clinical population.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import re
import sys
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from inference.engine import measure as measure_module  # noqa: E402
from inference.engine.measure import (  # noqa: E402
    INDEX_UNITS,
    INDEX_WEIGHTS,
    LEFT,
    LOWER_LIP,
    RIGHT,
    UPPER_LIP,
    measure,
)

CLASSES = ("paralysis", "no_paralysis")  # positive first
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}
CACHE_VERSION = 2
CROP_SIZE = 64
# Where the aligned crops put the eye centres and the mouth centre (fractions of the crop side): the
# tight one holds the face from brows to chin, the wide one adds hair, collar and nearby background.
CROP_TEMPLATE = np.array([[0.30, 0.32], [0.70, 0.32], [0.50, 0.74]], dtype=np.float32)
WIDE_TEMPLATE = np.array([[0.36, 0.42], [0.64, 0.42], [0.50, 0.66]], dtype=np.float32)
LAYOUT_GRID = 8
# The refit puts 1.0 (per region and for the index) at this percentile of the healthy photos.
HEALTHY_PERCENTILE = 90

os.environ.setdefault("GLOG_minloglevel", "2")  # MediaPipe's C++ start-up chatter
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

try:
    from tqdm import tqdm
except ImportError:  # progress bars are a nicety
    tqdm = None


# ----------------------------------------------------------------------------------------------
# Images and landmarks


def list_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def load_rgb(path: Path) -> np.ndarray:
    from PIL import Image, ImageOps

    with Image.open(path) as image:
        return np.asarray(ImageOps.exif_transpose(image).convert("RGB"))


def largest_face(faces: list[np.ndarray]) -> np.ndarray:
    def eye_distance(points: np.ndarray) -> float:
        return float(np.linalg.norm(measure_module.eye_centre(points, LEFT) - measure_module.eye_centre(points, RIGHT)))

    return max(faces, key=eye_distance)


def _alignment_source(points: np.ndarray) -> np.ndarray:
    return np.array(
        [
            measure_module.eye_centre(points, RIGHT),
            measure_module.eye_centre(points, LEFT),
            (points[UPPER_LIP] + points[LOWER_LIP] + points[RIGHT["mouth_corner"]] + points[LEFT["mouth_corner"]]) / 4,
        ],
        dtype=np.float32,
    )


def aligned_crop(rgb: np.ndarray, points: np.ndarray) -> np.ndarray:
    """64x64 grey face, affinely warped so the eyes and the mouth centre land on fixed spots."""
    import cv2

    matrix = cv2.getAffineTransform(_alignment_source(points), CROP_TEMPLATE * CROP_SIZE)
    grey = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
    return cv2.warpAffine(grey, matrix, (CROP_SIZE, CROP_SIZE), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)


def colour_layout(rgb: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean CIELAB colour of each cell of an 8x8 grid over the wide aligned crop, and which cells
    the photo covers (a rotated or cropped copy leaves corners empty)."""
    import cv2

    matrix = cv2.getAffineTransform(_alignment_source(points), WIDE_TEMPLATE * CROP_SIZE)
    size = (CROP_SIZE, CROP_SIZE)
    crop = cv2.warpAffine(np.ascontiguousarray(rgb), matrix, size, flags=cv2.INTER_AREA,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    covered = cv2.warpAffine(np.ones(rgb.shape[:2], np.float32), matrix, size, flags=cv2.INTER_NEAREST,
                             borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    lab = cv2.cvtColor(crop, cv2.COLOR_RGB2LAB).astype(np.float32) * covered[..., None]
    grid = (LAYOUT_GRID, LAYOUT_GRID)
    share = cv2.resize(covered, grid, interpolation=cv2.INTER_AREA)
    mean = cv2.resize(lab, grid, interpolation=cv2.INTER_AREA) / np.maximum(share, 1e-3)[..., None]
    return mean.astype(np.float32), share > 0.6


def phash(grey: np.ndarray) -> int:
    """64-bit DCT hash: the signs of the 8x8 lowest frequencies (less the DC term) against their median."""
    import cv2

    small = cv2.resize(grey.astype(np.float32), (32, 32), interpolation=cv2.INTER_AREA)
    low = cv2.dct(small)[:8, :8].flatten()[1:]
    bits = low > np.median(low)
    return int("".join("1" if b else "0" for b in bits), 2)


def file_key(path: Path, data_root: Path) -> str:
    stat = path.stat()
    return f"{path.relative_to(data_root).as_posix()}|{stat.st_size}|{stat.st_mtime_ns}"


class LandmarkCache:
    """Landmarks and hashes per photo, in one .npz (rewritten every few dozen photos)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: dict[str, dict] = {}
        if path.exists():
            with np.load(path, allow_pickle=False) as stored:
                if int(stored["version"]) == CACHE_VERSION:
                    data = {name: stored[name] for name in stored.files}  # decompress each array once
                    for i, key in enumerate(data["keys"]):
                        self.entries[str(key)] = {
                            "points": data["points"][i].astype(np.float64),
                            "found": bool(data["found"][i]),
                            "attempt": str(data["attempts"][i]),
                            "n_faces": int(data["n_faces"][i]),
                            "hash": int(data["hashes"][i]),
                            "hash_mirror": int(data["hashes_mirror"][i]),
                            "size": tuple(int(v) for v in data["sizes"][i]),
                            "layout": data["layouts"][i],
                            "layout_mask": data["layout_masks"][i],
                            "seconds": float(data["seconds"][i]),
                        }
        self._dirty = 0

    def put(self, key: str, entry: dict) -> None:
        self.entries[key] = entry
        self._dirty += 1
        if self._dirty >= 50:
            self.save()

    def save(self) -> None:
        if not self.entries:
            return
        keys = list(self.entries)
        entries = [self.entries[k] for k in keys]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp.npz")
        np.savez_compressed(
            tmp,
            version=np.array(CACHE_VERSION),
            keys=np.array(keys),
            points=np.stack([e["points"] for e in entries]).astype(np.float32),
            found=np.array([e["found"] for e in entries]),
            attempts=np.array([e["attempt"] for e in entries]),
            n_faces=np.array([e["n_faces"] for e in entries]),
            hashes=np.array([e["hash"] for e in entries], dtype=np.uint64),
            hashes_mirror=np.array([e["hash_mirror"] for e in entries], dtype=np.uint64),
            sizes=np.array([e["size"] for e in entries]),
            layouts=np.stack([e["layout"] for e in entries]).astype(np.float32),
            layout_masks=np.stack([e["layout_mask"] for e in entries]),
            seconds=np.array([e["seconds"] for e in entries]),
        )
        os.replace(tmp, self.path)
        self._dirty = 0


def extract(paths: list[Path], data_root: Path, cache: LandmarkCache) -> list[dict]:
    detector = None
    records = []
    todo = [p for p in paths if file_key(p, data_root) not in cache.entries]
    if todo:
        print(f"Landmarks: {len(paths) - len(todo)} cached, {len(todo)} to extract", flush=True)
    iterator = tqdm(paths, desc="landmarks", unit="img") if (tqdm and todo) else paths
    for path in iterator:
        key = file_key(path, data_root)
        entry = cache.entries.get(key)
        if entry is None:
            if detector is None:
                from inference.engine.face import FaceMeshDetector

                detector = FaceMeshDetector()
            started = time.perf_counter()
            try:
                rgb = load_rgb(path)
            except Exception as error:  # an unreadable file counts as "no face", and says so
                print(f"  cannot decode {path.name}: {error}", file=sys.stderr)
                rgb = None
            entry = {"points": np.zeros((478, 2)), "found": False, "attempt": "undecodable", "n_faces": 0,
                     "hash": 0, "hash_mirror": 0, "size": (0, 0), "seconds": 0.0,
                     "layout": np.zeros((LAYOUT_GRID, LAYOUT_GRID, 3), np.float32),
                     "layout_mask": np.zeros((LAYOUT_GRID, LAYOUT_GRID), bool)}
            if rgb is not None:
                search = detector.find(rgb)
                entry["attempt"] = search.attempt
                entry["n_faces"] = len(search.faces)
                entry["size"] = (rgb.shape[1], rgb.shape[0])
                if search.faces:
                    points = largest_face(search.faces)
                    crop = aligned_crop(rgb, points)
                    layout, layout_mask = colour_layout(rgb, points)
                    entry.update(points=points, found=True, hash=phash(crop), hash_mirror=phash(crop[:, ::-1]),
                                 layout=layout, layout_mask=layout_mask)
            entry["seconds"] = time.perf_counter() - started
            cache.put(key, entry)
        records.append({"path": path, "key": key, **entry})
    cache.save()
    return records


# ----------------------------------------------------------------------------------------------
# Near-duplicate groups and the group split


def _popcount(values: np.ndarray) -> np.ndarray:
    return np.unpackbits(values.view(np.uint8).reshape(*values.shape, 8), axis=-1).sum(axis=-1)


def layout_distances(layouts: np.ndarray, masks: np.ndarray, rows: slice) -> np.ndarray:
    """Root-mean-square Delta E over the cells both photos cover, against the other photo or its
    mirror image (whichever is closer); 99 when they share fewer than 20 of the 64 cells. Written
    with matrix products (|a - b|^2 = |a|^2 + |b|^2 - 2ab over the shared cells) so that all pairs of
    a few thousand photos take seconds."""
    n = len(layouts)
    best = None
    a = layouts[rows].reshape(-1, LAYOUT_GRID * LAYOUT_GRID, 3).astype(np.float64)
    ma = masks[rows].reshape(len(a), -1).astype(np.float64)
    for other, other_mask in ((layouts, masks), (layouts[:, :, ::-1], masks[:, :, ::-1])):
        b = other.reshape(n, -1, 3).astype(np.float64)
        mb = other_mask.reshape(n, -1).astype(np.float64)
        squares = ((a**2).sum(-1) * ma) @ mb.T + ma @ ((b**2).sum(-1) * mb).T
        cross = (a * ma[..., None]).reshape(len(a), -1) @ (b * mb[..., None]).reshape(n, -1).T
        shared = ma @ mb.T
        distance = np.where(shared >= 20, np.sqrt(np.maximum(squares - 2 * cross, 0) / np.maximum(shared, 1)), 99.0)
        best = distance if best is None else np.minimum(best, distance)
    return best


def duplicate_groups(hashes: np.ndarray, mirrored: np.ndarray, layouts: np.ndarray, masks: np.ndarray,
                     max_bits: int, max_colour: float) -> np.ndarray:
    """Connected components of "hash within max_bits or colour layout within max_colour, directly or
    mirrored"; returns a group id per photo."""
    n = len(hashes)
    parent = np.arange(n)

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    chunk = 256
    for start in range(0, n, chunk):
        rows = slice(start, min(start + chunk, n))
        bits = np.minimum(_popcount(hashes[rows, None] ^ hashes[None]), _popcount(hashes[rows, None] ^ mirrored[None]))
        linked = (bits <= max_bits) | (layout_distances(layouts, masks, rows) <= max_colour)
        for i, j in zip(*np.nonzero(linked)):
            a, b = find(start + int(i)), find(int(j))
            if a != b:
                parent[b] = a
    roots = np.array([find(i) for i in range(n)])
    _, group = np.unique(roots, return_inverse=True)
    return group


def group_split(groups: np.ndarray, labels: np.ndarray, holdout: float, seed: int) -> np.ndarray:
    """True for photos in held-out groups. Groups are shuffled per (majority) class and filled up to
    ``holdout`` of that class's photos, so both parts keep both classes."""
    rng = random.Random(seed)
    held = np.zeros(len(groups), dtype=bool)
    group_ids = np.unique(groups)
    majority = {g: int(round(labels[groups == g].mean())) for g in group_ids}
    for label in (1, 0):
        ids = [g for g in group_ids if majority[g] == label]
        rng.shuffle(ids)
        target = holdout * sum(int((groups == g).sum()) for g in ids)
        taken = 0
        for g in ids:
            if taken >= target:
                break
            members = groups == g
            held |= members
            taken += int(members.sum())
    return held


# ----------------------------------------------------------------------------------------------
# Statistics (numpy only; sklearn is not a dependency)


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Mann-Whitney AUC with average ranks for ties: P(score of a positive > score of a negative)."""
    scores = np.asarray(scores, dtype=float)
    labels = np.asarray(labels, dtype=bool)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    average = first + (counts + 1) / 2.0  # 1-based average rank of each tie block
    ranks[order] = np.repeat(average, counts)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def roc_curve(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    thresholds = np.unique(scores)[::-1]
    labels = labels.astype(bool)
    tpr = [0.0] + [float((scores[labels] >= t).mean()) for t in thresholds]
    fpr = [0.0] + [float((scores[~labels] >= t).mean()) for t in thresholds]
    return np.array(fpr), np.array(tpr)


def group_bootstrap_auc(scores, labels, groups, n_boot: int, seed: int) -> tuple[float, float]:
    """95% interval of the AUC, resampling whole near-duplicate groups."""
    rng = np.random.default_rng(seed)
    ids = np.unique(groups)
    members = [np.nonzero(groups == g)[0] for g in ids]
    values = []
    for _ in range(n_boot):
        pick = np.concatenate([members[i] for i in rng.integers(0, len(ids), len(ids))])
        auc = roc_auc(scores[pick], labels[pick])
        if not math.isnan(auc):
            values.append(auc)
    if not values:
        return float("nan"), float("nan")
    return float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))


def threshold_at_specificity(negatives: np.ndarray, specificity: float) -> float:
    """Smallest threshold t (a score seen among negatives, or just above) with P(neg < t) >= specificity."""
    ordered = np.sort(negatives)
    k = int(math.ceil(specificity * len(ordered)))  # at least k negatives must lie strictly below t
    if k <= 0:
        return float(ordered[0])
    if k >= len(ordered):
        return float(np.nextafter(ordered[-1], np.inf))
    return float(np.nextafter(ordered[k - 1], np.inf)) if ordered[k] == ordered[k - 1] else float(ordered[k])


def threshold_at_sensitivity(positives: np.ndarray, sensitivity: float) -> float:
    """Largest threshold t with P(pos >= t) >= sensitivity."""
    ordered = np.sort(positives)[::-1]
    k = int(math.ceil(sensitivity * len(ordered)))
    return float(ordered[max(k - 1, 0)])


def rates(scores, labels, positive_at: float, negative_below: float) -> dict:
    labels = labels.astype(bool)
    positive = scores >= positive_at
    negative = scores < negative_below
    inconclusive = ~positive & ~negative
    decided = ~inconclusive
    return {
        "n": int(len(scores)),
        "sensitivity": float(positive[labels].mean()),  # called paralysis among paralysis photos
        "specificity": float(negative[~labels].mean()),  # called no_paralysis among healthy photos
        "specificity_not_called_positive": float((~positive[~labels]).mean()),
        "missed_paralysis_rate": float(negative[labels].mean()),
        "false_alarm_rate": float(positive[~labels].mean()),
        "inconclusive_rate": float(inconclusive.mean()),
        "inconclusive_rate_paralysis": float(inconclusive[labels].mean()),
        "inconclusive_rate_no_paralysis": float(inconclusive[~labels].mean()),
        "accuracy_when_decided": (
            float((positive[decided] == labels[decided]).mean()) if decided.any() else float("nan")
        ),
    }


def fit_nonnegative_logistic(
    x: np.ndarray, y: np.ndarray, l2: float = 1e-2, steps: int = 4000
) -> tuple[np.ndarray, float]:
    """Logistic regression with weights kept >= 0 (more asymmetry never lowers the index), by
    projected gradient descent with a backtracking-free fixed step on standardised inputs."""
    scale = x.std(axis=0) + 1e-9
    z = x / scale
    w = np.zeros(x.shape[1])
    b = 0.0
    lr = 0.5
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(z @ w + b)))
        grad_w = z.T @ (p - y) / len(y) + l2 * w
        grad_b = float((p - y).mean())
        w = np.maximum(w - lr * grad_w, 0.0)
        b -= lr * grad_b
    return w / scale, b


# ----------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=REPO_ROOT.parent / "shared" / "datasets" / "stroke-faces",
                        help="folder with paralysis/ and no_paralysis/ (default: ../shared/datasets/stroke-faces)")
    parser.add_argument("--per-class", type=int, default=400, help="photos sampled per class; 0 = all (default 400)")
    parser.add_argument("--seed", type=int, default=0, help="sampling, group split and bootstrap seed (default 0)")
    parser.add_argument("--holdout", type=float, default=0.5,
                        help="share of each class's photos, by group, held out (default 0.5)")
    parser.add_argument("--dup-bits", type=int, default=4,
                        help="aligned-face pHash bits (of 64) within which two photos count as copies (default 4)")
    parser.add_argument("--dup-colour", type=float, default=16.0,
                        help="aligned colour-layout distance (RMS Delta E) within which two photos count as "
                             "copies (default 16)")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/eval_asymmetry_cache"),
                        help="folder for the landmark cache, outside the repository "
                             "(default /tmp/eval_asymmetry_cache)")
    parser.add_argument("--out", type=Path, default=None, help="folder for eval_asymmetry.json and roc.png")
    parser.add_argument("--rule", type=float, nargs=2, metavar=("POSITIVE_AT", "NEGATIVE_BELOW"), default=None,
                        help="also judge these thresholds (e.g. the ones in inference/engine/decide.py) on both parts")
    parser.add_argument("--bootstrap", type=int, default=500,
                        help="group bootstrap resamples for AUC intervals (0 = none)")
    args = parser.parse_args(argv)

    data_root = args.data.resolve()
    cache_dir = args.cache.resolve()
    for folder, what in ((cache_dir, "--cache"), (args.out.resolve() if args.out else None, "--out")):
        if folder is not None and (folder == REPO_ROOT or REPO_ROOT in folder.parents):
            parser.error(f"{what} must be outside the repository (it would hold data derived from the photos)")
    if not all((data_root / c).is_dir() for c in CLASSES):
        parser.error(f"{data_root} must contain {' and '.join(CLASSES)}/")

    rng = random.Random(args.seed)
    paths, labels = [], []
    for label, name in zip((1, 0), CLASSES):
        files = list_images(data_root / name)
        if args.per_class and args.per_class < len(files):
            files = sorted(rng.sample(files, args.per_class))
        paths += files
        labels += [label] * len(files)
    labels_all = np.array(labels)

    cache_file = cache_dir / f"landmarks-{hashlib.sha1(str(data_root).encode()).hexdigest()[:10]}.npz"
    records = extract(paths, data_root, LandmarkCache(cache_file))

    # --- detector coverage
    detection = {}
    for label, name in zip((1, 0), CLASSES):
        rows = [r for r, l in zip(records, labels_all) if l == label]
        attempts: dict[str, int] = {}
        for r in rows:
            # "plain, levelled +25": the detector refitted a tilted face upright; the angle varies.
            attempt = re.sub(r"levelled [+-]?\d+", "levelled", r["attempt"])
            attempts[attempt] = attempts.get(attempt, 0) + 1
        detection[name] = {
            "photos": len(rows),
            "faces_found": sum(r["found"] for r in rows),
            "no_face": sum(not r["found"] for r in rows),
            "by_pass": dict(sorted(attempts.items(), key=lambda kv: -kv[1])),
            "several_faces": sum(r["n_faces"] > 1 for r in rows),
            "median_seconds": float(np.median([r["seconds"] for r in rows])) if rows else 0.0,
        }

    found = np.array([r["found"] for r in records])
    kept = [r for r, f in zip(records, found) if f]
    y = labels_all[found]
    results = [measure(r["points"]) for r in kept]
    index = np.array([m.asymmetry_index for m in results])
    region_names = list(results[0].regions)
    features = {name: np.array([abs(m.regions[name]["difference"]) for m in results]) for name in region_names}

    # --- near-duplicate groups and the split
    hashes = np.array([r["hash"] for r in kept], dtype=np.uint64)
    mirrored = np.array([r["hash_mirror"] for r in kept], dtype=np.uint64)
    layouts = np.stack([r["layout"] for r in kept])
    layout_masks = np.stack([r["layout_mask"] for r in kept])
    groups = duplicate_groups(hashes, mirrored, layouts, layout_masks, args.dup_bits, args.dup_colour)
    sizes = np.bincount(groups)
    mixed = sum(len(set(y[groups == g])) > 1 for g in np.unique(groups))
    held = group_split(groups, y, args.holdout, args.seed)
    fit = ~held

    # --- AUCs
    def auc_row(scores: np.ndarray) -> dict:
        row = {"all": roc_auc(scores, y), "fit": roc_auc(scores[fit], y[fit]),
               "held_out": roc_auc(scores[held], y[held])}
        if args.bootstrap:
            row["held_out_ci95"] = group_bootstrap_auc(scores[held], y[held], groups[held], args.bootstrap, args.seed)
        return row

    aucs = {name: auc_row(values) for name, values in features.items()}
    aucs["asymmetry_index"] = auc_row(index)

    # --- thresholds fitted on the fitting groups, judged on the held-out ones
    positive_at = threshold_at_specificity(index[fit & (y == 0)], 0.90)
    negative_below = threshold_at_sensitivity(index[fit & (y == 1)], 0.90)
    if negative_below > positive_at:  # the two would overlap: no inconclusive band, one cut
        negative_below = positive_at
    sens_at_90_spec = {
        "threshold_from_fit": positive_at,
        "held_out_sensitivity": float((index[held & (y == 1)] >= positive_at).mean()),
        "held_out_specificity": float((index[held & (y == 0)] < positive_at).mean()),
        "held_out_oracle_sensitivity": float(
            (index[held & (y == 1)] >= threshold_at_specificity(index[held & (y == 0)], 0.90)).mean()),
    }
    decision = {
        "positive_at": round(positive_at, 3),
        "negative_below": round(negative_below, 3),
        "fit": rates(index[fit], y[fit], positive_at, negative_below),
        "held_out": rates(index[held], y[held], positive_at, negative_below),
    }
    if args.rule:
        given_positive, given_negative = args.rule
        decision["given_rule"] = {
            "positive_at": given_positive,
            "negative_below": given_negative,
            "fit": rates(index[fit], y[fit], given_positive, given_negative),
            "held_out": rates(index[held], y[held], given_positive, given_negative),
        }

    # --- refit of the constants on the fitting groups, in measure.py's form: units = each region's
    # healthy 90th percentile, weights = non-negative logistic on |difference| / unit, rescaled so
    # the index's healthy 90th percentile is 1.0. Once on the regions the index uses now, once on all.
    healthy_fit = fit & (y == 0)
    units = {n: float(np.percentile(features[n][healthy_fit], HEALTHY_PERCENTILE)) or 1.0 for n in region_names}

    def refit_constants(names: list[str]) -> dict:
        x = np.stack([features[n] / units[n] for n in names], axis=1)
        w, _ = fit_nonnegative_logistic(x[fit], y[fit].astype(float))
        score = x @ w
        scale = float(np.percentile(score[healthy_fit], HEALTHY_PERCENTILE)) or 1.0
        return {
            "INDEX_UNITS": {n: round(units[n], 2) for n in names},
            "INDEX_WEIGHTS": {n: round(float(v / scale), 3) for n, v in zip(names, w)},
            "auc_fit": roc_auc(score[fit], y[fit]),
            "auc_held_out": roc_auc(score[held], y[held]),
        }

    used = [n for n in INDEX_WEIGHTS if INDEX_WEIGHTS[n] > 0]
    refit = {
        "note": "index = sum(weight * |difference| / unit); unit = healthy 90th percentile of the region, weights"
                " rescaled so the index's healthy 90th percentile is 1.0; all fitted on the fitting groups only",
        "regions_in_index": refit_constants(used),
        "all_regions": refit_constants(region_names),
        "paralysis_index_tertiles_above_1_fit": [
            round(float(v), 2) for v in np.percentile(index[fit & (y == 1) & (index >= 1.0)], [100 / 3, 200 / 3])
        ] if np.any(fit & (y == 1) & (index >= 1.0)) else [],
    }

    healthy_index = index[y == 0]
    distribution = {
        name: {q: round(float(np.percentile(index[y == label], q)), 3) for q in (5, 25, 50, 75, 90, 95, 99)}
        for label, name in zip((1, 0), CLASSES)
    }
    severity_counts = {
        name: {band: int(sum(m.severity == band and l == label for m, l in zip(results, y)))
               for _, band in measure_module.SEVERITY_BANDS}
        for label, name in zip((1, 0), CLASSES)
    }

    report = {
        "command": " ".join([Path(sys.argv[0]).name] + (argv if argv is not None else sys.argv[1:])),
        "data": str(data_root),
        "per_class": args.per_class,
        "seed": args.seed,
        "detection": detection,
        "groups": {
            "dup_bits": args.dup_bits,
            "dup_colour": args.dup_colour,
            "photos_with_face": int(len(kept)),
            "groups": int(len(sizes)),
            "groups_per_class": {name: int(len(np.unique(groups[y == label]))) for label, name in zip((1, 0), CLASSES)},
            "largest_group": int(sizes.max()),
            "singletons": int((sizes == 1).sum()),
            "mixed_class_groups": int(mixed),
            "fit_photos": {name: int((fit & (y == label)).sum()) for label, name in zip((1, 0), CLASSES)},
            "held_out_photos": {name: int((held & (y == label)).sum()) for label, name in zip((1, 0), CLASSES)},
            "fit_groups": {name: int(len(np.unique(groups[fit & (y == label)])))
                           for label, name in zip((1, 0), CLASSES)},
            "held_out_groups": {name: int(len(np.unique(groups[held & (y == label)])))
                                for label, name in zip((1, 0), CLASSES)},
        },
        "index_constants": {"INDEX_UNITS": INDEX_UNITS, "INDEX_WEIGHTS": INDEX_WEIGHTS,
                            "SEVERITY_BANDS": measure_module.SEVERITY_BANDS},
        "auc": aucs,
        "sensitivity_at_90_specificity": sens_at_90_spec,
        "decision_thresholds": decision,
        "index_distribution": distribution,
        "severity_counts": severity_counts,
        "healthy_share_below_1": float((healthy_index < 1.0).mean()),
        "reference_refit": refit,
    }

    print_report(report)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "eval_asymmetry.json").write_text(json.dumps(report, indent=2, default=float))
        plotted = plot_roc(args.out / "roc.png", index, features, y, held, positive_at, negative_below)
        plot_note = f" and {args.out / 'roc.png'}" if plotted else " (no matplotlib: no plot)"
        print(f"\nWrote {args.out / 'eval_asymmetry.json'}{plot_note}")
    return 0


def print_report(report: dict) -> None:
    print("\nFace detection (largest face kept when several)")
    for name, d in report["detection"].items():
        passes = ", ".join(f"{k} {v}" for k, v in d["by_pass"].items())
        print(f"  {name:13s} {d['faces_found']:4d}/{d['photos']:<4d} faces found, {d['no_face']} without  [{passes}]"
              f"  several faces: {d['several_faces']}, median {1000 * d['median_seconds']:.0f} ms")
    g = report["groups"]
    print(f"\nNear-duplicate groups (aligned face: pHash <= {g['dup_bits']} bits or colour layout"
          f" <= {g['dup_colour']} RMS Delta E, mirrored copies included): {g['groups']} groups for"
          f" {g['photos_with_face']} photos ({g['groups_per_class']}), largest {g['largest_group']},"
          f" {g['singletons']} singletons, {g['mixed_class_groups']} mixing both classes")
    print(f"  fitting photos {g['fit_photos']} in groups {g['fit_groups']}; "
          f"held-out photos {g['held_out_photos']} in groups {g['held_out_groups']}")
    print("\nROC AUC, paralysis vs no_paralysis (|left - right| per region; held-out = other groups,"
          " 95% group bootstrap)")
    print(f"  {'feature':22s} {'all':>6s} {'fit':>6s} {'held-out':>9s}  ci95")
    for name, row in report["auc"].items():
        ci = row.get("held_out_ci95")
        ci_text = f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""
        print(f"  {name:22s} {row['all']:6.3f} {row['fit']:6.3f} {row['held_out']:9.3f}  {ci_text}")
    s = report["sensitivity_at_90_specificity"]
    print(f"\nSensitivity at 90% specificity (threshold {s['threshold_from_fit']:.3f} from the fitting groups): "
          f"held-out sensitivity {s['held_out_sensitivity']:.3f}, specificity {s['held_out_specificity']:.3f} "
          f"(threshold chosen on held-out itself: {s['held_out_oracle_sensitivity']:.3f})")
    d = report["decision_thresholds"]
    print(f"\nAsymmetry-only rule: positive_at={d['positive_at']} (90% specificity on fit), "
          f"negative_below={d['negative_below']} (90% sensitivity on fit)")
    print("  (sensitivity: paralysis photos called paralysis; specificity: healthy photos called no_paralysis;"
          " 'not called paralysis' counts inconclusive healthy photos as right)")

    def print_rates(parts: dict) -> None:
        for part in ("fit", "held_out"):
            r = parts[part]
            print(f"  {part:8s} n={r['n']:4d} sensitivity {r['sensitivity']:.3f} specificity {r['specificity']:.3f} "
                  f"(not called paralysis {r['specificity_not_called_positive']:.3f}) "
                  f"missed paralysis {r['missed_paralysis_rate']:.3f} "
                  f"inconclusive {r['inconclusive_rate']:.3f} (paralysis {r['inconclusive_rate_paralysis']:.3f}, "
                  f"healthy {r['inconclusive_rate_no_paralysis']:.3f}), "
                  f"accuracy when decided {r['accuracy_when_decided']:.3f}")

    print_rates(d)
    if "given_rule" in d:
        given = d["given_rule"]
        print(f"Given rule: positive_at={given['positive_at']}, negative_below={given['negative_below']}")
        print_rates(d["given_rule"])
    print("\nIndex distribution (percentiles)")
    for name, q in report["index_distribution"].items():
        print(f"  {name:13s} " + "  ".join(f"p{k}={v}" for k, v in q.items()))
    print(f"  healthy photos below 1.0: {report['healthy_share_below_1']:.3f}; "
          f"severity bands: {report['severity_counts']}")
    r = report["reference_refit"]
    for part, title in (("regions_in_index", "regions in the index"), ("all_regions", "all regions")):
        fit_ = r[part]
        print(f"\nRefit on the fitting groups, {title}: held-out AUC {fit_['auc_held_out']:.3f}"
              f" (fit {fit_['auc_fit']:.3f})")
        print(f"  INDEX_UNITS   {fit_['INDEX_UNITS']}")
        print(f"  INDEX_WEIGHTS {fit_['INDEX_WEIGHTS']}")
    print(f"  paralysis index tertiles above 1.0 (fit): {r['paralysis_index_tertiles_above_1_fit']}")
    print("\nCaveats: classes come from different sources (patient close-ups vs press photos); near-duplicate"
          " grouping is approximate (different photos of one person are not linked); not a clinical population.")


def plot_roc(path: Path, index, features, y, held, positive_at, negative_below) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(6.5, 6))
    yh = y[held]
    ranked = sorted(features, key=lambda n: -roc_auc(features[n][held], yh))
    for name in ranked[:4]:
        fpr, tpr = roc_curve(features[name][held], yh)
        ax.plot(fpr, tpr, lw=1, alpha=0.7, label=f"{name} (AUC {roc_auc(features[name][held], yh):.3f})")
    fpr, tpr = roc_curve(index[held], yh)
    ax.plot(fpr, tpr, lw=2.5, color="black", label=f"asymmetry_index (AUC {roc_auc(index[held], yh):.3f})")
    for threshold, marker, label in ((positive_at, "o", "positive_at"), (negative_below, "s", "negative_below")):
        sens = float((index[held][yh == 1] >= threshold).mean())
        fp = float((index[held][yh == 0] >= threshold).mean())
        ax.plot([fp], [sens], marker=marker, color="crimson", ms=8, ls="none", label=f"{label}={threshold:.2f}")
    ax.plot([0, 1], [0, 1], ls=":", color="grey")
    ax.set_xlabel("1 - specificity (no_paralysis called paralysis)")
    ax.set_ylabel("sensitivity")
    ax.set_title(f"Held-out groups: {int((yh == 1).sum())} paralysis, {int((yh == 0).sum())} no_paralysis")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


if __name__ == "__main__":
    raise SystemExit(main())
