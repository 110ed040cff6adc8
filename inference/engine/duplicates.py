"""Near-duplicate grouping of face photos, so augmented copies of one photo stay on one side of a split.

Augmented data sets (stroke-faces: about 40-60 rotated, stretched, cropped and mirrored copies of
each source photo) put the same face in training and test under a plain random split. A hash of the
whole photo misses these copies, and a loose hash threshold chains the whole set into one group.

Both signatures here are taken of the *aligned face*: an affine warp sending the two eye centres and
the mouth centre to fixed points. Three point pairs fix an affine map exactly, so the warp undoes
rotation, scale, translation, stretch and shear. Two photos are linked when either
- the 64-bit DCT hash (pHash) of the tight grey face crop is within MAX_BITS bits (on stroke-faces,
  copies of one photo: mostly 0-4 bits; different photos: mostly 16-40), or
- the colour layout of a wider crop (face, hair, collar, nearby background: mean CIELAB per cell of
  an 8x8 grid, cells the photo does not cover left out) is within MAX_COLOUR RMS Delta E (copies:
  mostly under 12; different photos: mostly over 20), which catches copies whose fine detail the
  hash misses (strong stretch, heavy crops, blur).
Each photo is also compared with the others' mirror images, and groups are connected components, so
chains of copies end up together. Over-linking only makes held-out figures pessimistic; under-linking
leaks. Different photos of the same person are not recognised (no identity model).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

import cv2
import numpy as np

from inference.engine.measure import LEFT, LOWER_LIP, RIGHT, UPPER_LIP, eye_centre

CROP_SIZE = 64
# Where the aligned crops put the right eye, left eye and mouth centre (fractions of the side): the
# tight crop holds brows to chin; the wide one adds hair, collar and background next to the head.
CROP_TEMPLATE = np.array([[0.30, 0.32], [0.70, 0.32], [0.50, 0.74]], dtype=np.float32)
WIDE_TEMPLATE = np.array([[0.36, 0.42], [0.64, 0.42], [0.50, 0.66]], dtype=np.float32)
LAYOUT_GRID = 8
# Chosen on stroke-faces (bench/eval_asymmetry.py): looser cuts start chaining unrelated photos.
MAX_BITS = 4
MAX_COLOUR = 16.0
# Two layouts are only comparable over enough shared cells; fewer than this counts as "far apart".
MIN_SHARED_CELLS = 20
FAR = 99.0


def alignment_source(points: np.ndarray) -> np.ndarray:
    """Right eye centre, left eye centre and mouth centre: the three points an affine warp pins."""
    return np.array(
        [
            eye_centre(points, RIGHT),
            eye_centre(points, LEFT),
            (points[UPPER_LIP] + points[LOWER_LIP] + points[RIGHT["mouth_corner"]] + points[LEFT["mouth_corner"]]) / 4,
        ],
        dtype=np.float32,
    )


def aligned_crop(rgb: np.ndarray, points: np.ndarray) -> np.ndarray:
    """64x64 grey face warped onto CROP_TEMPLATE, so copies differing by any affine distortion match."""
    matrix = cv2.getAffineTransform(alignment_source(points), CROP_TEMPLATE * CROP_SIZE)
    grey = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
    return cv2.warpAffine(grey, matrix, (CROP_SIZE, CROP_SIZE), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)


def colour_layout(rgb: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean CIELAB colour per cell of an 8x8 grid over the wide aligned crop, and which cells the photo
    covers (a rotated or cropped copy leaves corners empty, which must not count as a difference)."""
    matrix = cv2.getAffineTransform(alignment_source(points), WIDE_TEMPLATE * CROP_SIZE)
    size = (CROP_SIZE, CROP_SIZE)
    crop = cv2.warpAffine(
        np.ascontiguousarray(rgb),
        matrix,
        size,
        flags=cv2.INTER_AREA,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(0, 0, 0),
    )
    covered = cv2.warpAffine(
        np.ones(rgb.shape[:2], np.float32),
        matrix,
        size,
        flags=cv2.INTER_NEAREST,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
    lab = cv2.cvtColor(crop, cv2.COLOR_RGB2LAB).astype(np.float32) * covered[..., None]
    grid = (LAYOUT_GRID, LAYOUT_GRID)
    share = cv2.resize(covered, grid, interpolation=cv2.INTER_AREA)
    mean = cv2.resize(lab, grid, interpolation=cv2.INTER_AREA) / np.maximum(share, 1e-3)[..., None]
    return mean.astype(np.float32), share > 0.6


def phash(grey: np.ndarray) -> int:
    """64-bit DCT hash: signs of the 8x8 lowest frequencies (less DC) against their median; robust to
    brightness, contrast and blur, unlike a pixel or difference hash."""
    small = cv2.resize(grey.astype(np.float32), (32, 32), interpolation=cv2.INTER_AREA)
    low = cv2.dct(small)[:8, :8].flatten()[1:]
    bits = low > np.median(low)
    return int("".join("1" if b else "0" for b in bits), 2)


def signature(rgb: np.ndarray, points: np.ndarray) -> dict:
    """What duplicate_groups needs of one photo (RGB uint8 and its 478 landmarks), small enough to cache:
    hash and hash_mirror (ints), layout ((8, 8, 3) float32) and layout_mask ((8, 8) bool)."""
    crop = aligned_crop(rgb, points)
    layout, layout_mask = colour_layout(rgb, points)
    return {"hash": phash(crop), "hash_mirror": phash(crop[:, ::-1]), "layout": layout, "layout_mask": layout_mask}


def _popcount(values: np.ndarray) -> np.ndarray:
    return np.unpackbits(values.view(np.uint8).reshape(*values.shape, 8), axis=-1).sum(axis=-1)


def layout_distances(layouts: np.ndarray, masks: np.ndarray, rows: slice) -> np.ndarray:
    """RMS Delta E of photos ``rows`` against every photo or its mirror image (the closer), over shared
    cells (FAR if too few); matrix products, |a-b|^2 = |a|^2 + |b|^2 - 2ab, keep thousands to seconds."""
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
        distance = np.where(
            shared >= MIN_SHARED_CELLS, np.sqrt(np.maximum(squares - 2 * cross, 0) / np.maximum(shared, 1)), FAR
        )
        best = distance if best is None else np.minimum(best, distance)
    return best


def duplicate_groups(
    signatures: Sequence[Mapping], *, max_bits: int = MAX_BITS, max_colour: float = MAX_COLOUR
) -> np.ndarray:
    """Group id per photo: connected components of "hash within max_bits or colour layout within
    max_colour, directly or mirrored". ``signatures`` are signature() dicts (extra keys are ignored)."""
    n = len(signatures)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    hashes = np.array([s["hash"] for s in signatures], dtype=np.uint64)
    mirrored = np.array([s["hash_mirror"] for s in signatures], dtype=np.uint64)
    layouts = np.stack([s["layout"] for s in signatures])
    masks = np.stack([s["layout_mask"] for s in signatures])
    parent = np.arange(n)

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    chunk = 256  # bounds the pairwise matrices' memory
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


def split_groups(
    groups: np.ndarray, labels: np.ndarray, fractions: Mapping[str, float], *, rest: str, seed: int
) -> np.ndarray:
    """Split name per photo, moving whole groups so no face is on two sides; per majority class, shuffled
    groups fill each part of ``fractions`` in turn to that share of the class, the rest go to ``rest``."""
    groups = np.asarray(groups)
    labels = np.asarray(labels)
    rng = random.Random(seed)
    group_ids = np.unique(groups)
    members = {int(g): groups == g for g in group_ids}
    majority = {g: int(np.bincount(labels[m]).argmax()) for g, m in members.items()}  # ties: lower label
    assigned = np.full(len(groups), rest, dtype=object)
    for label in sorted(set(majority.values()), reverse=True):
        ids = [g for g in members if majority[g] == label]
        rng.shuffle(ids)
        total = sum(int(members[g].sum()) for g in ids)
        filled = dict.fromkeys(fractions, 0)
        for g in ids:
            part = next((p for p, share in fractions.items() if filled[p] < share * total), rest)
            assigned[members[g]] = part
            if part != rest:
                filled[part] += int(members[g].sum())
    return assigned
