"""Finding the face: MediaPipe Face Mesh (478 landmarks, with irises), with fallbacks for hard photos.

Face Mesh's own detector is the short-range BlazeFace model: it misses faces that fill the whole
frame (close-ups) and faces rotated by tens of degrees. When the plain pass finds nothing we retry on
a padded copy (so a close-up becomes a face at normal distance) and on rotated copies, then map the
landmarks back to the original image's pixel coordinates.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

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


def _unrotate(points: np.ndarray, quarter_turns: int, width: int, height: int) -> np.ndarray:
    """Map points found in np.rot90(image, k) back to the original image's coordinates."""
    x, y = points[:, 0], points[:, 1]
    if quarter_turns == 1:  # rot90 counter-clockwise: original (x, y) -> (y, W - 1 - x)
        return np.stack([width - 1 - y, x], axis=1)
    if quarter_turns == 3:  # clockwise: original (x, y) -> (H - 1 - y, x)
        return np.stack([y, height - 1 - x], axis=1)
    return np.stack([width - 1 - x, height - 1 - y], axis=1)
