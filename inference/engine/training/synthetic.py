"""One-sided facial droops drawn on healthy aligned faces, at their real landmarks: training positives
that differ from their own negatives only by the droop.

Why: the real paralysis photos here come from other sources than the healthy ones (patient close-ups
against press photos), so a classifier of faces alone learns the source. A healthy face with a droop
drawn on it and the same face without one have the same source, lighting and person: the only thing
that tells them apart is the weakness itself.

What is drawn, on one side (either, at random), at a random strength:
- ``central`` (the stroke pattern): the mouth corner sags and the lips are drawn to the working side,
  the cheek sags, the nasolabial fold flattens; forehead and eye are left as they are;
- ``peripheral`` (the whole half, as in Bell's palsy): the same below, and the lower lid drops (the
  eye opens wider), the brow drops and the forehead's creases smooth out.

Every face, negative or positive, goes through the same resampling: negatives get a *symmetric*
warp of the same kind (both corners, both cheeks, both brows alike), so neither the interpolation's
softness nor a changed expression tells the classes apart, only a difference between the two sides.
Displacements are backward maps for ``cv2.remap`` built from Gaussian bumps centred on landmarks,
scaled by the face's eye distance, so they follow the face whatever its size in the crop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from inference.engine.measure import LEFT, RIGHT

# Face Mesh indices of the regions the droop moves (the mesh's "right" is the patient's right).
CHEEK = {"right": 205, "left": 425}
NASOLABIAL = {"right": (129, 203, 206, 216), "left": (358, 423, 426, 436)}
FOREHEAD = {"right": (67, 103, 109, 104), "left": (297, 332, 338, 333)}
SIDES = {"right": RIGHT, "left": LEFT}
KINDS = ("central", "peripheral")


@dataclass(frozen=True)
class Droop:
    """What was drawn: side "right" / "left" (the patient's), kind, strength 0..1; side "" for none."""

    side: str = ""
    kind: str = ""
    strength: float = 0.0


def _bump(grid_x: np.ndarray, grid_y: np.ndarray, centre: np.ndarray, radius: float) -> np.ndarray:
    return np.exp(-((grid_x - centre[0]) ** 2 + (grid_y - centre[1]) ** 2) / (2 * radius * radius))


def _side_field(points: np.ndarray, side: str, kind: str, strength: float, grid, unit: float, midline_x: float):
    """Forward displacement (dx, dy) of one side's droop, and the mask of where the fold flattens."""
    grid_x, grid_y = grid
    marks = SIDES[side]
    towards_midline = 1.0 if points[marks["mouth_corner"], 0] < midline_x else -1.0
    corner = points[marks["mouth_corner"]]
    cheek = points[CHEEK[side]]
    dx = np.zeros_like(grid_x)
    dy = np.zeros_like(grid_x)
    # Mouth corner: down, and in towards the midline (the working side pulls the lips across).
    corner_bump = _bump(grid_x, grid_y, corner, 0.28 * unit)
    dy += corner_bump * 0.13 * unit * strength
    dx += corner_bump * towards_midline * 0.05 * unit * strength
    # The lips follow, less: the whole mouth shifts to the working side.
    lips = _bump(grid_x, grid_y, (points[13] + points[14]) / 2, 0.45 * unit)
    dx += lips * towards_midline * 0.035 * unit * strength
    dy += lips * 0.02 * unit * strength
    # The cheek sags, below the lower lid (a central palsy spares the eye).
    below_lid = np.clip((grid_y - points[marks["lid_lower"], 1] - 0.08 * unit) / (0.2 * unit), 0, 1)
    dy += _bump(grid_x, grid_y, cheek, 0.45 * unit) * below_lid * 0.06 * unit * strength
    flatten = np.zeros_like(grid_x)
    for index in NASOLABIAL[side]:
        flatten = np.maximum(flatten, _bump(grid_x, grid_y, points[index], 0.16 * unit))
    if kind == "peripheral":
        # The lower lid sags between the eye's corners (the canthi stay where they are, and so does the
        # eye line the measurements level the face by); the brow drops above the upper lid.
        lower_lid = points[marks["lid_lower"]]
        eye_y = points[marks["iris_center"], 1]
        iris_bottom = eye_y + 0.09 * unit  # the eyeball stays: only the lid below the iris moves
        below_eye = np.clip((grid_y - iris_bottom) / (0.04 * unit), 0, 1)
        corners_x = sorted((points[marks["eye_outer"], 0], points[marks["eye_inner"], 0]))
        half_width = max((corners_x[1] - corners_x[0]) / 2, 1.0)
        between = np.clip(1 - np.abs(grid_x - (corners_x[0] + corners_x[1]) / 2) / half_width, 0, 1)
        dy += _bump(grid_x, grid_y, lower_lid, 0.14 * unit) * below_eye * between * 0.05 * unit * strength
        brow = points[list(marks["brow"])].mean(axis=0)
        upper_lid_y = points[marks["lid_upper"], 1]
        above_lid = np.clip((upper_lid_y - grid_y) / (0.12 * unit), 0, 1)
        dy += _bump(grid_x, grid_y, brow, 0.3 * unit) * above_lid * 0.07 * unit * strength
        for index in FOREHEAD[side]:
            flatten = np.maximum(flatten, _bump(grid_x, grid_y, points[index], 0.2 * unit))
    return dx, dy, flatten


def draw(face: np.ndarray, points: np.ndarray, droop: Droop, *, symmetric_strength: float = 0.0) -> np.ndarray:
    """``face`` (S, S, 3) uint8 with ``droop`` drawn at ``points`` (478, 2, crop pixels), and a
    symmetric change of the same kind at ``symmetric_strength`` (both sides alike): negatives get that
    alone, so that they are resampled as positives are."""
    import cv2

    size = face.shape[0]
    grid_x, grid_y = np.meshgrid(np.arange(size, dtype=np.float32), np.arange(size, dtype=np.float32))
    unit = float(np.hypot(*(points[LEFT["iris_center"]] - points[RIGHT["iris_center"]])))
    midline_x = float(points[168, 0] + points[152, 0]) / 2
    dx = np.zeros_like(grid_x)
    dy = np.zeros_like(grid_x)
    flatten = np.zeros_like(grid_x)
    if droop.side:
        fdx, fdy, ff = _side_field(points, droop.side, droop.kind, droop.strength, (grid_x, grid_y), unit, midline_x)
        dx, dy, flatten = dx + fdx, dy + fdy, np.maximum(flatten, ff * droop.strength)
    if symmetric_strength:
        for side in SIDES:
            fdx, fdy, ff = _side_field(
                points, side, droop.kind or "peripheral", symmetric_strength, (grid_x, grid_y), unit, midline_x
            )
            dx, dy, flatten = dx + fdx * 0.5, dy + fdy * 0.5, np.maximum(flatten, ff * symmetric_strength * 0.5)
    # Backward map: the output pixel at x shows the input at x - d (small, smooth displacements).
    warped = cv2.remap(face, grid_x - dx, grid_y - dy, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
    if flatten.max() > 0:
        # A flatter fold is less shading, not less skin: the shading (what a blur of a tenth of the
        # iris distance keeps, minus the fine texture) is smoothed, the texture stays.
        image = warped.astype(np.float32)
        fine = cv2.GaussianBlur(image, (0, 0), sigmaX=max(0.6, 0.012 * unit))
        shading = cv2.GaussianBlur(image, (0, 0), sigmaX=max(1.5, 0.1 * unit))
        alpha = np.clip(flatten * 0.8, 0, 1)[..., None]
        warped = (image - alpha * (fine - shading)).round().clip(0, 255).astype(np.uint8)
    return warped


# Strength 1 moves the mouth corner down by 0.13 of the distance between the irises (about 8 mm); on a
# healthy face at rest strengths 0.4-1.8 span asymmetry indices of about 0.3-1.6, mild to severe.
MAX_STRENGTH = 1.8


def random_droop(rng: np.random.Generator, *, min_strength: float = 0.4) -> Droop:
    """Either side, either kind, a strength from mild to severe (uniform over min_strength..MAX_STRENGTH)."""
    return Droop(
        side=str(rng.choice(("right", "left"))),
        kind=str(rng.choice(KINDS)),
        strength=float(rng.uniform(min_strength, MAX_STRENGTH)),
    )


def droop_batch(
    faces: np.ndarray, labels: np.ndarray, landmarks: np.ndarray, share: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(faces, labels) with a random droop drawn on ``share`` of the healthy faces (they become
    positives); every face, real paralysis included, goes through the same resampling (a symmetric
    change of a random strength)."""
    out = np.empty_like(faces)
    targets = labels.astype(np.int64).copy()
    for i, (face, points) in enumerate(zip(faces, landmarks)):
        if labels[i] == 0 and rng.random() < share:
            out[i] = draw(face, points, random_droop(rng))
            targets[i] = 1
        else:
            kind = "central" if rng.random() < 0.5 else "peripheral"
            out[i] = draw(face, points, Droop(kind=kind), symmetric_strength=float(rng.uniform(0, 1)))
    return out, targets


def paired_batch(
    faces: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator, *, min_strength: float = 0.4
) -> tuple[np.ndarray, np.ndarray]:
    """Healthy faces -> (2N faces, labels): first each face with a symmetric change (label 0), then the
    same faces with the same change and a one-sided droop on top (label 1). Trained on together (and
    augmented alike, fitting._augment's ``paired``), the pair differs by the droop alone."""
    negatives, positives = np.empty_like(faces), np.empty_like(faces)
    for i, (face, points) in enumerate(zip(faces, landmarks)):
        droop = random_droop(rng, min_strength=min_strength)
        base = float(rng.uniform(0, 1.0))
        negatives[i] = draw(face, points, Droop(kind=droop.kind), symmetric_strength=base)
        positives[i] = draw(face, points, droop, symmetric_strength=base)
    labels = np.r_[np.zeros(len(faces), np.int64), np.ones(len(faces), np.int64)]
    return np.concatenate([negatives, positives]), labels
