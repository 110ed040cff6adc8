"""Left/right facial asymmetry from Face Mesh landmarks, in millimetres.

The face is first levelled (rotated so the eye centres lie on a horizontal line) and the midline is
the perpendicular through the midpoint of the eyes. Distances are converted to millimetres with the
iris as the ruler (a human iris is about 11.7 mm across, nearly the same in every adult), the way
Emotrics calibrates on the pupils. "Right" and "left" are the patient's own sides.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

IRIS_DIAMETER_MM = 11.7
# An adult's distance between eye centres is 54-74 mm; outside that, the iris estimate is off
# (eyes half closed, glasses) and we fall back on the population mean to set the scale.
EYE_DISTANCE_MM_RANGE = (50.0, 78.0)
MEAN_EYE_DISTANCE_MM = 63.0

# Face Mesh indices. The mesh's "right" points are the subject's right side (image left).
RIGHT = {
    "eye_outer": 33, "eye_inner": 133, "lid_upper": 159, "lid_lower": 145,
    "brow": (70, 63, 105, 66, 107), "mouth_corner": 61, "ala": 129,
    "iris_center": 468, "iris_ring": (469, 470, 471, 472),
}
LEFT = {
    "eye_outer": 263, "eye_inner": 362, "lid_upper": 386, "lid_lower": 374,
    "brow": (300, 293, 334, 296, 336), "mouth_corner": 291, "ala": 358,
    "iris_center": 473, "iris_ring": (474, 475, 476, 477),
}
NOSE_TIP = 1
NOSE_BRIDGE = 168
CHIN = 152
UPPER_LIP = 13
LOWER_LIP = 14

# How much each regional difference (mm or degrees) counts in the composite index. A difference of
# one "unit" is roughly the upper end of what healthy faces show in still photos; the weights favour
# the lower face, where stroke (a central palsy) shows most.
INDEX_UNITS = {
    "mouth_corner_height": 2.5,
    "lip_line_tilt_deg": 3.0,
    "mouth_excursion": 3.0,
    "nasolabial": 3.0,
    "eye_opening": 2.0,
    "brow_height": 3.0,
}
INDEX_WEIGHTS = {
    "mouth_corner_height": 0.30,
    "lip_line_tilt_deg": 0.20,
    "mouth_excursion": 0.15,
    "nasolabial": 0.15,
    "eye_opening": 0.10,
    "brow_height": 0.10,
}
# Severity bands on the composite index (1.0 = the healthy upper limit on every region).
SEVERITY_BANDS = ((0.0, "none"), (1.0, "mild"), (1.8, "moderate"), (2.8, "severe"))


@dataclass
class Measurements:
    regions: dict[str, dict[str, float]]  # region -> {"right", "left", "difference"} in mm (or degrees)
    asymmetry_index: float
    severity: str
    affected_side: str  # "left", "right" or "" when no side stands out
    mm_per_pixel: float
    scale_source: str  # "iris" or "population mean"
    roll_deg: float  # how far the eye line was from level in the photo
    yaw: float  # -1..1 head turn proxy (0 = facing the camera)
    pitch: float  # nose tip position between eye line and mouth (about 0.5 when level)
    extra: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "regions": self.regions,
            "asymmetry_index": round(self.asymmetry_index, 3),
            "severity": self.severity,
            "affected_side": self.affected_side,
            "mm_per_pixel": round(self.mm_per_pixel, 5),
            "scale_source": self.scale_source,
            "roll_deg": round(self.roll_deg, 2),
            "yaw": round(self.yaw, 3),
            "pitch": round(self.pitch, 3),
            "units": {name: ("degrees" if name.endswith("_deg") else "mm") for name in self.regions},
        }


def level(points: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
    """Rotate landmarks about the eye midpoint so the eye centres are level; returns points, roll, centre."""
    right_eye = eye_centre(points, RIGHT)
    left_eye = eye_centre(points, LEFT)
    dx, dy = left_eye - right_eye
    roll = float(np.degrees(np.arctan2(dy, dx)))
    theta = -np.radians(roll)
    rotation = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    centre = (right_eye + left_eye) / 2
    return (points - centre) @ rotation.T, roll, centre


def eye_centre(points: np.ndarray, side: dict) -> np.ndarray:
    return (points[side["eye_outer"]] + points[side["eye_inner"]]) / 2


def iris_diameter_px(points: np.ndarray, side: dict) -> float:
    ring = points[list(side["iris_ring"])]
    return float(2 * np.linalg.norm(ring - points[side["iris_center"]], axis=1).mean())


def measure(points: np.ndarray) -> Measurements:
    levelled, roll, _ = level(points)
    eye_distance_px = float(np.linalg.norm(eye_centre(levelled, LEFT) - eye_centre(levelled, RIGHT)))
    iris_px = (iris_diameter_px(levelled, RIGHT) + iris_diameter_px(levelled, LEFT)) / 2
    mm_per_px = IRIS_DIAMETER_MM / iris_px if iris_px > 0 else 0.0
    scale_source = "iris"
    eye_distance_mm = eye_distance_px * mm_per_px
    if not EYE_DISTANCE_MM_RANGE[0] <= eye_distance_mm <= EYE_DISTANCE_MM_RANGE[1]:
        mm_per_px = MEAN_EYE_DISTANCE_MM / eye_distance_px
        scale_source = "population mean"

    # Image y grows downwards; we report heights as "up is positive" above the eye line.
    def height_above_eyes(index_or_indices) -> float:
        indices = [index_or_indices] if isinstance(index_or_indices, int) else list(index_or_indices)
        return float(-levelled[indices, 1].mean() * mm_per_px)

    def distance(a: int, b: int) -> float:
        return float(np.linalg.norm(levelled[a] - levelled[b]) * mm_per_px)

    # Midline: the line through the nose bridge and the middle of the lips, which follows the
    # face even when the head is a little turned.
    midline_x = float((levelled[NOSE_BRIDGE, 0] + (levelled[UPPER_LIP, 0] + levelled[LOWER_LIP, 0]) / 2) / 2)

    regions: dict[str, dict[str, float]] = {}

    def region(name: str, right: float, left: float) -> None:
        regions[name] = {"right": round(right, 2), "left": round(left, 2), "difference": round(left - right, 2)}

    region("brow_height", height_above_eyes(RIGHT["brow"]), height_above_eyes(LEFT["brow"]))
    region("eye_opening", distance(RIGHT["lid_upper"], RIGHT["lid_lower"]),
           distance(LEFT["lid_upper"], LEFT["lid_lower"]))
    region("mouth_corner_height", height_above_eyes(RIGHT["mouth_corner"]),
           height_above_eyes(LEFT["mouth_corner"]))
    region("mouth_excursion", abs(levelled[RIGHT["mouth_corner"], 0] - midline_x) * mm_per_px,
           abs(levelled[LEFT["mouth_corner"], 0] - midline_x) * mm_per_px)
    region("nasolabial", distance(RIGHT["ala"], RIGHT["mouth_corner"]), distance(LEFT["ala"], LEFT["mouth_corner"]))
    corner_vector = levelled[LEFT["mouth_corner"]] - levelled[RIGHT["mouth_corner"]]
    tilt = float(np.degrees(np.arctan2(-corner_vector[1], corner_vector[0])))  # >0: left corner higher
    regions["lip_line_tilt_deg"] = {"right": 0.0, "left": round(tilt, 2), "difference": round(tilt, 2)}

    index = composite_index(regions)

    # The drooping side: its mouth corner sits lower and its lip line tilts down to it.
    droop = regions["mouth_corner_height"]["difference"]
    affected_side = ""
    if abs(droop) >= INDEX_UNITS["mouth_corner_height"] / 2:
        affected_side = "left" if droop < 0 else "right"

    nose = levelled[NOSE_TIP]
    half_width = eye_distance_px / 2
    yaw = float(np.clip((nose[0] - midline_x) / half_width, -1, 1)) if half_width else 0.0
    mouth_y = (levelled[RIGHT["mouth_corner"], 1] + levelled[LEFT["mouth_corner"], 1]) / 2
    pitch = float(nose[1] / mouth_y) if mouth_y > 0 else 0.0

    return Measurements(
        regions=regions,
        asymmetry_index=index,
        severity=severity_band(index),
        affected_side=affected_side,
        mm_per_pixel=mm_per_px,
        scale_source=scale_source,
        roll_deg=roll,
        yaw=yaw,
        pitch=pitch,
        extra={"eye_distance_mm": eye_distance_px * mm_per_px, "iris_px": iris_px},
    )


def composite_index(regions: dict[str, dict[str, float]]) -> float:
    total = 0.0
    for name, weight in INDEX_WEIGHTS.items():
        total += weight * abs(regions[name]["difference"]) / INDEX_UNITS[name]
    return float(total)


def severity_band(index: float) -> str:
    band = "none"
    for lower, name in SEVERITY_BANDS:
        if index >= lower:
            band = name
    return band
