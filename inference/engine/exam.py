"""The guided facial-nerve exam (issue 41): movement per side between a photo at rest and the poses.

A pure library: no Django. ``Pipeline.analyze_exam`` analyses the rest photo as ``analyze`` does and
hands its fits (``RestFace``: landmarks, analysed copy, iris-calibrated millimetres) to
``measure_exam`` with the frames of each pose: eyebrows raised, eyes closed tightly, a big smile.

How a pose is measured
- Each frame is fitted by the mesh without the canonical refits a rest photo gets: once for the brow
  raise and the smile (the mesh only places the frame on the rest photo), twice for the closed eyes
  (the photo and its mirror image, averaged: face.symmetrise, so both sides are read alike). The rest
  photo's fits are reused, never redone.
- The frame is mapped onto the rest photo by the similarity (shift, turn, scale) that best fits the
  landmarks an expression does not move (``STABLE``: the canthi and the nose's ridge); the rest of the
  shape left over after that fit is the identity check (``IDENTITY_MAX_RESIDUAL``).
- Brow and mouth-corner movement are read from the image, not from the mesh: dense optical flow
  (OpenCV's DIS) from the rest photo to the mapped frame, both resampled to a canonical square, at the
  rest photo's own brow and mouth-corner landmarks. Face Mesh's brows barely follow a raised brow (on
  drawn exams a 14 mm lift moved them 1-4 mm, not monotonically); the flow followed it within 1 mm.
- Eye closure is the gap left between the lids in the frame's own mesh (Auto-eFACE measures the same
  from its landmarks): the lids' motion is an occlusion that flow cannot follow. The mesh under-reads
  a closed eye (a drawn 95% closure read as 37-52%): the closure item is reported as measured, and the
  pattern reads it only where no smile was given.
- Frames of a pose are averaged; their spread (standard deviation across frames) is the pose's
  repeatability, and the standard error (spread / sqrt(frames)) what the mean carries.

Items and scores follow Auto-eFACE (dguari1/Auto-eFace, Compute_eFace.py; research note
facial-nerve-exam.md): A is the weaker (affected) side, H the other; dynamic items are the weaker
side's movement over the stronger's x 100 (brow elevation, commissure excursion with smile) and the
share of the resting lid gap the weaker eye closes (full eye closure); static items at rest are brow
height A / H, lid gap H / A and the mouth corner's position; each item scores 100 - |100 - x| (at
least 0) and the static, dynamic and total scores are plain means of their items.

The pattern (``pattern_of``) is named only from a brow raise: the forehead moves on both sides in a
central (upper motor neuron) lesion and not on the weak side in a peripheral one. Without a brow-raise
pose the result says so and asks for it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from inference.engine.decide import CENTRAL, PERIPHERAL, UNDETERMINED
from inference.engine.face import FaceMeshDetector, symmetrise
from inference.engine.measure import LEFT, LOWER_LID, RIGHT, UPPER_LID, Measurements, eye_centre, level

EXAM_VERSION = "exam-flow-1"

BROWS_RAISED, EYES_CLOSED, SMILE = POSES = ("brows_raised", "eyes_closed", "smile")
POSE_WORDS = {
    BROWS_RAISED: "eyebrows raised",
    EYES_CLOSED: "eyes closed tightly",
    SMILE: "a big smile",
}
NOT_DETERMINED_AT_REST = "not determined from a face at rest"
NO_WEAKNESS = "none"  # every measured movement alike on both sides
SIDES = ("right", "left")  # the patient's own

# Landmarks an expression does not move: the inner and outer canthi and the nose's ridge to its tip
# (mirror pairs and midline points, so a photo and its mirror image are aligned alike).
STABLE = (33, 133, 263, 362, 168, 6, 197, 195, 5, 4, 1)
# Where the flow must be zero (no expression moves the upper nose or the inner canthi; the tip moves with a
# smile): what it shows
# there is the alignment's error, taken away everywhere.
FLOW_ANCHORS = (133, 362, 168, 6, 197, 195)
# The flow is computed in a square of CANONICAL_SIZE pixels with the eye centres CANONICAL_EYE_PX apart
# (a phone photo's face is larger, the astronaut test face smaller): the flow's cost and its window
# sizes are then the same for every photo.
CANONICAL_SIZE = 256
CANONICAL_EYE_PX = 64.0
FLOW_WINDOW = 2  # the flow is averaged over (2 * 2 + 1)^2 canonical pixels around each landmark

# --- Thresholds, each with its source ------------------------------------------------------------
# House-Brackmann's measured method (House & Brackmann 1985; research note) scores brow rise and mouth
# corner movement in 0.25 cm steps up to 1 cm. A pose whose stronger side moved less than one step
# was not performed: "pose not performed: retake", never scored as weakness.
MIN_BROW_RISE_MM = 2.5
MIN_SMILE_EXCURSION_MM = 2.5
# Eyes that closed less than this share of their resting gap on the stronger side did not close.
# Fit on drawn exams: a rest photo given as the pose closes 0-0.05, a drawn 95% closure reads 0.37-0.52
# (the mesh under-reads a closed eye, see the module's docstring); 0.2 lies between.
MIN_CLOSURE_SHARE = 0.2
# Auto-eFACE (Compute_eFace.py) counts a gap under 1 mm as a closed eye.
CLOSED_GAP_MM = 1.0
# A side is weak on an item below this percentage of the other side: the loss of one of House-Brackmann's
# four measured steps (a quarter of the healthy side's range; research note).
WEAK_BELOW_PERCENT = 75.0
# The identity check: the root-mean-square distance left between the frame's STABLE landmarks and the
# rest photo's after the best similarity, as a share of the distance between the eye centres. Fit on
# drawn exams (bench/exam_validation.py): genuine drawn poses, one-way fits with burst jitter, left up to
# 0.024; the same face stretched by 25% across (another face's proportions) leaves more than 0.035.
# A landmark-geometry check only: it catches another face's proportions, not a look-alike.
IDENTITY_MAX_RESIDUAL = 0.035
# The House-Brackmann grade from the measured method's eight points (House & Brackmann 1985).
HB_GRADE_BY_POINTS = {8: "I", 7: "II", 6: "III", 5: "III", 4: "IV", 3: "IV", 2: "V", 1: "V", 0: "VI"}
# House-Brackmann: grade III still closes the eye completely with effort; IV and worse do not.
HB_INCOMPLETE_CLOSURE_AT_LEAST = "IV"
HB_ORDER = ("I", "II", "III", "IV", "V", "VI")

BROW_ARC = {"right": RIGHT["brow"], "left": LEFT["brow"]}
MOUTH_CORNER = {"right": RIGHT["mouth_corner"], "left": LEFT["mouth_corner"]}
LOWER_LIP_MIDDLE = 17


@dataclass
class RestFace:
    """What the rest photo's analysis already computed, reused by the exam: its analysed copy (RGB),
    its landmarks (the mean of the photo's own fits and its canonical refits), its measurements (with
    the iris-calibrated millimetres per pixel) and how many canonical refits held the face."""

    rgb: np.ndarray
    points: np.ndarray
    measurements: Measurements
    fits: int = 0


@dataclass
class PoseResult:
    pose: str
    status: str  # "measured" or "refused"
    reason: str = ""  # for a refusal: what to retake and why
    frames: int = 0
    frames_used: int = 0
    movement_mm: dict[str, float] = field(default_factory=dict)  # per side, mean over frames
    spread_mm: dict[str, float] = field(default_factory=dict)  # per side, SD across frames (0 for one)
    percent: float | None = None  # the eFACE dynamic item: 100 = symmetric
    percent_spread: float | None = None  # SD of the per-frame percentages (None for one frame)
    weaker_side: str = ""
    detail: dict = field(default_factory=dict)
    identity: list[float] = field(default_factory=list)  # each frame's residual (IDENTITY_MAX_RESIDUAL)

    def to_dict(self) -> dict:
        return {
            "pose": self.pose,
            "asked_as": POSE_WORDS[self.pose],
            "status": self.status,
            "reason": self.reason,
            "frames": self.frames,
            "frames_used": self.frames_used,
            "movement_mm": _rounded(self.movement_mm),
            "spread_mm": _rounded(self.spread_mm),
            "percent": _round(self.percent, 1),
            "percent_spread": _round(self.percent_spread, 1),
            "standard_error_percent": (
                _round(self.percent_spread / math.sqrt(self.frames_used), 1)
                if self.percent_spread is not None
                else None
            ),
            "weaker_side": self.weaker_side,
            "detail": {
                key: _rounded(value) if isinstance(value, dict) else value for key, value in self.detail.items()
            },
            "identity_residual": [round(value, 4) for value in self.identity],
            "identity_limit": IDENTITY_MAX_RESIDUAL,
        }


@dataclass
class ExamResult:
    poses: dict[str, PoseResult]
    items: dict[str, dict]
    scores: dict
    house_brackmann: dict
    pattern: str  # central / peripheral / undetermined / none / NOT_DETERMINED_AT_REST
    affected_side: str
    forehead_finding: str
    refusals: list[dict]
    asks_for: list[str]
    reused: dict
    cpu_ms: dict[str, float] = field(default_factory=dict)
    version: str = EXAM_VERSION

    def to_dict(self) -> dict:
        """JSON-ready (plain dicts, lists, strings and numbers)."""
        return {
            "version": self.version,
            "pattern": self.pattern,
            "affected_side": self.affected_side,
            "forehead_finding": self.forehead_finding,
            "poses": {name: pose.to_dict() for name, pose in self.poses.items()},
            "items": self.items,
            "scores": self.scores,
            "house_brackmann": self.house_brackmann,
            "refusals": self.refusals,
            "asks_for": self.asks_for,
            "reused": self.reused,
            "cpu_ms": self.cpu_ms,
            "thresholds": THRESHOLDS,
        }


THRESHOLDS = {
    "min_brow_rise_mm": MIN_BROW_RISE_MM,
    "min_smile_excursion_mm": MIN_SMILE_EXCURSION_MM,
    "min_closure_share": MIN_CLOSURE_SHARE,
    "closed_gap_mm": CLOSED_GAP_MM,
    "weak_below_percent": WEAK_BELOW_PERCENT,
    "identity_max_residual": IDENTITY_MAX_RESIDUAL,
}


# --- Geometry -----------------------------------------------------------------------------------


def similarity(source: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, float]:
    """The 2 x 3 similarity (Umeyama's least squares) taking ``source`` points onto ``target``, and
    the root-mean-square distance left, in ``target``'s units."""
    source_mean, target_mean = source.mean(axis=0), target.mean(axis=0)
    s, t = source - source_mean, target - target_mean
    u, singular, vt = np.linalg.svd(t.T @ s)
    d = np.diag([1.0, -1.0 if np.linalg.det(u @ vt) < 0 else 1.0])
    rotation = u @ d @ vt
    scale = float((singular * np.diag(d)).sum() / max((s**2).sum(), 1e-12))
    matrix = np.hstack([scale * rotation, (target_mean - scale * rotation @ source_mean)[:, None]])
    moved = source @ matrix[:, :2].T + matrix[:, 2]
    return matrix, float(np.sqrt(((moved - target) ** 2).sum(axis=1).mean()))


def _canonical(points: np.ndarray) -> np.ndarray:
    """The 2 x 3 matrix from the rest photo to the canonical square: eyes level, CANONICAL_EYE_PX
    apart, their midpoint centred 40% of the way down."""
    right, left = eye_centre(points, RIGHT), eye_centre(points, LEFT)
    dx, dy = left - right
    angle = -math.atan2(dy, dx)
    k = CANONICAL_EYE_PX / float(math.hypot(dx, dy))
    rotation = k * np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    centre = (right + left) / 2
    return np.hstack([rotation, (np.array([CANONICAL_SIZE / 2, 0.4 * CANONICAL_SIZE]) - rotation @ centre)[:, None]])


def _compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    return (np.vstack([outer, [0, 0, 1]]) @ np.vstack([inner, [0, 0, 1]]))[:2]


def _grey(rgb: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    import cv2

    square = cv2.warpAffine(
        rgb, matrix, (CANONICAL_SIZE, CANONICAL_SIZE), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE
    )
    return cv2.cvtColor(square, cv2.COLOR_RGB2GRAY)


_flow = None


def _dense_flow(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    global _flow
    import cv2

    if _flow is None:
        _flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return _flow.calc(first, second, None)


def _flow_at(flow: np.ndarray, at: np.ndarray) -> np.ndarray:
    """The flow averaged over a small window around each point (canonical pixels), then over points."""
    values = []
    for x, y in np.atleast_2d(at):
        xi = int(np.clip(round(float(x)), FLOW_WINDOW, CANONICAL_SIZE - FLOW_WINDOW - 1))
        yi = int(np.clip(round(float(y)), FLOW_WINDOW, CANONICAL_SIZE - FLOW_WINDOW - 1))
        window = flow[yi - FLOW_WINDOW : yi + FLOW_WINDOW + 1, xi - FLOW_WINDOW : xi + FLOW_WINDOW + 1]
        values.append(window.reshape(-1, 2).mean(axis=0))
    return np.mean(values, axis=0)


def _lid_gaps_mm(levelled: np.ndarray, mm_per_px: float) -> dict[str, float]:
    """The gap between the lids' middle thirds, per side, in mm (levelled points in photo pixels)."""
    return {
        side: float((levelled[list(LOWER_LID[side]), 1].mean() - levelled[list(UPPER_LID[side]), 1].mean()) * mm_per_px)
        for side in SIDES
    }


# --- One frame ----------------------------------------------------------------------------------


@dataclass
class _Frame:
    refused: str = ""
    identity: float = 0.0
    brow_mm: dict[str, float] = field(default_factory=dict)
    corner_mm: dict[str, float] = field(default_factory=dict)
    gap_mm: dict[str, float] = field(default_factory=dict)


class _Rest:
    """The rest photo's fits, in the forms every frame is compared with (computed once an exam)."""

    def __init__(self, face: RestFace) -> None:
        self.face = face
        self.mm_per_px = face.measurements.mm_per_pixel
        self.to_square = _canonical(face.points)
        self.square = _grey(face.rgb, self.to_square)
        self.square_points = face.points @ self.to_square[:, :2].T + self.to_square[:, 2]
        # Canonical pixels -> mm.
        self.mm_per_square_px = self.mm_per_px / float(np.sqrt(abs(np.linalg.det(self.to_square[:, :2]))))
        self.levelled, _, self.centre = level(face.points)
        self.rotation = _level_rotation(face.points)
        self.gap_mm = _lid_gaps_mm(self.levelled, self.mm_per_px)
        self.eye_px = float(np.linalg.norm(eye_centre(face.points, LEFT) - eye_centre(face.points, RIGHT)))


def _level_rotation(points: np.ndarray) -> np.ndarray:
    right, left = eye_centre(points, RIGHT), eye_centre(points, LEFT)
    dx, dy = left - right
    theta = -math.atan2(dy, dx)
    return np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])


def _fit_frame(detector: FaceMeshDetector, rgb: np.ndarray):
    """The mesh on the frame and on its mirror image, averaged (no canonical refits)."""
    direct = detector.find_one_way(rgb)
    mirrored = detector.find_one_way(np.ascontiguousarray(rgb[:, ::-1]))
    return symmetrise(direct, mirrored, width=rgb.shape[1]).faces


def _measure_frame(rest: _Rest, rgb: np.ndarray, detector: FaceMeshDetector, pose: str) -> _Frame:
    # The lids are read from the mesh, fitted both ways for mirror-consistent sides; the flow poses need
    # the mesh only to map the frame onto the rest photo (what it leaves, the anchors take away), and
    # one fit does.
    faces = _fit_frame(detector, rgb) if pose == EYES_CLOSED else detector.find_one_way(rgb).faces
    if len(faces) != 1:
        return _Frame(refused="no face found" if not faces else f"{len(faces)} faces in the photo")
    points = faces[0]
    to_rest, residual = similarity(points[list(STABLE)], rest.face.points[list(STABLE)])
    identity = residual / rest.eye_px
    if identity > IDENTITY_MAX_RESIDUAL:
        return _Frame(refused="not the same face as at rest", identity=identity)
    frame = _Frame(identity=identity)
    if pose in (BROWS_RAISED, SMILE):
        square = _grey(rgb, _compose(rest.to_square, to_rest))
        flow = _dense_flow(rest.square, square)
        # What the landmark alignment left, read on the image: the flow where nothing moves (the nose
        # and the inner canthi) fitted by a similarity and taken away everywhere.
        anchors = rest.square_points[list(FLOW_ANCHORS)]
        moved = np.array([_flow_at(flow, point) for point in anchors])
        leftover, _ = similarity(anchors, anchors + moved)

        def motion_mm(at: np.ndarray) -> np.ndarray:
            at = np.atleast_2d(at)
            misaligned = (at @ leftover[:, :2].T + leftover[:, 2] - at).mean(axis=0)
            return (_flow_at(flow, at) - misaligned) * rest.mm_per_square_px  # mm, image y down

        for side in SIDES:
            if pose == BROWS_RAISED:
                frame.brow_mm[side] = float(-motion_mm(rest.square_points[list(BROW_ARC[side])])[1])
            else:
                # The corner's movement up and out at 45 degrees, a smile's pull; a corner dragged across
                # by the other side's smile moves in and counts nothing.
                corner = rest.square_points[MOUTH_CORNER[side]]
                outward = 1.0 if corner[0] > CANONICAL_SIZE / 2 else -1.0
                shift = motion_mm(corner)
                frame.corner_mm[side] = float((outward * shift[0] - shift[1]) / math.sqrt(2))
    if pose == EYES_CLOSED:
        on_rest = points @ to_rest[:, :2].T + to_rest[:, 2]
        levelled = (on_rest - rest.centre) @ rest.rotation.T
        frame.gap_mm = _lid_gaps_mm(levelled, rest.mm_per_px)
    return frame


# --- One pose -----------------------------------------------------------------------------------


def _weaker(movement: dict[str, float]) -> tuple[str, str]:
    weak = min(SIDES, key=lambda side: (movement[side], side))
    return weak, "left" if weak == "right" else "right"


def _ratio_percent(weak: float, strong: float) -> float:
    """Auto-eFACE's dynamic item: (A pose - A rest) / (H pose - H rest) x 100, negatives as 0."""
    if strong <= 0:
        return 0.0
    return float(np.clip(100 * weak / strong, 0, 100))


def _closure_share(rest_gap: float, gap: float) -> float:
    """Auto-eFACE's full eye closure for one eye: (c - g) / c, a gap under CLOSED_GAP_MM counted closed."""
    if rest_gap <= 0:
        return 0.0
    gap = 0.0 if gap < CLOSED_GAP_MM else gap
    return float(np.clip((rest_gap - gap) / rest_gap, 0, 1))


def measure_pose(rest: _Rest, pose: str, frames: Sequence[np.ndarray], detector: FaceMeshDetector) -> PoseResult:
    measured = [_measure_frame(rest, rgb, detector, pose) for rgb in frames]
    usable = [frame for frame in measured if not frame.refused]
    result = PoseResult(
        pose=pose,
        status="measured",
        frames=len(frames),
        frames_used=len(usable),
        identity=[f.identity for f in measured],
    )
    if not usable:
        reasons = sorted({frame.refused for frame in measured})
        result.status = "refused"
        result.reason = f"pose not performed: retake ({'; '.join(reasons)})"
        return result
    if pose == BROWS_RAISED:
        per_frame = [frame.brow_mm for frame in usable]
    elif pose == SMILE:
        per_frame = [frame.corner_mm for frame in usable]
    else:
        per_frame = [{side: rest.gap_mm[side] - frame.gap_mm[side] for side in SIDES} for frame in usable]
    result.movement_mm = {side: float(np.mean([f[side] for f in per_frame])) for side in SIDES}
    result.spread_mm = {
        side: float(np.std([f[side] for f in per_frame], ddof=1)) if len(per_frame) > 1 else 0.0 for side in SIDES
    }
    weak, strong = _weaker(result.movement_mm)
    result.weaker_side = weak

    if pose == EYES_CLOSED:
        gaps = {side: float(np.mean([frame.gap_mm[side] for frame in usable])) for side in SIDES}
        shares = {side: _closure_share(rest.gap_mm[side], gaps[side]) for side in SIDES}
        weak = min(SIDES, key=lambda side: (shares[side], side))
        strong = "left" if weak == "right" else "right"
        result.weaker_side = weak
        result.detail = {"gap_left_mm": gaps, "rest_gap_mm": rest.gap_mm, "closed_share": shares}
        if shares[strong] < MIN_CLOSURE_SHARE:
            result.status = "refused"
            result.reason = (
                f"pose not performed: retake (the eyes did not close: the better eye closed "
                f"{100 * shares[strong]:.0f}% of its resting gap, under {100 * MIN_CLOSURE_SHARE:.0f}%)"
            )
            return result
        result.percent = 100 * shares[weak]
        per_frame_percent = [100 * _closure_share(rest.gap_mm[weak], frame.gap_mm[weak]) for frame in usable]
    else:
        minimum, words = (
            (MIN_BROW_RISE_MM, "the eyebrows did not rise")
            if pose == BROWS_RAISED
            else (MIN_SMILE_EXCURSION_MM, "the smile did not move the mouth corners")
        )
        if result.movement_mm[strong] < minimum:
            result.status = "refused"
            result.reason = (
                f"pose not performed: retake ({words}: {result.movement_mm[strong]:.1f} mm on the side that "
                f"moved more, under {minimum:g} mm)"
            )
            return result
        result.percent = _ratio_percent(result.movement_mm[weak], result.movement_mm[strong])
        per_frame_percent = [_ratio_percent(f[weak], f[strong]) for f in per_frame]
    result.percent_spread = float(np.std(per_frame_percent, ddof=1)) if len(per_frame_percent) > 1 else None
    return result


# --- The exam -----------------------------------------------------------------------------------


def _score(value: float) -> float:
    return float(max(0.0, 100 - abs(100 - value)))


def static_items(rest: _Rest, affected: str) -> dict[str, dict]:
    """Auto-eFACE's items at rest (A = ``affected``, H = the other side)."""
    healthy = "left" if affected == "right" else "right"
    levelled, mm = rest.levelled, rest.mm_per_px
    brow = {side: float(-levelled[list(BROW_ARC[side]), 1].mean() * mm) for side in SIDES}
    gap = rest.gap_mm
    lip = levelled[LOWER_LIP_MIDDLE]
    # The corner's height above the lower lip's middle (e) and its distance across (d), per side.
    e = {side: float((lip[1] - levelled[MOUTH_CORNER[side], 1]) * mm) for side in SIDES}
    d = {side: float(abs(levelled[MOUTH_CORNER[side], 0] - lip[0]) * mm) for side in SIDES}
    if 0 < e[affected] < e[healthy]:
        commissure, commissure_formula = (
            100 * e[affected] / e[healthy],
            "corner height above the lower lip's middle, A / H",
        )
    else:
        commissure, commissure_formula = (
            100 * d[affected] / d[healthy] if d[healthy] else 100.0,
            "corner distance across from the lower lip's middle, A / H",
        )
    values = {
        "brow_at_rest": (
            100 * brow[affected] / brow[healthy] if brow[healthy] else 100.0,
            "brow height above the eye line, A / H",
            brow,
        ),
        "palpebral_fissure_at_rest": (
            100 * gap[healthy] / gap[affected] if gap[affected] else 100.0,
            "lid gap, H / A",
            gap,
        ),
        "oral_commissure_at_rest": (commissure, commissure_formula, e),
    }
    return {
        name: {
            "kind": "static",
            "value": round(float(value), 1),
            "score": round(_score(value), 1),
            "formula": f"Auto-eFACE: {formula}; score 100 - |100 - value|",
            "right_mm": round(per_side["right"], 2),
            "left_mm": round(per_side["left"], 2),
        }
        for name, (value, formula, per_side) in values.items()
    }


DYNAMIC_ITEM = {BROWS_RAISED: "brow_elevation", EYES_CLOSED: "full_eye_closure", SMILE: "commissure_excursion"}
DYNAMIC_FORMULA = {
    BROWS_RAISED: "Auto-eFACE: (A raised - A rest) / (H raised - H rest) x 100; brow rise by optical flow at the brow",
    EYES_CLOSED: "Auto-eFACE: (A resting gap - A gap left) / A resting gap x 100, a gap under 1 mm closed; "
    "gaps from the mesh",
    SMILE: "Auto-eFACE: (A smile - A rest) / (H smile - H rest) x 100; corner movement up and out, by optical flow",
}


def house_brackmann(poses: dict[str, PoseResult]) -> dict:
    """House-Brackmann's measured method, with each side's movement in quarters of the stronger side's
    (its 0.25 cm steps of 1 cm rescaled to this face): brow points + mouth-corner points, 0-8, and the
    grade from HB_GRADE_BY_POINTS; an eye that does not close completely makes it at least IV."""
    brows, smile = poses.get(BROWS_RAISED), poses.get(SMILE)
    if not (brows and brows.percent is not None and smile and smile.percent is not None):
        return {
            "grade": None,
            "points": None,
            "derivation": "Not estimated: House-Brackmann's measured method needs the eyebrows raised and a big "
            "smile, both measured.",
        }
    brow_points = round(4 * brows.percent / 100)
    mouth_points = round(4 * smile.percent / 100)
    points = brow_points + mouth_points
    grade = HB_GRADE_BY_POINTS[points]
    derivation = (
        f"House-Brackmann measured method (1985), each side's movement in quarters of the stronger side's: "
        f"brow {brow_points}/4 ({brows.percent:.0f}%), mouth corner {mouth_points}/4 ({smile.percent:.0f}%), "
        f"{points}/8 = grade {grade}"
    )
    closure = poses.get(EYES_CLOSED)
    if closure and closure.percent is not None and closure.percent < 100:
        if HB_ORDER.index(grade) < HB_ORDER.index(HB_INCOMPLETE_CLOSURE_AT_LEAST):
            grade = HB_INCOMPLETE_CLOSURE_AT_LEAST
            derivation += f"; the weaker eye did not close completely ({closure.percent:.0f}%): at least grade IV"
    derivation += ". An estimate: the scale was written for peripheral palsy, graded by a clinician in motion."
    return {"grade": grade, "points": points, "derivation": derivation}


def pattern_of(poses: dict[str, PoseResult]) -> tuple[str, str, str]:
    """(pattern, side, the forehead finding in one sentence) from the measured poses."""
    brows = poses.get(BROWS_RAISED)
    if brows is None or brows.percent is None:
        why = "no brow-raise photo was given" if brows is None else "the brow raise must be retaken"
        return (
            NOT_DETERMINED_AT_REST,
            "",
            f"Pattern not determined from a face at rest: {why}; ask the person to raise the eyebrows "
            "(a forehead that moves on both sides while the lower face is weak is the stroke pattern).",
        )
    smile, closure = poses.get(SMILE), poses.get(EYES_CLOSED)
    lower = (
        smile if smile and smile.percent is not None else closure if closure and closure.percent is not None else None
    )
    mm = brows.movement_mm
    brow_words = f"right brow rose {mm['right']:.1f} mm, left {mm['left']:.1f} mm ({brows.percent:.0f}%)"
    lower_words = ""
    if lower is not None:
        lower_words = (
            f"the smile's weaker corner moved {lower.percent:.0f}% of the other's"
            if lower.pose == SMILE
            else f"the weaker eye closed {lower.percent:.0f}% of its resting gap"
        )
    if brows.percent < WEAK_BELOW_PERCENT:
        side = brows.weaker_side
        if lower is not None and lower.percent < WEAK_BELOW_PERCENT and lower.weaker_side != side:
            return (
                UNDETERMINED,
                "",
                f"The forehead is weak on the {side} ({brow_words}) but the lower face on the {lower.weaker_side}: "
                "pattern undetermined, a clinician should examine.",
            )
        also = (
            f", the same side as the lower face ({lower_words})"
            if lower is not None and lower.percent < WEAK_BELOW_PERCENT
            else ""
        )
        return (
            PERIPHERAL,
            side,
            f"The forehead is weak on the {side} ({brow_words}){also}: the peripheral (whole-side) pattern.",
        )
    if lower is None:
        return (
            NO_WEAKNESS,
            "",
            f"The forehead moved on both sides ({brow_words}); no smile or eye closure was measured to judge the "
            "lower face.",
        )
    if lower.percent < WEAK_BELOW_PERCENT:
        return (
            CENTRAL,
            lower.weaker_side,
            f"The forehead moved on both sides ({brow_words}) while the lower face is weak on the "
            f"{lower.weaker_side} ({lower_words}): forehead spared, the central (stroke) pattern.",
        )
    return (
        NO_WEAKNESS,
        "",
        f"The forehead moved on both sides ({brow_words}) and the lower face too ({lower_words}): no one-sided "
        "weakness measured.",
    )


def measure_exam(
    *,
    rest: RestFace,
    poses: Mapping[str, Sequence[np.ndarray]],
    detector: FaceMeshDetector,
    rest_affected_side: str = "",
) -> ExamResult:
    """The exam: each pose's frames (RGB arrays, as analysed: imaging.analysis_copy) measured against
    the rest photo's fits. ``rest_affected_side``: the side the rest photo's analysis leans to, used
    for the static items when no pose names a weaker side."""
    unknown = set(poses) - set(POSES)
    if unknown:
        raise ValueError(f"unknown poses: {sorted(unknown)} (known: {list(POSES)})")
    clock = time.process_time()
    prepared = _Rest(rest)
    cpu = {"prepare": round((time.process_time() - clock) * 1000, 1)}
    results: dict[str, PoseResult] = {}
    for pose in POSES:
        frames = poses.get(pose) or []
        if not frames:
            continue
        clock = time.process_time()
        results[pose] = measure_pose(prepared, pose, frames, detector)
        cpu[pose] = round((time.process_time() - clock) * 1000, 1)

    pattern, side, finding = pattern_of(results)
    measured = {name: pose for name, pose in results.items() if pose.percent is not None}
    affected = (
        side
        or next((measured[p].weaker_side for p in (SMILE, EYES_CLOSED, BROWS_RAISED) if p in measured), "")
        or rest_affected_side
        or "right"
    )
    items = static_items(prepared, affected)
    for name, pose in measured.items():
        items[DYNAMIC_ITEM[name]] = {
            "kind": "dynamic",
            "value": round(pose.percent, 1),
            "score": round(_score(pose.percent), 1),
            "formula": DYNAMIC_FORMULA[name] + "; A = the side that moved less",
            "weaker_side": pose.weaker_side,
            "right_mm": round(pose.movement_mm["right"], 2),
            "left_mm": round(pose.movement_mm["left"], 2),
        }
    static = [item["score"] for item in items.values() if item["kind"] == "static"]
    dynamic = [item["score"] for item in items.values() if item["kind"] == "dynamic"]
    scores = {
        "static": round(float(np.mean(static)), 1),
        "dynamic": round(float(np.mean(dynamic)), 1) if dynamic else None,
        "total": round(float(np.mean(static + dynamic)), 1),
        "derivation": (
            f"Auto-eFACE-style plain means of the item scores (100 - |100 - value|): static of {len(static)} items "
            f"at rest, dynamic of {len(dynamic)} measured movements, total of all {len(static) + len(dynamic)}; "
            f"A = the {affected} side. Not the full 16-item eFACE (no synkinesis, no lower lip)."
        ),
    }
    refusals = [
        {"pose": name, "reason": pose.reason, "retake": True}
        for name, pose in results.items()
        if pose.status == "refused"
    ]
    asks_for = [] if BROWS_RAISED in measured else [BROWS_RAISED]
    asks_for += [name for name in results if results[name].status == "refused" and name not in asks_for]
    reused = {
        "landmarks": f"the rest photo's analysis (its own fits and {rest.fits} canonical refits), not fitted again",
        "scale": f"{rest.measurements.scale_source}: {rest.measurements.mm_per_pixel:.4f} mm per pixel of the rest "
        "photo, carried to each pose through the alignment on the canthi and the nose (the iris is unreliable "
        "with the eyes closed)",
        "analysed_copy": "the rest photo's analysed copy, resampled once as the flow's reference",
        "pose_fits": "each frame: the mesh on the photo and its mirror image, no canonical refits",
    }
    return ExamResult(
        poses=results,
        items=items,
        scores=scores,
        house_brackmann=house_brackmann(results),
        pattern=pattern,
        affected_side=side,
        forehead_finding=finding,
        refusals=refusals,
        asks_for=asks_for,
        reused=reused,
        cpu_ms=cpu,
    )


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(float(value), digits)


def _rounded(values: dict) -> dict:
    return {key: round(float(value), 2) for key, value in values.items()}
