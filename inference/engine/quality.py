"""The quality gate: is this photo good enough to measure? Every refusal says how to fix the photo."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from inference.engine.measure import LEFT, RIGHT, Measurements, eye_centre

MIN_EYE_DISTANCE_PX = 28  # below this the landmarks are too coarse to measure millimetres
MIN_SHARPNESS = 15.0  # variance of the Laplacian on the face at 256 px wide; real photos here: 1st percentile ~20
MIN_BRIGHTNESS = 45.0  # mean grey level of the face, 0..255
MAX_YAW = 0.45  # nose tip offset from the midline, as a fraction of half the eye distance
PITCH_RANGE = (0.4, 0.95)  # nose tip height between eye line (0) and mouth (1)

NO_FACE = "No face found: retake the photo facing the camera, with the whole face in view and in good light."
SEVERAL_FACES = "More than one face found: take a photo of the patient alone."
TOO_SMALL = "The face is too small in the photo: move closer so the face fills most of the picture."
TOO_BLURRED = "The photo is too blurred: hold the phone still, tap the face to focus, and retake it."
TOO_DARK = "The photo is too dark: move to better light (facing a window works well) and retake it."
TURNED = "The head is turned to one side: ask the patient to look straight at the camera and retake it."
TILTED = "The head is tilted up or down: hold the phone level with the patient's eyes and retake it."


@dataclass(frozen=True)
class QualityReport:
    passed: bool
    reason: str
    figures: dict[str, float | str]


def face_figures(rgb: np.ndarray, points: np.ndarray) -> dict[str, float]:
    """Sharpness and brightness measured on the face itself, not the background."""
    x0, y0 = np.floor(points.min(axis=0)).astype(int)
    x1, y1 = np.ceil(points.max(axis=0)).astype(int)
    height, width = rgb.shape[:2]
    crop = rgb[max(y0, 0):min(y1, height), max(x0, 0):min(x1, width)]
    if crop.size == 0:
        return {"sharpness": 0.0, "brightness": 0.0}
    grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
    # A fixed width makes sharpness comparable between a close-up and a distant face.
    scale = 256 / grey.shape[1]
    grey = cv2.resize(grey, (256, max(1, round(grey.shape[0] * scale))), interpolation=cv2.INTER_AREA)
    return {
        "sharpness": float(cv2.Laplacian(grey, cv2.CV_64F).var()),
        "brightness": float(grey.mean()),
    }


def assess(rgb: np.ndarray, faces: list[np.ndarray], measurements: Measurements | None) -> QualityReport:
    if not faces:
        return QualityReport(False, NO_FACE, {"faces": 0})
    if len(faces) > 1:
        return QualityReport(False, SEVERAL_FACES, {"faces": len(faces)})
    points = faces[0]
    eye_distance_px = float(np.linalg.norm(eye_centre(points, LEFT) - eye_centre(points, RIGHT)))
    figures: dict[str, float | str] = {"faces": 1, "eye_distance_px": round(eye_distance_px, 1)}
    figures.update({name: round(value, 2) for name, value in face_figures(rgb, points).items()})
    if measurements is not None:
        figures.update({"yaw": round(measurements.yaw, 3), "pitch": round(measurements.pitch, 3),
                        "roll_deg": round(measurements.roll_deg, 2)})
    if eye_distance_px < MIN_EYE_DISTANCE_PX:
        return QualityReport(False, TOO_SMALL, figures)
    if figures["brightness"] < MIN_BRIGHTNESS:
        return QualityReport(False, TOO_DARK, figures)
    if figures["sharpness"] < MIN_SHARPNESS:
        return QualityReport(False, TOO_BLURRED, figures)
    if measurements is not None:
        if abs(measurements.yaw) > MAX_YAW:
            return QualityReport(False, TURNED, figures)
        if not PITCH_RANGE[0] <= measurements.pitch <= PITCH_RANGE[1]:
            return QualityReport(False, TILTED, figures)
    return QualityReport(True, "", figures)
