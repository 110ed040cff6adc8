"""Finding the face: MediaPipe Face Mesh (478 landmarks, with irises), with fallbacks for hard photos.

Both sides of the face are found alike, by construction: the mesh is fitted to the photo and to its
mirror image, the mirror's landmarks are mapped back (flipped, and each point renamed to its
counterpart on the other half, see mesh_symmetry.py) and the two fits are averaged. Face Mesh alone
is not mirror-consistent: the same mouth-corner droop drawn on the left or on the right of one face
measured differently, and a photo's mirror image changed the asymmetry index by up to 0.84. Because
the mirror image of the mirror image is the photo itself, a photo and its mirror now get the same
landmarks with the sides swapped (tests/inference/test_symmetry.py).

Face Mesh's own detector is the short-range BlazeFace model: it misses faces that fill the whole
frame (close-ups) and faces rotated by tens of degrees. When the plain pass finds nothing we retry on
a padded copy (so a close-up becomes a face at normal distance) and on rotated copies, then map the
landmarks back to the original image's pixel coordinates.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from inference.engine.measure import LEFT, RIGHT, eye_centre, eye_distance
from inference.engine.mesh_symmetry import mirror_landmarks

NUM_LANDMARKS = 478
# Past this roll the mesh is refitted on a levelled copy of the photo.
UPRIGHT_RETRY_DEGREES = 20.0
# The canonical frame a lone face is refitted in (FaceMeshDetector.refit): a square of CANONICAL_SIZE
# pixels, the eyes level, CANONICAL_EYE_PX apart, their midpoint centred and CANONICAL_EYES_AT of the
# way down. Each jitter is (dx, dy, zoom, turn in degrees); the set is its own mirror image (dx and
# the turn change sign together), so a photo and its mirror are refitted alike.
CANONICAL_SIZE = 320
CANONICAL_EYE_PX = 80.0
CANONICAL_EYES_AT = 0.42
# Three copies: on bench/repeatability.py's 162 photos in ten variants they steadied the index a
# little more than one copy (95th percentile of the change 0.129 against 0.139; pattern flips 7.8%
# against 9.0%) for 1.29x instead of 1.09x the whole analysis's CPU per phone photo.
CANONICAL_JITTERS = ((0.0, 0.0, 1.0, 0.0), (0.5, 0.3, 1.03, 1.0), (-0.5, 0.3, 1.03, -1.0))


@dataclass(frozen=True)
class FaceSearch:
    faces: list[np.ndarray]  # each (478, 2) float pixel coordinates in the original image
    attempt: str  # which pass found them: "plain", "padded", "rotated 90", ...
    # The canonical refits of a lone face (FaceMeshDetector.refit), one-way fits in pairs (a copy, then
    # its mirror image mapped back); faces[0] is the mean of the photo's own fit and theirs. Empty
    # when the face was not refitted.
    fits: tuple[np.ndarray, ...] = ()


class FaceMeshDetector:
    """One MediaPipe graph per instance; not thread-safe, so each worker process keeps its own."""

    def __init__(self, *, max_faces: int = 3, min_confidence: float = 0.5, jitters=CANONICAL_JITTERS) -> None:
        self._max_faces = max_faces
        self._jitters = tuple(jitters)
        self._min_confidence = min_confidence
        self._mesh = None
        self._boxes = None
        self._lock = threading.Lock()

    @property
    def refits(self) -> bool:
        """Whether a lone face is refitted in its canonical frame (``refit``)."""
        return bool(self._jitters)

    def _graph(self):
        if self._mesh is None:
            # Imported here: mediapipe pulls in TensorFlow Lite, which the web process never needs.
            import mediapipe as mp

            self._mesh = mp.solutions.face_mesh.FaceMesh(
                static_image_mode=True,
                max_num_faces=self._max_faces,
                refine_landmarks=True,
                min_detection_confidence=self._min_confidence,
            )
        return self._mesh

    def locate(self, rgb: np.ndarray) -> list[tuple[np.ndarray, float]]:
        """Face boxes (x0, y0, x1, y1 in pixels) with their scores, from MediaPipe's full-range face
        detector, which finds faces down to about 5% of the photo's width (the mesh's own short-range
        detector misses faces smaller than about 15%: a photo taken from across the room)."""
        with self._lock:
            if self._boxes is None:
                import mediapipe as mp

                self._boxes = mp.solutions.face_detection.FaceDetection(
                    model_selection=1, min_detection_confidence=self._min_confidence
                )
            result = self._boxes.process(np.ascontiguousarray(rgb))
        height, width = rgb.shape[:2]
        found = []
        for detection in result.detections or []:
            box = detection.location_data.relative_bounding_box
            corners = np.array(
                [box.xmin * width, box.ymin * height, (box.xmin + box.width) * width, (box.ymin + box.height) * height]
            )
            found.append((corners, float(detection.score[0])))
        return found

    def _landmarks(self, rgb: np.ndarray) -> list[np.ndarray]:
        with self._lock:
            result = self._graph().process(np.ascontiguousarray(rgb))
        faces = []
        height, width = rgb.shape[:2]
        for face in result.multi_face_landmarks or []:
            points = np.array([(lm.x * width, lm.y * height) for lm in face.landmark], dtype=np.float64)
            faces.append(points)
        return faces

    def find(self, rgb: np.ndarray) -> FaceSearch:
        """Every face in the photo, each the average of its fit on the photo and on its mirror; a lone
        face is then refitted in its canonical frame (``refit``)."""
        direct = self.find_one_way(rgb)
        mirrored = self.find_one_way(np.ascontiguousarray(rgb[:, ::-1]))
        search = symmetrise(direct, mirrored, width=rgb.shape[1])
        if len(search.faces) != 1 or not self._jitters:
            return search
        return self.refit(rgb, search)

    def refit(self, rgb: np.ndarray, search: FaceSearch) -> FaceSearch:
        """Fit the mesh again on copies of the face resampled to one canonical frame (eyes level,
        CANONICAL_EYE_PX apart, at the same place of a CANONICAL_SIZE square; ``CANONICAL_JITTERS``
        shift, scale and turn each copy a little), each copy also mirrored, and map the landmarks
        back to the photo. The landmarks returned are the mean of two estimates: the photo's own
        fits (``find``'s) and the mean of the canonical refits. The mesh sees the canonical copy at
        the same size and angle whatever the photo's size, framing and tilt, and its errors are
        largely independent of the photo fit's: their mean moved least between two photos of one
        face (bench/repeatability.py, 40 photos in six variants: 95th percentile of the index's change
        0.12, against 0.20 for the photo's fit alone and 0.15 for the refits alone)."""
        frame = _canonical_frame(search.faces[0])
        fits = []
        for jitter in self._jitters:
            matrix = frame.jittered(*jitter)
            crop = _mirror_even_resample(rgb, matrix, CANONICAL_SIZE)
            direct = FaceSearch(self._landmarks(crop)[:1], "canonical")
            flipped = FaceSearch(self._landmarks(np.ascontiguousarray(crop[:, ::-1]))[:1], "canonical")
            if (
                not direct.faces
                or not flipped.faces
                or len(symmetrise(direct, flipped, width=CANONICAL_SIZE).faces) != 1
            ):
                continue  # the mesh lost the face, or its two fits lie apart: this copy says nothing
            for points in (direct.faces[0], mirror_landmarks(flipped.faces[0], CANONICAL_SIZE)):
                fits.append(points @ matrix[:, :2].T + matrix[:, 2])
        if not fits:
            return search
        points = (search.faces[0] + np.mean(fits, axis=0)) / 2
        return FaceSearch([points], f"{search.attempt}, canonical x{len(fits) // 2}", tuple(fits))

    def find_one_way(self, rgb: np.ndarray) -> FaceSearch:
        """The mesh as MediaPipe fits it to this photo alone (with the fallbacks below)."""
        search = self._find_any(rgb)
        if len(search.faces) == 1:
            return self._refine_upright(rgb, search)
        return search

    def _refine_upright(self, rgb: np.ndarray, search: FaceSearch) -> FaceSearch:
        """The mesh fits a strongly tilted face poorly: turn the photo so the eyes are level and
        measure again, then map the landmarks back to the original photo."""
        points = search.faces[0]
        right_eye = (points[33] + points[133]) / 2
        left_eye = (points[263] + points[362]) / 2
        dx, dy = left_eye - right_eye
        roll = float(np.degrees(np.arctan2(dy, dx)))
        if abs(roll) < UPRIGHT_RETRY_DEGREES:
            return search
        import cv2

        height, width = rgb.shape[:2]
        centre = (float(width / 2), float(height / 2))
        matrix = cv2.getRotationMatrix2D(centre, roll, 1.0)
        # Enlarge the canvas so no part of the photo is cut off by the turn.
        cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
        new_width, new_height = int(height * sin + width * cos), int(height * cos + width * sin)
        matrix[0, 2] += new_width / 2 - centre[0]
        matrix[1, 2] += new_height / 2 - centre[1]
        upright = cv2.warpAffine(rgb, matrix, (new_width, new_height), borderMode=cv2.BORDER_REPLICATE)
        faces = self._landmarks(upright)
        if len(faces) != 1:
            return search
        inverse = cv2.invertAffineTransform(matrix)
        restored = faces[0] @ inverse[:, :2].T + inverse[:, 2]
        return FaceSearch([restored], f"{search.attempt}, levelled {roll:+.0f}")

    def _find_any(self, rgb: np.ndarray) -> FaceSearch:
        faces = self._landmarks(rgb)
        if faces:
            return FaceSearch(faces, "plain")
        height, width = rgb.shape[:2]
        pad = max(height, width) // 2
        padded = np.pad(rgb, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
        faces = self._landmarks(padded)
        if faces:
            return FaceSearch([points - pad for points in faces], "padded")
        for quarter_turns in (1, 3, 2):
            rotated = np.rot90(rgb, k=quarter_turns)
            faces = self._landmarks(rotated)
            if faces:
                return FaceSearch(
                    [_unrotate(points, quarter_turns, width, height) for points in faces],
                    f"rotated {90 * quarter_turns}",
                )
        return FaceSearch([], "none")


@dataclass(frozen=True)
class _Frame:
    """Maps canonical-square coordinates to the photo's (both with pixel centres at i + 0.5)."""

    centre: np.ndarray  # the eyes' midpoint in the photo
    roll: float  # radians: the eye line's angle in the photo
    scale: float  # photo pixels per canonical pixel

    def jittered(self, dx: float, dy: float, zoom: float, turn_deg: float) -> np.ndarray:
        """The 2 x 3 affine matrix canonical -> photo, with the canonical square shifted by (dx, dy)
        canonical pixels, zoomed by ``zoom`` and turned by ``turn_deg``."""
        angle = self.roll + np.radians(turn_deg)
        k = self.scale / zoom
        rotation = k * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        eyes_at = np.array([CANONICAL_SIZE / 2 + dx, CANONICAL_SIZE * CANONICAL_EYES_AT + dy])
        return np.hstack([rotation, (self.centre - rotation @ eyes_at)[:, None]])


def _canonical_frame(points: np.ndarray) -> _Frame:
    right, left = eye_centre(points, RIGHT), eye_centre(points, LEFT)
    dx, dy = left - right
    return _Frame((right + left) / 2, float(np.arctan2(dy, dx)), float(np.hypot(dx, dy)) / CANONICAL_EYE_PX)


def _mirror_even_resample(rgb: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """``_resample``, made exactly mirror-even: the mean of the square cut from the photo and the
    mirror of the square cut from the photo's mirror through the mirrored matrix. The photo's
    mirror image then gets exactly the mirror of this square (cutting and averaging swap places), so
    a photo and its mirror are refitted on mirror images, pixel for pixel, and the refits stay as
    mirror-consistent as the two passes of ``find``; one cut alone rounds differently on the two
    sides (interpolation, area averaging, the cut's edges)."""
    width = rgb.shape[1]
    flip = np.array([-1.0, 1.0])
    mirrored = np.empty_like(matrix)
    mirrored[:, :2] = matrix[:, :2] * flip[:, None] * flip[None, :]
    mirrored[:, 2] = flip * (matrix[:, :2] @ [size, 0.0] + matrix[:, 2]) + [width, 0.0]
    direct = _resample(rgb, matrix, size).astype(np.uint16)
    other = _resample(np.ascontiguousarray(rgb[:, ::-1]), mirrored, size)[:, ::-1].astype(np.uint16)
    # Rounding half up treats both orders alike: (a + b + 1) // 2 is symmetric in a and b.
    return ((direct + other + 1) // 2).astype(np.uint8)


def _resample(rgb: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """The size x size canonical square cut from the photo through ``matrix`` (canonical -> photo),
    bilinear; a photo face larger than the square is first reduced by area averaging (no aliasing)."""
    import cv2

    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    corners = np.array([[0, 0], [size, 0], [0, size], [size, size]], dtype=np.float64) @ matrix[:, :2].T
    corners += matrix[:, 2]
    height, width = rgb.shape[:2]
    x0, y0 = np.clip(np.floor(corners.min(axis=0)).astype(int) - 2, 0, [width, height])
    x1, y1 = np.clip(np.ceil(corners.max(axis=0)).astype(int) + 2, 0, [width, height])
    source = rgb[y0:y1, x0:x1]
    matrix = matrix.copy()
    matrix[:, 2] -= [x0, y0]
    if scale > 1.25 and source.size:
        new_size = (max(1, round(source.shape[1] / scale)), max(1, round(source.shape[0] / scale)))
        factors = np.array([new_size[0] / source.shape[1], new_size[1] / source.shape[0]])
        source = cv2.resize(source, new_size, interpolation=cv2.INTER_AREA)
        matrix = matrix * factors[:, None]
    if not source.size:
        return np.zeros((size, size, 3), dtype=np.uint8)
    # cv2 places pixel centres at integers: shift both ends by half a pixel.
    inverse = matrix.copy()
    inverse[:, 2] += matrix[:, :2] @ [0.5, 0.5] - 0.5
    return cv2.warpAffine(
        source,
        inverse,
        (size, size),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )


def symmetrise(direct: FaceSearch, mirrored: FaceSearch, *, width: int) -> FaceSearch:
    """Combine the fits on a photo (``direct``) and on its mirror image (``mirrored``, in the mirror's
    coordinates). A face found by both passes is the average of the two fits; a face found by one
    pass only is kept as that pass found it. Swapping the two arguments and mirroring the photo gives
    the mirror of the result, exactly: the matching and the average treat both passes alike."""
    back = [mirror_landmarks(points, width) for points in mirrored.faces]
    pairs = sorted(
        (float(np.linalg.norm(_eyes_middle(a) - _eyes_middle(b))), i, j)
        for i, a in enumerate(direct.faces)
        for j, b in enumerate(back)
    )
    used_direct: set[int] = set()
    used_back: set[int] = set()
    faces = []
    for gap, i, j in pairs:
        if i in used_direct or j in used_back or gap > 0.25 * (eye_distance(direct.faces[i]) + eye_distance(back[j])):
            continue
        used_direct.add(i)
        used_back.add(j)
        faces.append((direct.faces[i] + back[j]) / 2)
    faces += [points for i, points in enumerate(direct.faces) if i not in used_direct]
    faces += [points for j, points in enumerate(back) if j not in used_back]
    return FaceSearch(faces, f"{direct.attempt} | mirror {mirrored.attempt}")


def _eyes_middle(points: np.ndarray) -> np.ndarray:
    return (eye_centre(points, RIGHT) + eye_centre(points, LEFT)) / 2


def _unrotate(points: np.ndarray, quarter_turns: int, width: int, height: int) -> np.ndarray:
    """Map points found in np.rot90(image, k) back to the original image's coordinates."""
    x, y = points[:, 0], points[:, 1]
    if quarter_turns == 1:  # rot90 counter-clockwise: original (x, y) -> (y, W - 1 - x)
        return np.stack([width - 1 - y, x], axis=1)
    if quarter_turns == 3:  # clockwise: original (x, y) -> (H - 1 - y, x)
        return np.stack([y, height - 1 - x], axis=1)
    return np.stack([width - 1 - x, height - 1 - y], axis=1)
