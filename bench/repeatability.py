"""Repeatability: the same face photographed twice should give the same index.

    .venv/bin/python bench/repeatability.py [--palda DIR] [--stroke-faces DIR] [--stroke-count 60]
        [--methods before,single,canonical] [--phone-photos 8]

Each photo (all of palda-dev and a fixed draw of --stroke-count stroke-faces photos) is decoded as the
worker decodes it, then changed the ways a second photo of the same face differs: re-encoded as JPEG
quality 75, resized to 0.7x and 1.4x, reframed (2-6% cut off each edge), the camera turned 4 degrees,
mirrored, sensor noise, a slight blur, 20% brighter and darker. Each copy goes through the worker's own
steps (mesh, measurements, quality gate, rule) and is compared with the unchanged photo measured the
same way: the change of the index, of each regional figure (a mirrored copy's signed figures are
compared with their sign flipped) and of the upper-face figure the pattern is read from; the label as the
worker gives it (the shipped rule with the result's own repeatability): label changes, flagged flips
(sent to a clinician or not) and pattern flips (both flagged, pattern changed). Then each method's whole analysis
(decode, mesh, measurements, classifier, overlay) per 12-megapixel phone photo, as process CPU time,
methods taking turns on the same photos, and the ratio to the first method.

Methods: ``before`` is the engine before issue 28: one fit of the photo and one of its mirror, labels
by the rule of then (asymmetry-rest-v2) on the index alone; ``single`` the same fit with today's rule
judged on the interval; ``canonical`` adds the refits of three copies in the canonical frame
(inference/engine/face.py, the default); ``canonical-1`` refits one copy only.
A benchmark: it prints figures, it never fails.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import statistics
import sys
import time
import zlib
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
SHARED = ROOT.parent / "shared" / "datasets"

import cv2  # noqa: E402
from eval_asymmetry import list_images  # noqa: E402
from PIL import Image  # noqa: E402
from tqdm import tqdm  # noqa: E402

from inference.engine import quality, repeatability  # noqa: E402
from inference.engine.decide import ASYMMETRY_ONLY_RULE, NO_PARALYSIS, decide  # noqa: E402
from inference.engine.evaluation import person_of  # noqa: E402
from inference.engine.face import CANONICAL_JITTERS, FaceMeshDetector  # noqa: E402
from inference.engine.imaging import ANALYSIS_MAX_SIDE, analysis_copy, open_image  # noqa: E402
from inference.engine.measure import measure  # noqa: E402
from inference.engine.threads import limit_opencv_threads  # noqa: E402


def _jpeg(rgb: np.ndarray, quality_: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=quality_)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


def _resize(rgb: np.ndarray, factor: float) -> np.ndarray:
    height, width = rgb.shape[:2]
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC)


def _reframe(rgb: np.ndarray, rng: random.Random) -> np.ndarray:
    height, width = rgb.shape[:2]
    left, right = (round(width * rng.uniform(0.02, 0.06)) for _ in range(2))
    top, bottom = (round(height * rng.uniform(0.02, 0.06)) for _ in range(2))
    return np.ascontiguousarray(rgb[top : height - bottom, left : width - right])


def _turn(rgb: np.ndarray, degrees: float) -> np.ndarray:
    height, width = rgb.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, 1.0)
    return cv2.warpAffine(rgb, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _noise(rgb: np.ndarray, rng: random.Random) -> np.ndarray:
    grain = np.random.default_rng(rng.randrange(2**32)).normal(0, 4, rgb.shape)
    return np.clip(rgb + grain, 0, 255).astype(np.uint8)


def _gain(rgb: np.ndarray, factor: float) -> np.ndarray:
    return np.clip(rgb.astype(np.float32) * factor, 0, 255).astype(np.uint8)


# name -> (change, mirrored?): the ways a second photo of the same face differs from the first.
VARIANTS = {
    "JPEG quality 75": (lambda rgb, rng: _jpeg(rgb, 75), False),
    "0.7x": (lambda rgb, rng: _resize(rgb, 0.7), False),
    "1.4x": (lambda rgb, rng: _resize(rgb, 1.4), False),
    "reframed (2-6% off the edges)": (_reframe, False),
    "turned 4 degrees": (lambda rgb, rng: _turn(rgb, rng.choice((-4.0, 4.0))), False),
    "mirrored": (lambda rgb, rng: np.ascontiguousarray(rgb[:, ::-1]), True),
    "sensor noise (sd 4)": (_noise, False),
    "blurred (sd 1 px)": (lambda rgb, rng: cv2.GaussianBlur(rgb, (0, 0), 1.0), False),
    "20% brighter": (lambda rgb, rng: _gain(rgb, 1.2), False),
    "20% darker": (lambda rgb, rng: _gain(rgb, 0.8), False),
}
# What the dump keeps of each photo of a pair (base_..., copy_...): what repeatability.half_width reads.
DUMPED = ("index", "eye_distance_px", "sharpness", "spread", "refits", "yaw", "pitch")
# Regional figures whose sign names a side (left minus right): a mirror image flips them.
UPPER_FACE = "upper_face_involvement"


# The engine before issue 28 decided by this rule, on the index alone (no interval).
RULE_V2 = replace(
    ASYMMETRY_ONLY_RULE,
    name="asymmetry-rest-v2",
    asymmetry_positive_at=0.49,
    asymmetry_negative_below=0.39,
    pattern_peripheral_at=0.023,
    pattern_central_below=0.018,
)


def rule_for(method: str) -> tuple:
    """The rule a method's labels are given by, and whether it is judged on the interval."""
    return (RULE_V2, False) if method == "before" else (ASYMMETRY_ONLY_RULE, True)


