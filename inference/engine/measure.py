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
working side. The two are added with their signs (``lean``): in a palsy they go together (the corner
sags on the weak side and the lips are pulled to the other; they agreed in 1,041 of 1,043 paralysis
photos of stroke-faces where both were clear), while a healthy face's small asymmetries point every
way and partly cancel. The index is the size of the lean; its sign names the weaker side.

The pattern of the weakness is measured above the mouth, around the eye: a peripheral palsy (Bell's
palsy) takes the whole half of the face, so the lower lid sags and the eye closes less; a central
(stroke) palsy spares the upper face. See ``upper_face_involvement``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from inference.engine.decide import ASYMMETRY_ONLY_RULE, MILD, MODERATE, NONE, SEVERE

IRIS_DIAMETER_MM = 11.7
# An adult's distance between eye centres is 54-74 mm; outside that, the iris estimate is off
# (eyes half closed, glasses) and we fall back on the population mean to set the scale.
EYE_DISTANCE_MM_RANGE = (50.0, 78.0)
MEAN_EYE_DISTANCE_MM = 63.0

# Face Mesh indices. The mesh's "right" points are the subject's right side (image left).
RIGHT = {
    "eye_outer": 33,
    "eye_inner": 133,
    "lid_upper": 159,
    "lid_lower": 145,
    "brow": (70, 63, 105, 66, 107),
    "mouth_corner": 61,
    "ala": 129,
    "iris_center": 468,
    "iris_ring": (469, 470, 471, 472),
}
LEFT = {
    "eye_outer": 263,
    "eye_inner": 362,
    "lid_upper": 386,
    "lid_lower": 374,
    "brow": (300, 293, 334, 296, 336),
    "mouth_corner": 291,
    "ala": 358,
    "iris_center": 473,
    "iris_ring": (474, 475, 476, 477),
}
NOSE_TIP = 1
NOSE_BRIDGE = 168
CHIN = 152
UPPER_LIP = 13
LOWER_LIP = 14
LIP_TOP = 0  # the middle of the upper lip's outer edge (the foot of the philtrum)
LIP_BOTTOM = 17  # the middle of the lower lip's outer edge

# The composite index is |sum(weight * signed difference / unit)| over the regions (the lean). Each unit is the 90th
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
# The sign each region's left-minus-right difference takes when the patient's *right* side is weak:
# its mouth corner sags (the lip line tilts up to the left, the left corner sits higher), the lips are
# pulled to the left (and the right corner towards the midline), the right nose-wing-to-corner
# distance grows, the right eye opens wider and the right brow sags. Only the weighted regions count
# today; the others keep their sign for a refit.
LEAN_SIGNS = {
    "lip_line_tilt_deg": 1.0,
    "mouth_deviation": 1.0,
    "mouth_corner_height": 1.0,
    "mouth_excursion": 1.0,
    "nasolabial": -1.0,
    "eye_opening": -1.0,
    "brow_height": 1.0,
}
# Severity bands on the composite index. "mild" starts where the rule for faces at rest stops calling
# a face negative (its asymmetry_negative_below); 1.0 is the 90th percentile of healthy
# faces making expressions (stroke-faces' press photos), 2.0 twice that. No data set here grades
# severity, so the bands are descriptive, not validated.
SEVERITY_BANDS = ((0.0, NONE), (ASYMMETRY_ONLY_RULE.asymmetry_negative_below, MILD), (1.0, MODERATE), (2.0, SEVERE))

# Upper-face involvement (see upper_face_involvement): landmarks of the eyelids' middle thirds.
# Regions measured once for the whole face (a tilt, an offset), not once per side.
SINGLE_VALUE_REGIONS = frozenset({"lip_line_tilt_deg", "mouth_deviation"})
UPPER_LID = {"right": (158, 159, 160), "left": (385, 386, 387)}
LOWER_LID = {"right": (144, 145, 153), "left": (373, 374, 380)}
# An eye less open than this fraction of its width counts as closed: the ratio of two closed eyes is
# noise, not palsy.
MIN_APERTURE = 0.08


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
    lean: float = 0.0  # signed index: > 0 when the right side looks weaker, < 0 the left
    upper_face: dict[str, float] = field(default_factory=dict)  # see upper_face_involvement
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
            "lean": round(self.lean, 3),
            "upper_face": {name: round(value, 3) for name, value in self.upper_face.items()},
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


def eye_distance(points: np.ndarray) -> float:
    """Between the two eye centres, in the points' own units (pixels for a photo's landmarks)."""
    return float(np.linalg.norm(eye_centre(points, LEFT) - eye_centre(points, RIGHT)))


def iris_diameter_px(points: np.ndarray, side: dict) -> float:
    ring = points[list(side["iris_ring"])]
    return float(2 * np.linalg.norm(ring - points[side["iris_center"]], axis=1).mean())


