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


def aligned_face(rgb: np.ndarray, points: np.ndarray, size: int = 224) -> np.ndarray:
    right_eye, left_eye = eye_centre(points, RIGHT), eye_centre(points, LEFT)
    dx, dy = left_eye - right_eye
    angle = float(np.degrees(np.arctan2(dy, dx)))
    eye_distance = float(np.hypot(dx, dy))
    scale = size / (CROP_EYE_DISTANCES * eye_distance)
    centre = (right_eye + left_eye) / 2
    matrix = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), angle, scale)
    # Move the eye midpoint to its place in the output square.
    matrix[0, 2] += size / 2 - centre[0]
    matrix[1, 2] += size * EYE_LINE_Y - centre[1]
    return cv2.warpAffine(rgb, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