def detector_for(method: str) -> FaceMeshDetector:
    if method in ("single", "before"):
        return FaceMeshDetector(jitters=())
    if method == "canonical":
        return FaceMeshDetector()
    if method == "canonical-1":
        return FaceMeshDetector(jitters=CANONICAL_JITTERS[:1])
    raise SystemExit(f"unknown method {method!r}")


def examine(detector: FaceMeshDetector, rgb: np.ndarray, method: str) -> dict:
    """The worker's measuring steps on one decoded photo (analysis copy): figures and decision."""
    image = analysis_copy(Image.fromarray(rgb))
    rgb = np.asarray(image)
    search = detector.find(rgb)
    m = measure(search.faces[0]) if len(search.faces) == 1 else None
    report = quality.assess(rgb, search.faces, m)
    if not report.passed:
        return {"measured": False}
    sureness = repeatability.assess(search.faces[0], m, search.fits, report.figures)
    rule, on_interval = rule_for(method)
    decision = decide(
        asymmetry_index=m.asymmetry_index,
        severity=m.severity,
        probability=None,
        rule=rule,
        upper_face_involvement=m.upper_face["involvement"],
        uncertainty=sureness.half_width if on_interval else 0.0,
    )
    figures = {name: values["difference"] for name, values in m.regions.items()}
    figures[UPPER_FACE] = m.upper_face["involvement"]
    return {
        "measured": True,
        "eye_distance_px": report.figures["eye_distance_px"],
        "sharpness": report.figures["sharpness"],
        "index": m.asymmetry_index,
        "half_width": sureness.half_width,
        "spread": sureness.spread,
        "refits": sureness.fits,
        "yaw": m.yaw,
        "pitch": m.pitch,
        "figures": figures,
        "label": decision.label,
        "flagged": decision.label != NO_PARALYSIS,
        "pattern": decision.pattern,
    }


