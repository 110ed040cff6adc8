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


@dataclass(frozen=True)
class FaceSearch:
    faces: list[np.ndarray]  # each (478, 2) float pixel coordinates in the original image
    attempt: str  # which pass found them: "plain", "padded", "rotated 90", ...


class FaceMeshDetector:
    """One MediaPipe graph per instance; not thread-safe, so each worker process keeps its own."""

    def __init__(self, *, max_faces: int = 3, min_confidence: float = 0.5) -> None:
        self._max_faces = max_faces
        self._min_confidence = min_confidence
        self._mesh = None
        self._lock = threading.Lock()

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
        """Every face in the photo, each the average of its fit on the photo and on its mirror."""
        direct = self.find_one_way(rgb)
        mirrored = self.find_one_way(np.ascontiguousarray(rgb[:, ::-1]))
        return symmetrise(direct, mirrored, width=rgb.shape[1])

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
