"""Test photos made from what the packages ship: scikit-image's astronaut portrait (a real face).

No test needs ../shared: the droop is applied by warping the real face around one mouth corner.
"""

from __future__ import annotations

import functools
import io

import cv2
import numpy as np
from PIL import Image


@functools.lru_cache(maxsize=1)
def astronaut() -> np.ndarray:
    from skimage import data

    return data.astronaut().copy()


@functools.lru_cache(maxsize=1)
def astronaut_landmarks() -> np.ndarray:
    from inference.engine.face import FaceMeshDetector

    return FaceMeshDetector().find(astronaut()).faces[0]


def droop(rgb: np.ndarray, points: np.ndarray, *, side: str = "left", pixels: float = 10.0) -> np.ndarray:
    """Pull the patient's `side` mouth corner (and the cheek around it) down by `pixels`."""
    corner = points[291] if side == "left" else points[61]
    mouth_width = float(np.linalg.norm(points[291] - points[61]))
    sigma = 0.45 * mouth_width
    height, width = rgb.shape[:2]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    weight = np.exp(-((xs - corner[0]) ** 2 + (ys - corner[1]) ** 2) / (2 * sigma**2))
    # Each output pixel samples from higher up, so the content moves down.
    map_y = ys - pixels * weight
    return cv2.remap(rgb, xs, map_y.astype(np.float32), interpolation=cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REFLECT101)


def drooped_astronaut(side: str = "left", pixels: float = 10.0) -> np.ndarray:
    return droop(astronaut(), astronaut_landmarks(), side=side, pixels=pixels)


def jpeg_bytes(rgb: np.ndarray, **save_options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=92, **save_options)
    return buffer.getvalue()


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
