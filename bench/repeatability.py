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
    sureness = repeatability.assess(search.faces[0], m, search.fits, report.figures, refits_tried=detector.refits)
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
    parser.add_argument("--fit", type=Path, nargs="+", help="fit repeatability's constants on dumps and stop")
    parser.add_argument("--check", type=Path, nargs="*", default=[], help="with --fit: dumps only checked")
    args = parser.parse_args()
    methods = args.methods.split(",")
    if args.fit:
        fit(args.fit, args.check, methods[-1])
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
# The grid --fit searches: FLOOR, SPREAD_GAIN, POSE_GAIN (repeatability.half_width), and NO_REFIT.
GRID = (np.arange(0.02, 0.1201, 0.0025), np.arange(0.0, 2.001, 0.1), np.arange(0.0, 0.601, 0.05))
NO_REFIT_GRID = np.arange(1.0, 4.001, 0.05)


def photo_half_width(row: dict, photo: str) -> float:
    """repeatability.half_width of one photo of a dumped pair (``photo``: "base" or "copy")."""
    return repeatability.half_width(
        eye_distance_px=row[f"{photo}_eye_distance_px"],
        sharpness=row[f"{photo}_sharpness"],
        fits_spread=row[f"{photo}_spread"],
        yaw=abs(row[f"{photo}_yaw"]),
        refitted=row[f"{photo}_refits"] > 0,
    )


class Pairs:
    """Dumped pairs as arrays, for the grid: each photo's terms of repeatability.half_width (the
    resolution and sharpness factor taken from half_width itself, with the other terms set to 1 and 0)."""

    def __init__(self, rows: list[dict]):
        self.rows = rows
        self.change = np.array([abs(r["copy_index"] - r["base_index"]) for r in rows])
        self.people = np.array([r.get("person", r["source"]) for r in rows])
        self.palda = np.array([r["source"].startswith("palda-dev") for r in rows])
        self.terms = {photo: self._terms(photo) for photo in ("base", "copy")}
        base = self.terms["base"]
        self.bands = [(base["index"] >= low) & (base["index"] < high) for low, high in BANDS]
        for key in ("spread", "yaw"):  # terciles of the photo's own evidence
            low, high = np.quantile(base[key], [1 / 3, 2 / 3])
            self.bands += [base[key] < low, (base[key] >= low) & (base[key] < high), base[key] >= high]

    def _terms(self, photo: str) -> dict:
        saved = repeatability.FLOOR, repeatability.NO_REFIT
        repeatability.FLOOR, repeatability.NO_REFIT = 1.0, 1.0
        try:
            factor = [
                repeatability.half_width(
                    eye_distance_px=r[f"{photo}_eye_distance_px"], sharpness=r[f"{photo}_sharpness"]
                )
                for r in self.rows
            ]
        finally:
            repeatability.FLOOR, repeatability.NO_REFIT = saved
        return {
            "factor": np.array(factor),
            "index": np.array([r[f"{photo}_index"] for r in self.rows]),
            "spread": np.array([r[f"{photo}_spread"] for r in self.rows]),
            "yaw": np.abs([r[f"{photo}_yaw"] for r in self.rows]),
            "refitted": np.array([r[f"{photo}_refits"] > 0 for r in self.rows]),
        }

    def widths(self, photo: str, floor: float, gain: float, pose: float, no_refit: float) -> np.ndarray:
        """repeatability.half_width's form, vectorised for the grid (checked against it: ``within``)."""
        t = self.terms[photo]
        refitted = np.sqrt(floor**2 + (gain * t["spread"]) ** 2 + (pose * t["yaw"]) ** 2)
        alone = no_refit * np.sqrt(floor**2 + (pose * t["yaw"]) ** 2)
        return np.where(t["refitted"], refitted, alone) * t["factor"]

    def covered(self, *constants: float) -> np.ndarray:
        return self.change <= np.hypot(self.widths("base", *constants), self.widths("copy", *constants))

    def worst_band(self, covered: np.ndarray, bands=None) -> float:
        return min(covered[band].mean() for band in (bands or self.bands) if band.sum() >= 20)


def grid_fit(pairs: Pairs, mask: np.ndarray | None = None) -> tuple[float, float, float]:
    """The narrowest (mean width) FLOOR, SPREAD_GAIN, POSE_GAIN under which 95% of the pairs lie within
    their combined repeatability in every band of index, refit spread and yaw."""
    mask = np.ones(len(pairs.rows), bool) if mask is None else mask
    bands = [band & mask for band in pairs.bands]
    best = None
    for floor in GRID[0]:
        for gain in GRID[1]:
            for pose in GRID[2]:
                constants = (float(floor), float(gain), float(pose), 1.0)
                if pairs.worst_band(pairs.covered(*constants), bands) < 0.95:
                    continue
                width = float(pairs.widths("base", *constants)[mask].mean())
                if best is None or width < best[0]:
                    best = (width, constants[:3])
    if best is None:
        raise SystemExit("no FLOOR, SPREAD_GAIN, POSE_GAIN in the grid covers 95% in every band")
    return tuple(round(c, 4) for c in best[1])


def fit_no_refit(pairs: Pairs, constants: tuple) -> float:
    """The smallest NO_REFIT under which 95% of single-fit pairs (no refits) lie within their combined
    repeatability in every index band."""
    for factor in NO_REFIT_GRID:
        if pairs.worst_band(pairs.covered(*constants, float(factor)), pairs.bands[: len(BANDS)]) >= 0.95:
            return round(float(factor), 2)
    raise SystemExit("no NO_REFIT in the grid covers the single-fit pairs")


