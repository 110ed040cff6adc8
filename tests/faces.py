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


def portrait_pack(paths: list[str], labels: list[int], size: int = 48):
    """A training pack (training.data.PreparedSet) of copies of the portrait aligned at ``size`` px with
    its landmarks (droops can be drawn on them), each a little brighter or darker, under the given class
    folders and file names."""
    from inference.engine.align import aligned_face, crop_points
    from inference.engine.training.data import PreparedSet

    points = astronaut_landmarks()
    face, at = aligned_face(astronaut(), points, size=size), crop_points(points, size).astype(np.float32)
    count = len(paths)
    return PreparedSet(
        faces=np.stack([np.clip(face * (0.8 + 0.4 * i / count), 0, 255).astype(np.uint8) for i in range(count)]),
        labels=np.array(labels),
        asymmetry=np.zeros(count, np.float32),
        paths=paths,
        splits=[""] * count,
        groups=np.arange(count),
        landmarks=np.stack([at] * count),
        kinds=[p.split("/")[-2] for p in paths],
    )


def droop(rgb: np.ndarray, points: np.ndarray, *, side: str = "left", pixels: float = 16.0) -> np.ndarray:
    """Mimic a facial palsy on the patient's `side`: that mouth corner sags by `pixels` and the lips
    are drawn towards the working side by as much, as the healthy muscles pull unopposed."""
    corner = points[291] if side == "left" else points[61]
    mouth_centre = (points[13] + points[14]) / 2
    mouth_width = float(np.linalg.norm(points[291] - points[61]))
    height, width = rgb.shape[:2]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)

    def bump(centre, sigma):
        return np.exp(-((xs - centre[0]) ** 2 + (ys - centre[1]) ** 2) / (2 * sigma**2))

    # The patient's left is the image's right: pulling towards the working (right) side moves content
    # to smaller x. Each output pixel samples from where its content came from, hence the signs.
    towards_working = -1.0 if side == "left" else 1.0
    map_y = ys - pixels * bump(corner, 0.45 * mouth_width)
    map_x = xs - towards_working * pixels * bump(mouth_centre, 0.6 * mouth_width)
    return cv2.remap(
        rgb,
        map_x.astype(np.float32),
        map_y.astype(np.float32),
        interpolation=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REFLECT101,
    )


def drooped_astronaut(side: str = "left", pixels: float = 16.0) -> np.ndarray:
    return droop(astronaut(), astronaut_landmarks(), side=side, pixels=pixels)


def jpeg_bytes(rgb: np.ndarray, **save_options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=92, **save_options)
    return buffer.getvalue()


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@functools.lru_cache(maxsize=1)
def symmetric_astronaut() -> np.ndarray:
    """A face exactly symmetric about its middle column: the astronaut levelled, cut at her facial
    midline, and her image-left half joined to its own mirror image. Whatever is drawn on one side of
    it can be compared with the same thing drawn on the other."""
    from inference.engine.measure import level

    rgb, points = astronaut(), astronaut_landmarks()
    _, roll, centre = level(points)
    upright = cv2.warpAffine(
        rgb,
        cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), roll, 1.0),
        (rgb.shape[1], rgb.shape[0]),
        borderMode=cv2.BORDER_REFLECT101,
    )
    middle = int(round(centre[0]))
    half = upright[:, max(0, middle - 200) : middle]
    return np.ascontiguousarray(np.hstack([half, half[:, ::-1]]))


@functools.lru_cache(maxsize=1)
def symmetric_landmarks() -> np.ndarray:
    from inference.engine.face import FaceMeshDetector

    return FaceMeshDetector().find(symmetric_astronaut()).faces[0]


def sag_lower_lid(rgb: np.ndarray, points: np.ndarray, *, side: str, pixels: float) -> np.ndarray:
    """Mimic the eye of a peripheral palsy on the patient's `side`: the lower lid sags by `pixels`,
    showing more white below the iris (the iris itself stays where it is)."""
    lid = points[[373, 374, 380]].mean(axis=0) if side == "left" else points[[144, 145, 153]].mean(axis=0)
    eye_width = float(np.linalg.norm(points[263] - points[362]))
    height, width = rgb.shape[:2]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    centre = lid + [0.0, 0.25 * eye_width]
    bump = np.exp(
        -((xs - centre[0]) ** 2 / (2 * (0.45 * eye_width) ** 2) + (ys - centre[1]) ** 2 / (2 * (0.3 * eye_width) ** 2))
    )
    map_y = ys - pixels * bump
    return cv2.remap(
        rgb, xs, map_y.astype(np.float32), interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101
    )


def jpeg_with_empty_scans(rgb: np.ndarray, scans: int) -> bytes:
    """A progressive JPEG with `scans` extra empty DC-refinement scans before its end: small on the
    wire (a dozen bytes a scan), and a full pass over the picture each for the decoder (the security
    review's 341 KB file with 20,000 of them cost 48 s of CPU)."""
    data = jpeg_bytes(rgb, progressive=True)
    components = Image.open(io.BytesIO(data)).layers
    # SOS: length, component count, (id, tables) per component, Ss=0, Se=0, Ah=1 Al=0 (a DC refinement).
    body = bytes([components]) + b"".join(bytes([index + 1, 0]) for index in range(components)) + bytes([0, 0, 0x10])
    empty_scan = b"\xff\xda" + (len(body) + 2).to_bytes(2, "big") + body
    end = data.rindex(b"\xff\xd9")
    return data[:end] + empty_scan * scans + data[end:]


def distant_astronaut(fraction: float = 0.1) -> np.ndarray:
    """The portrait as a phone photo taken from across the room: the face (its box) ``fraction`` of
    the photo's width, on a plain wall, at a phone camera's resolution (3,120 px wide for 0.1)."""
    big = cv2.resize(astronaut(), None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC)  # the face's box ~310 px
    width = int(310 / fraction)
    height = max(int(width * 0.75), big.shape[0] + 10)
    photo = np.full((height, width, 3), 170, np.uint8)
    y, x = (height - big.shape[0]) // 2, (width - big.shape[1]) // 2
    photo[y : y + big.shape[0], x : x + big.shape[1]] = big
    return photo


def blurred_astronaut(sigma: float = 10.0) -> np.ndarray:
    """The portrait shaken out of focus, past where any mesh can place its points."""
    return cv2.GaussianBlur(astronaut(), (0, 0), sigma)
