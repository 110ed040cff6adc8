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


# --- Drawn exams (issue 41): poses drawn on a face by warping it at its landmarks -----------------
# The patient's right is the image's left. Amounts are in pixels of the photo (lids: the fraction of
# the resting lid gap closed), so a test knows the percentage it drew: the weaker side's movement over
# the stronger's.
_SIDE_MARKS = {
    "right": {
        "brow": (70, 63, 105, 66, 107),
        "upper": (158, 159, 160),
        "lower": (144, 145, 153),
        "corners": (33, 133),
        "mouth": 61,
        "brow_lower": (46, 53, 52, 65, 55),
    },
    "left": {
        "brow": (300, 293, 334, 296, 336),
        "upper": (385, 386, 387),
        "lower": (373, 374, 380),
        "corners": (263, 362),
        "mouth": 291,
        "brow_lower": (276, 283, 282, 295, 285),
    },
}


def draw_pose(
    rgb: np.ndarray,
    points: np.ndarray,
    *,
    brow_lift: tuple[float, float] = (0.0, 0.0),
    corner_pull: tuple[float, float] = (0.0, 0.0),
    lid_close: tuple[float, float] = (0.0, 0.0),
    jitter_seed: int | None = None,
) -> np.ndarray:
    """``rgb`` with a pose drawn on it at ``points`` (its mesh): each pair is (patient's right, left).

    - ``brow_lift``: the brow and the forehead above it move up by that many pixels; the eye stays.
    - ``corner_pull``: the mouth corner moves that many pixels up and out at 45 degrees (a smile's pull).
    - ``lid_close``: the upper lid comes down over that fraction of the resting lid gap (0.95: a gap of
      a twentieth left, which the engine counts as closed), the lower lid and the canthi stay.
    - ``jitter_seed``: a burst frame: the whole photo shifted by up to a pixel, turned by up to 0.3
      degrees, zoomed by up to 0.5% and given sensor noise (sigma 2 grey levels), from that seed.
    """
    height, width = rgb.shape[:2]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    unit = float(np.linalg.norm(points[473] - points[468]))  # between the irises
    midline_x = float(points[168, 0] + points[152, 0]) / 2
    # Backward map: the output pixel at (x, y) shows the input at (x - dx, y - dy).
    dx = np.zeros_like(xs)
    dy = np.zeros_like(ys)
    for side, brow, corner, lid in zip(("right", "left"), brow_lift, corner_pull, lid_close):
        marks = _SIDE_MARKS[side]
        if brow:
            centre = points[list(marks["brow"])].mean(axis=0)
            lid_y = points[list(marks["upper"]), 1].mean()
            # Full lift from the brow's lower edge up, none at the upper lid: the eye stays where it is.
            edge = points[list(marks["brow_lower"]), 1].mean()
            vertical = np.clip((lid_y - ys) / max(lid_y - edge, 1.0), 0, 1)
            vertical *= np.exp(-(np.clip(centre[1] - ys, 0, None) ** 2) / (2 * (0.8 * unit) ** 2))
            across = np.exp(-((xs - centre[0]) ** 2) / (2 * (0.32 * unit) ** 2))
            dy -= brow * vertical * across
        if corner:
            at = points[marks["mouth"]]
            outward = -1.0 if at[0] < midline_x else 1.0
            bump = np.exp(-((xs - at[0]) ** 2 + (ys - at[1]) ** 2) / (2 * (0.3 * unit) ** 2))
            dx += corner * outward / np.sqrt(2) * bump
            dy -= corner / np.sqrt(2) * bump
        if lid:
            upper_y = points[list(marks["upper"]), 1].mean()
            lower_y = points[list(marks["lower"]), 1].mean()
            brow_y = points[list(marks["brow"]), 1].mean()
            corner_x = points[list(marks["corners"]), 0]
            middle, half = corner_x.mean(), max(abs(corner_x[1] - corner_x[0]) / 2, 1.0)
            # The gap narrows towards the canthi: close each column by its share of the middle's gap.
            profile = np.clip(1 - ((xs - middle) / half) ** 2, 0, 1)
            shift = lid * (lower_y - upper_y) * profile
            target = upper_y + shift  # where the upper lid's margin comes to
            # The lid's skin slides down over the eye (the eye below the new margin stays, covered above
            # it); the skin between the brow and the lid stretches.
            rising = np.clip((ys - brow_y) / np.maximum(upper_y - brow_y, 1.0), 0, 1)
            dy += shift * np.where(ys <= target, rising, 0.0)
    frame = cv2.remap(rgb, xs - dx, ys - dy, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
    if jitter_seed is None:
        return frame
    rng = np.random.default_rng(jitter_seed)
    matrix = cv2.getRotationMatrix2D(
        (width / 2, height / 2), float(rng.uniform(-0.3, 0.3)), float(1 + rng.uniform(-0.005, 0.005))
    )
    matrix[:, 2] += rng.uniform(-1, 1, size=2)
    frame = cv2.warpAffine(frame, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
    noisy = frame.astype(np.float32) + rng.normal(0, 2.0, frame.shape)
    return noisy.round().clip(0, 255).astype(np.uint8)