def people_interval(held: np.ndarray, people: np.ndarray, boot: int = 2000) -> tuple[float, float]:
    """95% interval of a share of pairs, resampling whole people."""
    names = np.unique(people)
    rows_of = {name: np.flatnonzero(people == name) for name in names}
    rng = np.random.default_rng(0)
    shares = [held[np.concatenate([rows_of[n] for n in rng.choice(names, len(names))])].mean() for _ in range(boot)]
    low, high = np.percentile(shares, [2.5, 97.5])
    return float(low), float(high)


def share(held: np.ndarray, people: np.ndarray) -> str:
    low, high = people_interval(held, people)
    return f"{held.mean():.1%} ({low:.1%}-{high:.1%})"


def statements(pairs: Pairs) -> None:
    """How often each statement about ``± h`` held on palda-dev's pairs, with the shipped constants
    (repeatability.half_width itself): the pair statement the pages make (two photos differ by less than
    sqrt(h1**2 + h2**2)) and the one they must not make (the copy within the photo's own ± h)."""
    palda = [r for r in pairs.rows if r["source"].startswith("palda-dev")]
    if not palda:
        return
    people = np.array([r.get("person", r["source"]) for r in palda])
    first = np.array([abs(r["copy_index"] - r["base_index"]) <= photo_half_width(r, "base") for r in palda])
    within = np.array(
        [
            not repeatability.beyond_noise(
                r["base_index"], photo_half_width(r, "base"), r["copy_index"], photo_half_width(r, "copy")
            )
            for r in palda
        ]
    )
    print(
        f"  palda-dev, shipped constants, {len(palda)} pairs of {len(set(people))} people: within sqrt(h1^2 + h2^2) "
        f"{share(within, people)}; the copy within the photo's own +- h {share(first, people)}"
    )


def read_dump(path: Path, method: str) -> list[dict]:
    """A dump's pairs of ``method``, without the mirrored copies: a lossless mirror changes nothing by
    construction (the mirror-consistent mesh), so it says nothing of a second photo's noise and would
    only dilute the share of pairs that must lie within."""
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return [r for r in rows if r["method"] == method and r["variant"] != "mirrored"]


def fit(dumps: list[Path], checks: list[Path], method: str, folds: int = 5) -> None:
    """The constants of repeatability.half_width, fitted on ``dumps`` (photos as they are, and smaller):
    FLOOR, SPREAD_GAIN and POSE_GAIN on ``method``'s pairs, NO_REFIT on their single-fit pairs; then the
    coverage held out, by person (each fold's pairs judged by constants fitted without its people), and
    on ``checks`` (copies the fit never saw: blurred photos)."""
    pairs = Pairs([r for path in dumps for r in read_dump(path, method)])
    constants = grid_fit(pairs)
    single = [r for path in dumps for r in read_dump(path, "single")]
    no_refit = fit_no_refit(Pairs(single), constants) if single else repeatability.NO_REFIT
    names = ", ".join(path.name for path in dumps)
    print(
        f"Fitted on {names} ({len(pairs.rows)} pairs, method {method}, mirrored copies left out): "
        f"FLOOR = {constants[0]}, SPREAD_GAIN = {constants[1]}, POSE_GAIN = {constants[2]}; "
        f"NO_REFIT = {no_refit} ({len(single)} single-fit pairs)"
    )
    print(
        f"  (shipped: FLOOR = {repeatability.FLOOR}, SPREAD_GAIN = {repeatability.SPREAD_GAIN}, "
        f"POSE_GAIN = {repeatability.POSE_GAIN}, NO_REFIT = {repeatability.NO_REFIT})"
    )
    # Held out by person: deal the people into folds, fit without each, judge its pairs.
    rng = np.random.default_rng(0)
    everyone = np.unique(pairs.people)
    fold_of = dict(zip(rng.permutation(everyone), np.arange(len(everyone)) % folds))
    fold = np.array([fold_of[p] for p in pairs.people])
    held = np.zeros(len(pairs.rows), bool)
    for k in range(folds):
        held[fold == k] = pairs.covered(*grid_fit(pairs, fold != k), no_refit)[fold == k]
    print(
        f"  held out ({folds} folds by person, constants fitted without each fold's people): within the combined "
        f"repeatability {share(held, pairs.people)} of all {len(held)} pairs; palda-dev "
        f"{share(held[pairs.palda], pairs.people[pairs.palda])}"
    )
    # The shipped constants, through repeatability.half_width itself.
    for path in [*dumps, *checks]:
        subset = Pairs(read_dump(path, method))
        within = np.array(
            [
                not repeatability.beyond_noise(
                    r["base_index"], photo_half_width(r, "base"), r["copy_index"], photo_half_width(r, "copy")
                )
                for r in subset.rows
            ]
        )
        bands = " / ".join(f"{within[band].mean():.1%}" if band.sum() else "-" for band in subset.bands)
        print(
            f"  {path.name}{' (check)' if path in checks else ''}: {len(subset.rows)} pairs, shipped constants: "
            f"{share(within, subset.people)} within; by index band 0-0.5 / 0.5-1 / 1-2 / >= 2, spread terciles, "
            f"yaw terciles: {bands}; mean +- h {np.mean([photo_half_width(r, 'base') for r in subset.rows]):.3f}"
        )
    statements(Pairs(read_dump(dumps[0], method)))


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