def photos(args) -> list[tuple[str, Path]]:
    chosen = []
    if args.palda and args.palda.is_dir():
        for sub in sorted(p for p in args.palda.iterdir() if p.is_dir()):
            chosen += [(f"palda-dev/{sub.name}", path) for path in list_images(sub)]
    if args.stroke_faces and args.stroke_faces.is_dir() and args.stroke_count:
        rng = random.Random(0)
        for sub in sorted(p for p in args.stroke_faces.iterdir() if p.is_dir()):
            paths = list_images(sub)
            drawn = rng.sample(paths, min(len(paths), args.stroke_count // 2))
            chosen += [(f"stroke-faces/{sub.name}", path) for path in sorted(drawn)]
    return chosen


def summary(values: list[float]) -> str:
    if not values:
        return "      -       -       -"
    array = np.abs(np.array(values))
    return f"{np.median(array):7.3f} {np.percentile(array, 95):7.3f} {array.max():7.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--palda", type=Path, default=SHARED / "palda-dev")
    parser.add_argument("--stroke-faces", type=Path, default=SHARED / "stroke-faces")
    parser.add_argument("--stroke-count", type=int, default=60)
    parser.add_argument("--methods", default="before,single,canonical")
    parser.add_argument("--phone-photos", type=int, default=8)
    parser.add_argument("--limit", type=int, default=0, help="at most this many photos (a quick look)")
    parser.add_argument("--scale", type=float, default=1.0, help="shrink every photo first (smaller faces)")
    parser.add_argument("--blur", type=float, default=0.0, help="blur every photo first (Gaussian sd, px)")
    parser.add_argument("--dump", type=Path, help="write every comparison as JSON lines, for fitting")
    parser.add_argument("--fit", type=Path, nargs="+", help="fit repeatability.FLOOR and SLOPE on dumps and stop")
    args = parser.parse_args()
    methods = args.methods.split(",")
    if args.fit:
        fit(args.fit, methods[-1])
        return
    limit_opencv_threads(1)
    detectors = {method: detector_for(method) for method in methods}
    chosen = photos(args)
    if args.limit:
        chosen = random.Random(1).sample(chosen, min(args.limit, len(chosen)))
    if not chosen:
        raise SystemExit("no photos: point --palda / --stroke-faces at the data sets")

    # method -> variant -> list of (index change, {figure: change}, decision flip, pattern flip or None)
    changes: dict = {m: defaultdict(list) for m in methods}
    refused: dict = {m: defaultdict(int) for m in methods}
    cpu: dict = {m: [] for m in methods}
    measured_photos = dict.fromkeys(methods, 0)
    decoded, dump, names = [], [], []
    for source, path in chosen:
        names.append(path.name)
        image = open_image(path.read_bytes(), max_pixels=40_000_000, max_side=ANALYSIS_MAX_SIDE)
        rgb = np.asarray(analysis_copy(image))
        if args.scale != 1.0:
            rgb = _resize(rgb, args.scale)
        if args.blur:
            rgb = cv2.GaussianBlur(rgb, (0, 0), args.blur)
        decoded.append((source, rgb))
    for number, (source, rgb) in enumerate(tqdm(decoded, desc="photos", unit="photo")):
        for method in methods:
            started = time.process_time()
            base = examine(detectors[method], rgb, method)
            cpu[method].append((time.process_time() - started) * 1000)
            if not base["measured"]:
                continue
            measured_photos[method] += 1
            # Seeded by the photo, not by hash(): the same variants in every run (str hashes are salted).
            rng = random.Random(zlib.crc32(f"{source}/{number}".encode()))
            for name, (change, mirrored) in VARIANTS.items():
                copy = examine(detectors[method], change(rgb, random.Random(rng.random())), method)
                if not copy["measured"]:
                    refused[method][name] += 1
                    continue
                sign = -1.0 if mirrored else 1.0
                figure_changes = {
                    key: copy["figures"][key] - (value if key == UPPER_FACE else sign * value)
                    for key, value in base["figures"].items()
                }
                pattern_flip = None
                if base["flagged"] and copy["flagged"]:
                    pattern_flip = copy["pattern"] != base["pattern"]
                changes[method][name].append(
                    (
                        copy["index"] - base["index"],
                        figure_changes,
                        copy["label"] != base["label"],
                        pattern_flip,
                        copy["flagged"] != base["flagged"],
                    )
                )
                dump.append(
                    {
                        "method": method,
                        "source": source,
                        "person": person_of(Path(source).name, names[number]),
                        "variant": name,
                        **{f"base_{key}": base[key] for key in DUMPED},
                        **{f"copy_{key}": copy[key] for key in DUMPED},
                    }
                )

    print(f"\n{len(decoded)} photos ({', '.join(sorted({s for s, _ in decoded}))}), {len(VARIANTS)} variants each")
    for method in methods:
        rows = [row for name in VARIANTS for row in changes[method][name]]
        print(f"\n== {method}: {measured_photos[method]} photos measured; change of the asymmetry index")
        print(
            f"{'variant':34} {'n':>4} {'median':>7} {'p95':>7} {'max':>7}  label changed  flagged flips"
            "  pattern flips  refused"
        )
        for name in [*VARIANTS, "all variants"]:
            subset = rows if name == "all variants" else changes[method][name]
            if not subset:
                continue
            flips = sum(r[2] for r in subset)
            flagged_flips = sum(r[4] for r in subset)
            pattern_pairs = [r[3] for r in subset if r[3] is not None]
            pattern_share = sum(pattern_pairs) / max(1, len(pattern_pairs))
            refused_n = sum(refused[method].values()) if name == "all variants" else refused[method][name]
            print(
                f"{name:34} {len(subset):4d} {summary([r[0] for r in subset])}  "
                f"{flips:4d} ({flips / len(subset):5.1%})  {flagged_flips:4d} ({flagged_flips / len(subset):5.1%})  "
                f"{sum(pattern_pairs):3d}/{len(pattern_pairs):3d} ({pattern_share:5.1%})"
                f"  {refused_n:4d}"
            )
        print("  each regional figure over all variants (median, p95, max of the change; mm, degrees, fraction)")
        for key in rows[0][1] if rows else []:
            print(f"  {key:32} {summary([r[1][key] for r in rows])}")
        print(f"  CPU per photo (measuring steps, analysis copy): median {statistics.median(cpu[method]):.1f} ms")

    if args.dump:
        args.dump.write_text("".join(json.dumps(row) + "\n" for row in dump))
    if args.phone_photos:
        whole_analysis(methods, decoded[: args.phone_photos])


BANDS = ((0.0, 0.5), (0.5, 1.0), (1.0, 2.0), (2.0, float("inf")))


def coverage(rows: list[dict], floor: float, slope: float) -> list[float]:
    """Per index band (of the unchanged photo): the share of pairs whose change lies within both
    photos' combined repeatability (repeatability.beyond_noise false)."""
    saved = repeatability.FLOOR, repeatability.SLOPE
    repeatability.FLOOR, repeatability.SLOPE = floor, slope
    try:
        shares = []
        for low, high in BANDS:
            band = [r for r in rows if low <= r["base_index"] < high]
            within = [
                not repeatability.beyond_noise(
                    r["base_index"],
                    repeatability.half_width(
                        r["base_index"], eye_distance_px=r["base_eye_distance_px"], sharpness=r["base_sharpness"]
                    ),
                    r["copy_index"],
                    repeatability.half_width(
                        r["copy_index"], eye_distance_px=r["copy_eye_distance_px"], sharpness=r["copy_sharpness"]
                    ),
                )
                for r in band
            ]
            shares.append(float(np.mean(within)) if within else float("nan"))
        return shares
    finally:
        repeatability.FLOOR, repeatability.SLOPE = saved


def photo_half_width(row: dict, photo: str) -> float:
    """repeatability.half_width of one photo of a dumped pair (``photo``: "base" or "copy")."""
    return repeatability.half_width(
        row[f"{photo}_index"],
        eye_distance_px=row[f"{photo}_eye_distance_px"],
        sharpness=row[f"{photo}_sharpness"],
        fits_spread=row[f"{photo}_spread"],
    )


def statements(rows: list[dict], boot: int = 2000) -> None:
    """How often each statement about ``± h`` held on palda-dev's pairs, with the shipped constants:
    the pair statement the pages make (two photos differ by less than sqrt(h1**2 + h2**2)) and the one
    they must not make (the copy within the photo's own ± h). 95% intervals resample whole people."""
    palda = [r for r in rows if r["source"].startswith("palda-dev") and "person" in r]
    if not palda:
        return
    first = np.array([abs(r["copy_index"] - r["base_index"]) <= photo_half_width(r, "base") for r in palda])
    pair = np.array(
        [
            not repeatability.beyond_noise(
                r["base_index"], photo_half_width(r, "base"), r["copy_index"], photo_half_width(r, "copy")
            )
            for r in palda
        ]
    )
    people = np.array([r["person"] for r in palda])
    names = np.unique(people)
    rows_of = {name: np.flatnonzero(people == name) for name in names}
    rng = np.random.default_rng(0)
    draws = [np.concatenate([rows_of[n] for n in rng.choice(names, len(names))]) for _ in range(boot)]

    def share(held: np.ndarray) -> str:
        low, high = np.percentile([held[d].mean() for d in draws], [2.5, 97.5])
        return f"{held.mean():.1%} ({low:.1%}-{high:.1%})"

    mirrored = np.array([r["variant"] == "mirrored" for r in palda])
    print(
        f"  palda-dev, shipped constants, {len(palda)} pairs of {len(names)} people: within sqrt(h1^2 + h2^2) "
        f"{share(pair)}; copy within the photo's own +- h {share(first)} "
        f"({first[~mirrored].mean():.1%} without the mirrored copies)"
    )


def fit(dumps: list[Path], method: str) -> None:
    """The two constants of repeatability.half_width: the narrowest (mean width) FLOOR and SLOPE
    that keep 95% of the first dump's pairs within their combined repeatability in every index band;
    the other dumps (smaller or blurred photos) check how the width grows there."""
    sets = [[r for r in map(json.loads, path.read_text().splitlines()) if r["method"] == method] for path in dumps]
    rows = sets[0]
    best = None
    for floor in np.arange(0.005, 0.1001, 0.0025):
        for slope in np.arange(0.0, 0.1001, 0.0025):
            shares = coverage(rows, floor, slope)
            if min(s for s in shares if not np.isnan(s)) < 0.95:
                continue
            width = float(np.mean([floor + slope * r["base_index"] for r in rows]))
            if best is None or width < best[0]:
                best = (width, round(float(floor), 4), round(float(slope), 4))
    if best is None:
        raise SystemExit("no FLOOR, SLOPE in the grid covers 95% in every band")
    _, floor, slope = best
    print(f"Fitted on {dumps[0]} ({len(rows)} pairs, method {method}): FLOOR = {floor}, SLOPE = {slope}")
    statements(rows)
    print(f"  (shipped: FLOOR = {repeatability.FLOOR}, SLOPE = {repeatability.SLOPE})")
    header = " / ".join(f"{low:g}-{high:g}" for low, high in BANDS)
    for path, subset in zip(dumps, sets):
        shares = coverage(subset, floor, slope)
        shipped = coverage(subset, repeatability.FLOOR, repeatability.SLOPE)
        print(
            f"  {path.name}: {len(subset)} pairs; within the combined repeatability, by index band {header}: "
            + " / ".join(f"{s:.1%}" for s in shares)
            + "  (shipped constants: "
            + " / ".join(f"{s:.1%}" for s in shipped)
            + ")"
        )


def whole_analysis(methods: list[str], decoded: list[tuple[str, np.ndarray]]) -> None:
    """Process CPU time of the worker's whole analysis of a 12-megapixel phone photo, per method."""
    from inference.engine.classifier import ResNetClassifier
    from inference.engine.imaging import decode_upload
    from inference.engine.pipeline import Pipeline
    from inference.shipped import SHIPPED_MODEL

    classifier = ResNetClassifier(SHIPPED_MODEL.path, threads=1)
    pipelines = {m: Pipeline(detector=detector_for(m), classifier=classifier, classifier_name="bench") for m in methods}
    phones = []
    for _, rgb in decoded:
        buffer = io.BytesIO()
        Image.fromarray(rgb).resize((3024, 4032), Image.Resampling.BICUBIC).save(buffer, format="JPEG", quality=90)
        phones.append(buffer.getvalue())

    def cpu_ms(pipeline: Pipeline, raw: bytes) -> float:
        started = time.process_time()
        clean = decode_upload(raw, max_bytes=10**9, max_pixels=10**9)
        pipeline.analyze_bytes(clean.data)
        return (time.process_time() - started) * 1000

    for pipeline in pipelines.values():
        cpu_ms(pipeline, phones[0])  # warm: graphs loaded, runtimes compiled
    times: dict = {m: [] for m in methods}
    for raw in phones:
        for method, pipeline in pipelines.items():
            times[method].append(cpu_ms(pipeline, raw))
    print(f"\nWhole analysis per phone photo (3024 x 4032 JPEG, {len(phones)} photos, classifier on), process CPU:")
    baseline = statistics.median(times[methods[0]])
    for method in methods:
        median = statistics.median(times[method])
        print(f"  {method:14} median {median:7.1f} ms   {median / baseline:5.2f}x {methods[0]}")


if __name__ == "__main__":
    main()
