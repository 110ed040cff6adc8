"""Landmarks of every photo of a data set, found exactly as the worker finds them, cached on disk.

Used by bench/eval_screening.py. Each photo is decoded through the portal's own path (open_image at
the analysis size, then analysis_copy), the mesh is fitted to it and to its mirror image, and the
cache keeps both one-way fits of the largest face, the symmetrised faces, the face's sharpness and
brightness and (for near-duplicate grouping) its signature. Photos are only read, never copied.
"""

from __future__ import annotations

import os
import pickle
import sys
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from eval_asymmetry import file_key, list_images  # noqa: E402
from tqdm import tqdm  # noqa: E402

from inference.engine import duplicates, quality  # noqa: E402
from inference.engine.face import FaceMeshDetector, symmetrise  # noqa: E402
from inference.engine.imaging import ANALYSIS_MAX_SIDE, ImageRejected, analysis_copy, open_image  # noqa: E402
from inference.engine.measure import eye_distance  # noqa: E402
from inference.engine.mesh_symmetry import mirror_landmarks  # noqa: E402

CACHE_VERSION = 2  # 2: the lone face refitted in its canonical frame (issue 28)
MAX_PIXELS = 40_000_000


def largest(faces: list[np.ndarray]) -> np.ndarray | None:
    return max(faces, key=eye_distance) if faces else None


def photo_record(detector: FaceMeshDetector, path: Path, *, with_signature: bool) -> dict:
    record: dict = {"name": path.name, "n_faces": 0, "points": None, "direct": None, "mirror": None, "error": ""}
    try:
        image = analysis_copy(open_image(path.read_bytes(), max_pixels=MAX_PIXELS, max_side=ANALYSIS_MAX_SIDE))
    except ImageRejected as error:
        record["error"] = str(error)
        return record
    rgb = np.asarray(image)
    direct = detector.find_one_way(rgb)
    mirrored = detector.find_one_way(np.ascontiguousarray(rgb[:, ::-1]))
    search = symmetrise(direct, mirrored, width=rgb.shape[1])
    if len(search.faces) == 1:
        search = detector.refit(rgb, search)
    points = largest(search.faces)
    mirror_back = [mirror_landmarks(face, rgb.shape[1]) for face in mirrored.faces]
    record.update(
        n_faces=len(search.faces),
        points=points,
        direct=largest(direct.faces),
        mirror=largest(mirror_back),
        attempt=search.attempt,
        size=image.size,
    )
    record["fits"] = search.fits if len(search.faces) == 1 else ()
    if points is not None:
        record["figures"] = quality.face_figures(rgb, points)
        if with_signature:
            record["signature"] = duplicates.signature(rgb, points)
    return record


def load(folder: Path, cache_dir: Path, *, with_signature: bool = False) -> list[dict]:
    """Records for every photo under folder's class folders (one level), from the cache when fresh."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    cache_path = cache_dir / f"{folder.resolve().name}.pickle"
    cache: dict = {}
    if cache_path.exists():
        with cache_path.open("rb") as handle:
            stored = pickle.load(handle)
        if stored.get("version") == CACHE_VERSION:
            cache = stored["records"]
    detector = None
    records = []
    paths = [p for sub in sorted(folder.iterdir()) if sub.is_dir() for p in list_images(sub)]
    todo = [p for p in paths if file_key(p, folder) not in cache]
    for path in tqdm(paths, desc=folder.name, unit="photo", disable=not todo):
        key = file_key(path, folder)
        if key not in cache:
            detector = detector or FaceMeshDetector()
            started = time.perf_counter()
            cache[key] = photo_record(detector, path, with_signature=with_signature)
            cache[key]["seconds"] = time.perf_counter() - started
        records.append({**cache[key], "class": path.parent.name, "key": key})
    if todo:
        with cache_path.open("wb") as handle:
            pickle.dump({"version": CACHE_VERSION, "records": cache}, handle)
    return records


if __name__ == "__main__":
    load(Path(sys.argv[1]), Path(sys.argv[2]), with_signature=len(sys.argv) > 3)
