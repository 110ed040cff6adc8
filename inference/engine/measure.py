"""Left/right facial asymmetry from Face Mesh landmarks, in millimetres.

The face is first levelled (rotated so the eye centres lie on a horizontal line); the facial midline
is the line through the nose bridge and the chin, two points the mouth does not move. Distances are
converted to millimetres with the iris as the ruler (a human iris is about 11.7 mm across, nearly the
same in every adult), the way Emotrics calibrates on the pupils. "Right" and "left" are the patient's
own sides.

The composite asymmetry index rests on the two signs of a drooping mouth that survive a turned or
tilted head and a stretched photo: the lip line tilting against the eye line (an angle between two
lines that are parallel on a symmetric face and stay parallel when the photo is rotated, scaled or
stretched, and nearly so when the head is turned) and the lips pulled off the midline towards the
working side. The other
regions are measured and reported, but in still photos they did not tell faces with stroke-related
droop from faces without it (see bench/eval_asymmetry.py), so they do not count in the index.
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
LIP_TOP = 0  # the middle of the upper lip's outer edge (the foot of the philtrum)
LIP_BOTTOM = 17  # the middle of the lower lip's outer edge

# The composite index is sum(weight * |difference| / unit) over the regions. Each unit is the 90th
# percentile of that region's |difference| among faces without paralysis in still photos, so a
# region at 1.0 unit sits at the upper end of what healthy faces show. The weights are a non-negative
# logistic regression (paralysis vs no paralysis) on those unit-scaled differences, rescaled so that
# the index itself has its healthy 90th percentile at 1.0: above 1.0, fewer than 1 in 10 healthy faces
# look as asymmetric. Fitted with `bench/eval_asymmetry.py --per-class 0 --seed 0` on the fitting
# half of the stroke-faces photos (near-duplicate groups kept on one side); its held-out half gives
# the figures quoted with the index. Regions with zero weight are measured and shown, but added
# nothing to telling the classes apart (a refit on every region scored no better on held-out faces).
INDEX_UNITS = {
    "mouth_corner_height": 5.5,
    "lip_line_tilt_deg": 5.5,
    "mouth_deviation": 4.7,
    "mouth_excursion": 11.0,
    "nasolabial": 6.7,
    "eye_opening": 4.0,
    "brow_height": 3.5,
}
INDEX_WEIGHTS = {
    "mouth_corner_height": 0.0,
    "lip_line_tilt_deg": 0.56,
    "mouth_deviation": 0.59,
    "mouth_excursion": 0.0,
    "nasolabial": 0.0,
    "eye_opening": 0.0,
    "brow_height": 0.0,
}
# Severity bands on the composite index (1.0 = the healthy 90th percentile).
SEVERITY_BANDS = ((0.0, "none"), (1.0, "mild"), (1.7, "moderate"), (2.1, "severe"))


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

    # Facial midline: the line through the nose bridge and the chin. Neither moves with the mouth, so
    # a mouth pulled to one side shows up against it (a midline through the lips would follow them).
    bridge, chin = levelled[NOSE_BRIDGE], levelled[CHIN]
    midline_direction = (chin - bridge) / (np.linalg.norm(chin - bridge) or 1.0)

    def off_midline(point: np.ndarray) -> float:
        """Signed distance from the midline in mm; > 0 towards the patient's left (image right)."""
        offset = point - bridge
        return float((offset[0] * midline_direction[1] - offset[1] * midline_direction[0]) * mm_per_px)

    # The yaw proxy below keeps its own midline (nose bridge and mid-lips): the quality gate's
    # MAX_YAW was set against it.
    yaw_midline_x = float((levelled[NOSE_BRIDGE, 0] + (levelled[UPPER_LIP, 0] + levelled[LOWER_LIP, 0]) / 2) / 2)

    regions: dict[str, dict[str, float]] = {}

    def region(name: str, right: float, left: float) -> None:
        regions[name] = {"right": round(right, 2), "left": round(left, 2), "difference": round(left - right, 2)}

    region("brow_height", height_above_eyes(RIGHT["brow"]), height_above_eyes(LEFT["brow"]))
    region("eye_opening", distance(RIGHT["lid_upper"], RIGHT["lid_lower"]),
           distance(LEFT["lid_upper"], LEFT["lid_lower"]))
    region("mouth_corner_height", height_above_eyes(RIGHT["mouth_corner"]),
           height_above_eyes(LEFT["mouth_corner"]))
    region("mouth_excursion", abs(off_midline(levelled[RIGHT["mouth_corner"]])),
           abs(off_midline(levelled[LEFT["mouth_corner"]])))
    region("nasolabial", distance(RIGHT["ala"], RIGHT["mouth_corner"]), distance(LEFT["ala"], LEFT["mouth_corner"]))
    corner_vector = levelled[LEFT["mouth_corner"]] - levelled[RIGHT["mouth_corner"]]
    tilt = float(np.degrees(np.arctan2(-corner_vector[1], corner_vector[0])))  # >0: left corner higher
    regions["lip_line_tilt_deg"] = {"right": 0.0, "left": round(tilt, 2), "difference": round(tilt, 2)}
    # Mouth deviation: the middle of the lips off the midline, > 0 when pulled to the patient's left.
    deviation = off_midline((levelled[LIP_TOP] + levelled[LIP_BOTTOM]) / 2)
    regions["mouth_deviation"] = {"right": 0.0, "left": round(deviation, 2), "difference": round(deviation, 2)}

    index = composite_index(regions)

    # The drooping side: its mouth corner sits lower (the lip line tilts down to it). Without a clear
    # tilt, a clear pull of the lips to one side names the other side: in the photos of paralysis the
    # lips are pulled towards the working side (the two signs agreed in 1,041 of the 1,043 with both clear).
    affected_side = ""
    if abs(tilt) >= INDEX_UNITS["lip_line_tilt_deg"] / 2:
        affected_side = "right" if tilt > 0 else "left"  # tilt > 0: the left corner is higher
    elif abs(deviation) >= INDEX_UNITS["mouth_deviation"] / 2:
        affected_side = "right" if deviation > 0 else "left"  # deviation > 0: pulled to the left

    nose = levelled[NOSE_TIP]
    half_width = eye_distance_px / 2
    yaw = float(np.clip((nose[0] - yaw_midline_x) / half_width, -1, 1)) if half_width else 0.0
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
