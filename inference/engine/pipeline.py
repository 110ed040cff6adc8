"""The whole analysis of one photo: decode -> face -> quality -> align -> measure -> classify -> decide.

A pure library: no Django. The worker (scans/tasks.py) and `manage.py analyze_image` both call
`Pipeline.analyze`, so the portal and the command line give the same answer for the same photo.
"""

from __future__ import annotations

import io
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from inference.engine import quality, repeatability
from inference.engine.align import aligned_face
from inference.engine.classifier import ResNetClassifier
from inference.engine.decide import ASYMMETRY_ONLY_RULE, NO_PARALYSIS, DecisionRule, decide
from inference.engine.exam import ExamResult, RestFace, measure_exam
from inference.engine.face import FaceMeshDetector, FaceSearch
from inference.engine.imaging import ANALYSIS_MAX_SIDE, analysis_copy, open_image
from inference.engine.measure import LEFT, NOSE_BRIDGE, RIGHT, measure

# -4: a face the mesh misses is looked for with the full-range detector and measured in a crop.
ENGINE_VERSION = "facemesh-canonical-asymmetry-4"
OVERLAY_SIDE = 512  # the face crop is drawn at this size, so small faces become readable


@dataclass
class Analysis:
    status: str  # "done" or "rejected"
    reason: str = ""
    label: str = ""
    score: float = 0.0
    severity: str = ""
    affected_side: str = ""
    pattern: str = ""  # central / peripheral / undetermined for a flagged face, "" otherwise
    measurements: dict = field(default_factory=dict)
    quality: dict = field(default_factory=dict)
    classifier: dict = field(default_factory=dict)
    decision: dict = field(default_factory=dict)
    engine_version: str = ENGINE_VERSION
    overlay_jpeg: bytes | None = None
    heatmap_jpeg: bytes | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict:
        """JSON-ready, without the image bytes."""
        data = {key: value for key, value in self.__dict__.items() if not key.endswith("_jpeg")}
        return data


@dataclass
class ExamAnalysis:
    """A guided exam: the rest photo's own analysis, and the exam measured against it (None when the
    rest photo was refused: nothing can be measured against it)."""

    rest: Analysis
    exam: ExamResult | None

    def as_dict(self) -> dict:
        return {"rest": self.rest.as_dict(), "exam": self.exam.to_dict() if self.exam else None}


