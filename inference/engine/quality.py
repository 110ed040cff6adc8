"""The quality gate: can this photo be measured, and how far can its measurements be trusted?

A refusal is a lost result, and for a stroke patient a lost result costs time, so the gate refuses
only what cannot be measured: no face, several faces, a face too small or too dark for the mesh to
place its points, a head turned or tilted so far that one half of the face is out of view, or a
photo so blurred that it has no edges left. Everything that can be measured but is imperfect (soft
focus, dim light, a slight turn or tilt, a small face) gets its result with a warning that the
clinician sees beside it. Every refusal and every warning says what to do about it.

The limits were checked on palda-dev (clinical-style photos, many of them old scans that are soft)
and stroke-faces: the softest real photo in either scored 7.6 in sharpness and was measured well
(bench/eval_screening.py reports the refusals and warnings per class).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from inference.engine.measure import Measurements, eye_distance

# Refusal limits: below or beyond these the landmarks cannot be placed or one half is out of view.
MIN_EYE_DISTANCE_PX = 28  # below this the landmarks are too coarse to measure millimetres
MIN_BRIGHTNESS = 45.0  # mean grey level of the face, 0..255
MIN_SHARPNESS = 4.0  # variance of the Laplacian on the face at 256 px wide; real photos here: >= 7.6
MAX_YAW = 0.45  # nose tip offset from the midline, as a fraction of half the eye distance
PITCH_RANGE = (0.3, 0.95)  # nose tip height between eye line (0) and mouth (1); a wide mouth lowers it

# Warning limits: measured, but less precisely than the figures in the model card.
SOFT_SHARPNESS = 15.0
DIM_BRIGHTNESS = 70.0
SMALL_EYE_DISTANCE_PX = 50
SLIGHT_YAW = 0.25
SLIGHT_PITCH_RANGE = (0.4, 0.9)

NO_FACE = (
    "No face found: retake the photo facing the camera, close enough that the face fills most of the picture, "
    "in good light."
)
NO_FACE_BLURRED = (
    "No face found, and the photo is very blurred: hold the phone still, tap the face to focus, and retake it "
    "with the whole face in view."
)
FACE_UNREADABLE = (
    "A face was found, but its features could not be placed: retake the photo with the whole face in view, "
    "uncovered (no mask, hand or hair over it) and facing the camera."
)
SEVERAL_FACES = "More than one face found: take a photo of the patient alone."
TOO_SMALL = "The face is too small in the photo: move closer so the face fills most of the picture."
TOO_BLURRED = "The photo is too blurred to measure: hold the phone still, tap the face to focus, and retake it."
TOO_DARK = "The photo is too dark: move to better light (facing a window works well) and retake it."
TURNED = "The head is turned to one side: ask the patient to look straight at the camera and retake it."
TILTED = "The head is tilted up or down: hold the phone level with the patient's eyes and retake it."

WARNINGS = {
    "soft_focus": "The photo is slightly out of focus: small differences may be missed. If you can, retake it "
    "holding the phone still and tapping the face to focus.",
    "dim_light": "The light is dim: measurements are less precise. If you can, retake it facing a window.",
    "small_face": "The face is small in the photo: measurements are less precise. If you can, move closer.",
    "slightly_turned": "The head is slightly turned: a turn can look like asymmetry. If you can, retake it with "
    "the patient looking straight at the camera.",
    "slightly_tilted": "The head is slightly tilted up or down. If you can, retake it with the phone level with "
    "the patient's eyes.",
    # Set by inference/engine/repeatability.py, from how far the face's refits disagree.
    "fits_disagree": "The measurements of this photo disagree with each other, so its index is less certain. "
    "Retake the photo with the face straight at the camera, in even light.",
    "refits_failed": "The face could be measured only once (its checking refits lost it), so its index is less "
    "certain. Retake the photo with the face straight at the camera, in even light.",
}


@dataclass(frozen=True)
class QualityReport:
    passed: bool
    reason: str
    figures: dict[str, float | str]
    warnings: list[dict[str, str]] = field(default_factory=list)  # [{"code", "message"}]


def face_figures(rgb: np.ndarray, points: np.ndarray) -> dict[str, float]:
    """Sharpness and brightness measured on the face itself, not the background."""
    x0, y0 = np.floor(points.min(axis=0)).astype(int)
    x1, y1 = np.ceil(points.max(axis=0)).astype(int)
    height, width = rgb.shape[:2]
    crop = rgb[max(y0, 0) : min(y1, height), max(x0, 0) : min(x1, width)]
    if crop.size == 0:
        return {"sharpness": 0.0, "brightness": 0.0}
    grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
    return {"sharpness": sharpness(grey), "brightness": float(grey.mean())}


# Below this sharpness of the whole photo (as MIN_SHARPNESS, but over the whole frame) a photo with no
# face found is called blurred: Gaussian blur of sigma 8 on a 512 px portrait scores 3.8, sigma 6 6.9.
# A blank one (a wall, the ceiling) is not sharp either: it has no contrast (its grey levels' deviation
# is below BLANK_PHOTO_DEVIATION; the blurred portrait's is about 60).
BLURRED_PHOTO_SHARPNESS = 6.0
BLANK_PHOTO_DEVIATION = 15.0
# A face box's width per eye distance (MediaPipe's box spans about 2.4 eye distances).
BOX_PER_EYE_DISTANCE = 2.4


def sharpness(grey: np.ndarray) -> float:
    """Variance of the Laplacian at 256 px wide: comparable between a close-up and a distant face."""
    scale = 256 / grey.shape[1]
    grey = cv2.resize(grey, (256, max(1, round(grey.shape[0] * scale))), interpolation=cv2.INTER_AREA)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def no_landmarks(rgb: np.ndarray, boxes: list[np.ndarray], scale: float = 1.0) -> QualityReport:
    """Why no face could be measured, when the mesh placed none: ``boxes`` are the faces the
    full-range detector found (face.FaceMeshDetector.locate) in ``rgb``, whose pixels are ``scale``
    of the original photo's. A refusal names the likely cause instead of "no face found" for every one."""
    if len(boxes) > 1:
        return QualityReport(False, SEVERAL_FACES, {"faces": len(boxes)})
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    if not boxes:
        whole, deviation = round(sharpness(grey), 2), round(float(grey.std()), 2)
        blurred = whole < BLURRED_PHOTO_SHARPNESS and deviation >= BLANK_PHOTO_DEVIATION
        reason = NO_FACE_BLURRED if blurred else NO_FACE
        return QualityReport(False, reason, {"faces": 0, "photo_sharpness": whole, "photo_deviation": deviation})
    x0, y0, x1, y1 = np.round(boxes[0]).astype(int)
    crop = grey[max(y0, 0) : max(y1, 1), max(x0, 0) : max(x1, 1)]
    figures: dict[str, float | str] = {
        "faces": 1,
        "eye_distance_px": round((x1 - x0) / scale / BOX_PER_EYE_DISTANCE, 1),
        "sharpness": round(sharpness(crop), 2) if crop.size else 0.0,
        "brightness": round(float(crop.mean()), 2) if crop.size else 0.0,
    }
    if figures["eye_distance_px"] < MIN_EYE_DISTANCE_PX:
        return QualityReport(False, TOO_SMALL, figures)
    if figures["brightness"] < DIM_BRIGHTNESS:
        return QualityReport(False, TOO_DARK, figures)
    if figures["sharpness"] < SOFT_SHARPNESS:
        return QualityReport(False, TOO_BLURRED, figures)
    return QualityReport(False, FACE_UNREADABLE, figures)