def measure(points: np.ndarray) -> Measurements:
    levelled, roll, _ = level(points)
    eye_distance_px = eye_distance(levelled)
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
    region(
        "eye_opening", distance(RIGHT["lid_upper"], RIGHT["lid_lower"]), distance(LEFT["lid_upper"], LEFT["lid_lower"])
    )
    region("mouth_corner_height", height_above_eyes(RIGHT["mouth_corner"]), height_above_eyes(LEFT["mouth_corner"]))
    region(
        "mouth_excursion",
        abs(off_midline(levelled[RIGHT["mouth_corner"]])),
        abs(off_midline(levelled[LEFT["mouth_corner"]])),
    )
    region("nasolabial", distance(RIGHT["ala"], RIGHT["mouth_corner"]), distance(LEFT["ala"], LEFT["mouth_corner"]))
    corner_vector = levelled[LEFT["mouth_corner"]] - levelled[RIGHT["mouth_corner"]]
    tilt = float(np.degrees(np.arctan2(-corner_vector[1], corner_vector[0])))  # >0: left corner higher
    # One value each, not one per side (SINGLE_VALUE_REGIONS): stored in "left" and "difference".
    regions["lip_line_tilt_deg"] = {"right": 0.0, "left": round(tilt, 2), "difference": round(tilt, 2)}
    # Mouth deviation: the middle of the lips off the midline, > 0 when pulled to the patient's left.
    deviation = off_midline((levelled[LIP_TOP] + levelled[LIP_BOTTOM]) / 2)
    regions["mouth_deviation"] = {"right": 0.0, "left": round(deviation, 2), "difference": round(deviation, 2)}

    signed = composite_lean(regions)
    index = abs(signed)
    # The weaker side: its mouth corner sits lower and the lips are pulled away from it. A lean too
    # small to tell from a healthy face names no side.
    affected_side = ""
    if index >= SEVERITY_BANDS[1][0] / 2:
        affected_side = "right" if signed > 0 else "left"

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
        lean=signed,
        upper_face=upper_face_involvement(levelled),
        extra={"eye_distance_mm": eye_distance_px * mm_per_px, "iris_px": iris_px},
    )


def composite_lean(regions: dict[str, dict[str, float]]) -> float:
    """The signed index: > 0 when the regions point to a weak right side, < 0 to a weak left."""
    total = 0.0
    for name, weight in INDEX_WEIGHTS.items():
        total += weight * LEAN_SIGNS[name] * regions[name]["difference"] / INDEX_UNITS[name]
    return float(total)


def composite_index(regions: dict[str, dict[str, float]]) -> float:
    return abs(composite_lean(regions))


def upper_face_involvement(levelled: np.ndarray) -> dict[str, float]:
    """How unequal the two halves of the face are around the eyes (0 = alike; unsigned, so a photo
    and its mirror agree), each as a fraction of the eye's width:

    - ``lower_lid``: how much further one lower lid sits below its iris centre than the other. A
      palsied orbicularis lets the lower lid sag and shows white below the iris (and an eye that
      cannot close looks wider); a central palsy spares it. This is ``involvement``, the figure the
      pattern is read from: on palda-dev it told peripheral from central palsy best (ROC AUC 0.89,
      against 0.80 for the eye aperture and 0.64 for the brow-to-lid gap).
    - ``eye_aperture``: the log ratio of the two lid gaps (a closed eye floored at MIN_APERTURE).
    - ``brow_to_lid``: the log ratio of the two brow-to-upper-lid gaps (a sagging brow).
    """

    def eye(side: str, names: dict) -> tuple[float, float, float]:
        width = float(np.linalg.norm(levelled[names["eye_outer"]] - levelled[names["eye_inner"]])) or 1.0
        upper = levelled[list(UPPER_LID[side]), 1].mean()
        lower = levelled[list(LOWER_LID[side]), 1].mean()
        brow = levelled[list(names["brow"]), 1].mean()
        iris = levelled[names["iris_center"], 1]
        return (
            max((lower - upper) / width, MIN_APERTURE),
            max((upper - brow) / width, MIN_APERTURE),
            (lower - iris) / width,
        )

    right_aperture, right_brow, right_lid = eye("right", RIGHT)
    left_aperture, left_brow, left_lid = eye("left", LEFT)
    lower_lid = abs(left_lid - right_lid)
    return {
        "lower_lid": float(lower_lid),
        "eye_aperture": abs(float(np.log(left_aperture / right_aperture))),
        "brow_to_lid": abs(float(np.log(left_brow / right_brow))),
        "involvement": float(lower_lid),
    }


def severity_band(index: float) -> str:
    band = "none"
    for lower, name in SEVERITY_BANDS:
        if index >= lower:
            band = name
    return band