class Pipeline:
    def __init__(
        self,
        *,
        detector: FaceMeshDetector | None = None,
        classifier: ResNetClassifier | None = None,
        classifier_name: str = "",
        classifier_sha256: str = "",
        rule: DecisionRule = ASYMMETRY_ONLY_RULE,
        max_pixels: int = 40_000_000,
    ) -> None:
        self.detector = detector or FaceMeshDetector()
        self.classifier = classifier
        self.classifier_name = classifier_name
        self.classifier_sha256 = classifier_sha256
        self.rule = rule
        self.max_pixels = max_pixels
        self.classifier_note = "No trained classifier is active; the asymmetry rule decided alone."
        # "absent": none is active; "unavailable": the active one could not be loaded (inference/runtime.py).
        self.classifier_status = "absent"

    def analyze_bytes(self, raw: bytes) -> Analysis:
        """Raises imaging.ImageRejected for a file that is not a usable image."""
        return self.analyze(open_image(raw, max_pixels=self.max_pixels, max_side=ANALYSIS_MAX_SIDE))

    def analyze(self, image: Image.Image) -> Analysis:
        return self._analyze(image)[0]

    def analyze_exam(self, rest: Image.Image, poses: Mapping[str, Sequence[Image.Image]]) -> ExamAnalysis:
        """A guided exam (issue 41): the rest photo analysed as ``analyze`` does, and each pose's frames
        measured against it (inference/engine/exam.py) with the rest photo's landmarks, scale and
        analysed copy reused, not fitted again. A rest photo that is refused refuses the exam."""
        clock = time.process_time()
        analysis, rest_face = self._analyze(rest)
        rest_cpu_ms = (time.process_time() - clock) * 1000
        if rest_face is None:
            return ExamAnalysis(rest=analysis, exam=None)
        result = measure_exam(
            rest=rest_face,
            poses={name: [np.asarray(analysis_copy(frame)) for frame in frames] for name, frames in poses.items()},
            detector=self.detector,
            rest_affected_side=analysis.affected_side,
        )
        result.cpu_ms["rest"] = round(rest_cpu_ms, 1)
        return ExamAnalysis(rest=analysis, exam=result)

    def analyze_exam_bytes(self, rest: bytes, poses: Mapping[str, Sequence[bytes]]) -> ExamAnalysis:
        """Raises imaging.ImageRejected for a file that is not a usable image."""

        def decoded(raw: bytes) -> Image.Image:
            return open_image(raw, max_pixels=self.max_pixels, max_side=ANALYSIS_MAX_SIDE)

        return self.analyze_exam(
            decoded(rest), {name: [decoded(raw) for raw in frames] for name, frames in poses.items()}
        )

    def _analyze(self, image: Image.Image) -> tuple[Analysis, RestFace | None]:
        """The analysis, and for a photo that passed, the fits an exam reuses (its landmarks, its
        analysed copy and its millimetre scale)."""
        timings: dict[str, float] = {}
        clock = time.perf_counter()

        def lap(stage: str) -> None:
            nonlocal clock
            now = time.perf_counter()
            timings[stage] = round((now - clock) * 1000, 2)
            clock = now

        source, image = image, analysis_copy(image)
        rgb = np.asarray(image)
        search = self.detector.find(rgb)
        if not search.faces:
            # A face far from the camera is too small for the mesh's detector: find it with the
            # full-range one, and measure it in a crop of the photo at the photo's own resolution.
            image, rgb, search, report = self._zoom_in(source, image, rgb)
            if report is not None:
                lap("face")
                figures = {**report.figures, "face_search": search.attempt, "analysed_size": list(image.size)}
                return Analysis(status="rejected", reason=report.reason, quality=figures, timings_ms=timings), None
        lap("face")
        measurements = measure(search.faces[0]) if len(search.faces) == 1 else None
        lap("measure")
        report = quality.assess(rgb, search.faces, measurements)
        # Pixel figures refer to the analysed copy (at most ANALYSIS_MAX_SIDE on its longest side), or
        # to the crop a distant face was measured in.
        report_figures = {**report.figures, "face_search": search.attempt, "analysed_size": list(image.size)}
        if not report.passed:
            return (
                Analysis(status="rejected", reason=report.reason, quality=report_figures, timings_ms=timings),
                None,
            )
        points = search.faces[0]

        probability = None
        heatmap = None
        if self.classifier is None:
            classifier_info = {"status": self.classifier_status, "detail": self.classifier_note}
        else:
            face = aligned_face(rgb, points, size=self.classifier.input_size)
            lap("align")
            prediction = self.classifier.predict(face, with_heatmap=True)
            probability = prediction.probability
            heatmap = _heatmap_jpeg(face, prediction.heatmap)
            classifier_info = {
                "status": "used",
                "model": self.classifier_name,
                "sha256": self.classifier_sha256,
                "probability": round(probability, 4),
                "runtime": self.classifier.runtime_name,
                "heatmap": "grad-cam" if heatmap is not None else "",
                **classifier_role(self.rule),
            }
            lap("classify")

        sureness = repeatability.assess(
            points, measurements, search.fits, report.figures, refits_tried=self.detector.refits
        )
        warnings = report.warnings + sureness.warnings
        decision = decide(
            asymmetry_index=measurements.asymmetry_index,
            severity=measurements.severity,
            probability=probability,
            rule=self.rule,
            upper_face_involvement=measurements.upper_face["involvement"],
            uncertainty=sureness.half_width,
        )
        overlay = _overlay_jpeg(image, points)
        lap("overlay")
        analysis = Analysis(
            status="done",
            label=decision.label,
            score=decision.score,
            severity=decision.severity,
            # A negative result names no affected side; the measurements keep the side they lean to.
            affected_side="" if decision.label == NO_PARALYSIS else measurements.affected_side,
            pattern=decision.pattern,
            measurements={**measurements.as_dict(), **sureness.as_dict()},
            quality={**report_figures, "warnings": warnings},
            classifier=classifier_info,
            decision=decision.rule,
            overlay_jpeg=overlay,
            heatmap_jpeg=heatmap,
            timings_ms=timings,
        )
        return analysis, RestFace(rgb=rgb, points=points, measurements=measurements, fits=len(search.fits) // 2)

    def _zoom_in(self, source: Image.Image, image: Image.Image, rgb: np.ndarray):
        """(image, rgb, search, refusal) after looking for a face the mesh missed: the crop around
        the one face the full-range detector found, three times its box, cut from ``source`` (the
        photo as decoded, often twice the analysed copy's resolution) and the mesh's fit in it; or a
        refusal that names why no face could be measured (quality.no_landmarks)."""
        boxes = self.detector.locate(rgb)
        if len(boxes) != 1:
            return image, rgb, FaceSearch([], "none, full-range none"), quality.no_landmarks(rgb, [b for b, _ in boxes])
        box = boxes[0][0]
        scale = source.width / image.width
        centre, side = (box[:2] + box[2:]) / 2 * scale, float(max(box[2:] - box[:2])) * 3 * scale
        left, top = np.maximum(np.round(centre - side / 2), 0).astype(int)
        right, bottom = np.minimum(np.round(centre + side / 2), source.size).astype(int)
        crop = analysis_copy(source.crop((int(left), int(top), int(right), int(bottom))))
        crop_rgb = np.asarray(crop)
        search = self.detector.find(crop_rgb)
        attempt = f"zoomed in on a distant face ({right - left} x {bottom - top} px of the photo), {search.attempt}"
        search = FaceSearch(search.faces, attempt, search.fits)
        if search.faces:
            return crop, crop_rgb, search, None
        return image, rgb, search, quality.no_landmarks(rgb, [box], scale=1 / scale)


SECOND_READER = (
    "Second reader: shown, not deciding. Validation found that the classifier added nothing to the "
    "asymmetry measurements, so its probability and heatmap are shown for the clinician and the "
    "asymmetry rule decides."
)


def classifier_role(rule: DecisionRule) -> dict:
    """Whether the classifier's probability moves the label ("deciding", with its weight) or is only
    shown ("second reader": the fused rule gives it weight 0)."""
    if rule.classifier_weight > 0:
        return {"role": "deciding", "weight": rule.classifier_weight}
    return {"role": "second reader", "weight": 0.0, "detail": SECOND_READER}


def _jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=88)
    return buffer.getvalue()