def assess(rgb: np.ndarray, faces: list[np.ndarray], measurements: Measurements | None) -> QualityReport:
    if not faces:
        return QualityReport(False, NO_FACE, {"faces": 0})
    if len(faces) > 1:
        return QualityReport(False, SEVERAL_FACES, {"faces": len(faces)})
    return judge_face(faces[0], face_figures(rgb, faces[0]), measurements)


def judge_face(points: np.ndarray, looks: dict[str, float], measurements: Measurements | None) -> QualityReport:
    """The gate on one face: its landmarks, its face_figures() and, when measured, its measurements."""
    figures: dict[str, float | str] = {"faces": 1, "eye_distance_px": round(eye_distance(points), 1)}
    figures.update({name: round(value, 2) for name, value in looks.items()})
    if measurements is not None:
        figures.update(
            {
                "yaw": round(measurements.yaw, 3),
                "pitch": round(measurements.pitch, 3),
                "roll_deg": round(measurements.roll_deg, 2),
            }
        )
    return judge(figures)


def judge(figures: dict) -> QualityReport:
    """The gate on one face's figures (eye_distance_px, brightness, sharpness and, when measured,
    yaw and pitch): a refusal with its reason, or a pass with the warnings that apply."""
    if figures["eye_distance_px"] < MIN_EYE_DISTANCE_PX:
        return QualityReport(False, TOO_SMALL, figures)
    if figures["brightness"] < MIN_BRIGHTNESS:
        return QualityReport(False, TOO_DARK, figures)
    if figures["sharpness"] < MIN_SHARPNESS:
        return QualityReport(False, TOO_BLURRED, figures)
    yaw, pitch = figures.get("yaw"), figures.get("pitch")
    if yaw is not None and abs(yaw) > MAX_YAW:
        return QualityReport(False, TURNED, figures)
    if pitch is not None and not PITCH_RANGE[0] <= pitch <= PITCH_RANGE[1]:
        return QualityReport(False, TILTED, figures)
    codes = []
    if figures["sharpness"] < SOFT_SHARPNESS:
        codes.append("soft_focus")
    if figures["brightness"] < DIM_BRIGHTNESS:
        codes.append("dim_light")
    if figures["eye_distance_px"] < SMALL_EYE_DISTANCE_PX:
        codes.append("small_face")
    if yaw is not None and abs(yaw) > SLIGHT_YAW:
        codes.append("slightly_turned")
    if pitch is not None and not SLIGHT_PITCH_RANGE[0] <= pitch <= SLIGHT_PITCH_RANGE[1]:
        codes.append("slightly_tilted")
    return QualityReport(True, "", figures, [{"code": code, "message": WARNINGS[code]} for code in codes])
