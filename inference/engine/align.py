"""Face alignment shared by training and serving: eyes level, face centred, fixed size.

Classifying the aligned face rather than the whole photo keeps the model from learning a data set's
framing, resolution or background instead of the face.
"""

from __future__ import annotations

import cv2
import numpy as np

from inference.engine.measure import LEFT, RIGHT, eye_centre

# The crop spans this many eye distances; the eyes sit at EYE_LINE_Y of its height.
CROP_EYE_DISTANCES = 2.6
EYE_LINE_Y = 0.38
# A bilinear warp that shrinks more than this samples only some pixels and aliases skin and hair
# texture; larger faces are first shrunk with area averaging, so a phone photo and a small photo of
# the same face give the classifier the same crop.
MAX_WARP_SHRINK = 0.5


def aligned_face(rgb: np.ndarray, points: np.ndarray, size: int = 224) -> np.ndarray:
    right_eye, left_eye = eye_centre(points, RIGHT), eye_centre(points, LEFT)
    dx, dy = left_eye - right_eye
    angle = float(np.degrees(np.arctan2(dy, dx)))
    eye_distance = float(np.hypot(dx, dy))
    scale = size / (CROP_EYE_DISTANCES * eye_distance)
    centre = (right_eye + left_eye) / 2
    if scale < MAX_WARP_SHRINK:
        rgb, centre, scale = _shrink_around(rgb, centre, scale, reach=1.0 * size / scale)
    matrix = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), angle, scale)
    # Move the eye midpoint to its place in the output square.
    matrix[0, 2] += size / 2 - centre[0]
    matrix[1, 2] += size * EYE_LINE_Y - centre[1]
    return cv2.warpAffine(rgb, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)


def crop_points(points: np.ndarray, size: int) -> np.ndarray:
    """Where ``points`` (photo pixels) land in ``aligned_face(rgb, points, size)``: the same rotation
    about the eye midpoint, scale and shift (the area shrink of a large photo changes no geometry)."""
    right_eye, left_eye = eye_centre(points, RIGHT), eye_centre(points, LEFT)
    dx, dy = left_eye - right_eye
    angle = float(np.degrees(np.arctan2(dy, dx)))
    scale = size / (CROP_EYE_DISTANCES * float(np.hypot(dx, dy)))
    centre = (right_eye + left_eye) / 2
    matrix = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), angle, scale)
    matrix[0, 2] += size / 2 - centre[0]
    matrix[1, 2] += size * EYE_LINE_Y - centre[1]
    return np.asarray(points, dtype=np.float64) @ matrix[:, :2].T + matrix[:, 2]


def _shrink_around(rgb: np.ndarray, centre: np.ndarray, scale: float, reach: float):
    """Area-average the region within ``reach`` pixels of ``centre`` (it holds every corner of the
    rotated crop) down by ``scale``; return it with the centre and the scale left for the warp."""
    height, width = rgb.shape[:2]
    x0, y0 = (int(max(0.0, np.floor(v - reach))) for v in centre)
    x1, y1 = int(min(width, np.ceil(centre[0] + reach))), int(min(height, np.ceil(centre[1] + reach)))
    region = rgb[y0:y1, x0:x1]
    target = (max(1, round(region.shape[1] * scale)), max(1, round(region.shape[0] * scale)))
    small = cv2.resize(region, target, interpolation=cv2.INTER_AREA)
    factor = np.array([small.shape[1] / region.shape[1], small.shape[0] / region.shape[0]])
    return small, (centre - [x0, y0]) * factor, scale / float(factor.mean())