def _overlay_jpeg(image: Image.Image, points: np.ndarray) -> bytes:
    """The face, cropped with a margin, with the landmarks used for measuring, the eye line, the
    brow line, the mouth-corner line and the midline drawn on it, and an R and an L beside the
    patient's right and left eye (placed by the landmarks, so right whichever way the photo faces)."""
    low, high = points.min(axis=0), points.max(axis=0)
    margin = (high - low) * 0.35
    left, top = np.maximum(low - margin, 0).astype(int)
    right, bottom = np.minimum(high + margin, image.size).astype(int)
    face = image.crop((left, top, right, bottom))
    scale = OVERLAY_SIDE / max(face.size)
    canvas = face.resize(
        (max(1, round(face.width * scale)), max(1, round(face.height * scale))),
        Image.Resampling.BICUBIC,
        reducing_gap=3.0,
    )
    draw = ImageDraw.Draw(canvas)
    pts = (points - [left, top]) * scale
    radius = max(1.5, canvas.width / 400)
    for x, y in pts[:468:3]:
        draw.ellipse((x - radius / 2, y - radius / 2, x + radius / 2, y + radius / 2), fill=(120, 220, 255))
    width = max(2, round(canvas.width / 300))

    def line(a, b, colour):
        draw.line([tuple(a), tuple(b)], fill=colour, width=width)

    right_eye = (pts[RIGHT["eye_outer"]] + pts[RIGHT["eye_inner"]]) / 2
    left_eye = (pts[LEFT["eye_outer"]] + pts[LEFT["eye_inner"]]) / 2
    line(right_eye, left_eye, (80, 200, 80))
    line(pts[RIGHT["mouth_corner"]], pts[LEFT["mouth_corner"]], (240, 80, 60))
    line(pts[RIGHT["brow"][2]], pts[LEFT["brow"][2]], (250, 200, 40))
    eye_mid = (right_eye + left_eye) / 2
    direction = left_eye - right_eye
    normal = np.array([-direction[1], direction[0]])
    line(eye_mid - normal * 0.6, eye_mid + normal * 1.9, (200, 200, 200))
    for index in (RIGHT["mouth_corner"], LEFT["mouth_corner"], NOSE_BRIDGE):
        x, y = pts[index]
        r = radius * 2.5
        draw.ellipse((x - r, y - r, x + r, y + r), outline=(255, 255, 255), width=width)
    size = side_mark_size(canvas.size)
    font = ImageFont.load_default(size=size)
    half = size * 0.6
    for letter, (x, y) in side_marks(pts, canvas.size).items():
        draw.rounded_rectangle((x - half, y - half, x + half, y + half), radius=size / 5, fill=(20, 30, 45))
        draw.text((x, y), letter, font=font, fill=(255, 255, 255), anchor="mm")
    return _jpeg(canvas)


def side_mark_size(canvas_size: tuple[int, int]) -> int:
    return max(14, round(canvas_size[0] / 14))


def side_marks(pts: np.ndarray, canvas_size: tuple[int, int]) -> dict[str, tuple[float, float]]:
    """Where the overlay writes R and L: above and outside the patient's right and left eye."""
    size = side_mark_size(canvas_size)
    middle = (pts[RIGHT["eye_outer"]] + pts[LEFT["eye_outer"]]) / 2
    marks = {}
    for letter, eye in (("R", pts[RIGHT["eye_outer"]]), ("L", pts[LEFT["eye_outer"]])):
        outward = np.sign(eye[0] - middle[0]) or 1.0
        x, y = eye + [outward * size * 1.4, -size * 1.2]
        marks[letter] = (
            float(np.clip(x, size * 0.6, canvas_size[0] - size * 0.6)),
            float(np.clip(y, size * 0.6, canvas_size[1] - size * 0.6)),
        )
    return marks


def _heatmap_jpeg(face_rgb: np.ndarray, heatmap: np.ndarray | None) -> bytes | None:
    if heatmap is None:
        return None
    import cv2

    colour = cv2.applyColorMap((np.clip(heatmap, 0, 1) * 255).astype(np.uint8), cv2.COLORMAP_JET)
    colour = cv2.cvtColor(colour, cv2.COLOR_BGR2RGB)
    blended = (0.55 * face_rgb + 0.45 * colour).astype(np.uint8)
    return _jpeg(Image.fromarray(blended))
