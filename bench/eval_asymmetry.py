"""Benchmark of the training-free facial asymmetry index on the stroke-faces photos.

    PYTHONPATH=. .venv/bin/python bench/eval_asymmetry.py --per-class 400 --seed 0 --out /tmp/asym-eval
    PYTHONPATH=. .venv/bin/python bench/eval_asymmetry.py --per-class 0 --seed 0 --rule 1.0 0.85 --out /tmp/asym-all

What it does, one process on one core:

1. Samples ``--per-class`` photos from each class folder (``paralysis/`` is the positive class,
   ``no_paralysis/`` the negative one; ``--per-class 0`` takes every photo), decodes them the way
   the portal does (PIL, EXIF orientation applied, RGB) and runs ``FaceMeshDetector.find``. The
   landmarks (largest face when there are several), the pass that found them and a perceptual hash
   of the aligned face are cached in an ``.npz`` outside the repository (``--cache``), so reruns
   with other settings cost seconds. Photos are only read, never copied.
2. Groups near-duplicates with ``inference/engine/duplicates.py`` (the method and why it is needed
   are described there; training uses the same grouping): the dataset is heavily augmented (about
   40-60 rotated, stretched, cropped and mirrored copies of each photo), so photos are linked when
   the pHash of the aligned face is within ``--dup-bits`` bits or the colour layout of a wider
   aligned crop is within ``--dup-colour`` RMS Delta E, mirrored copies included, and chains of
   links form one group. Different photos of the same person are not recognised (no face identity
   model), which is the main remaining leak.
3. Splits the *groups* (not the photos) at random, per class, into a fitting part and a held-out
   part (``--holdout``). Anything fitted (the decision thresholds, the reference logistic refit) is
   fitted on the fitting groups only, and every figure called "held-out" is computed on the other
   groups.
4. Prints and writes (``--out``: ``eval_asymmetry.json`` and ``roc.png``): faces found per class and
   which detector pass found them, ROC AUC of each regional |difference| and of the composite
   ``asymmetry_index`` (all photos and held-out groups, with a group bootstrap interval), the
   sensitivity at 90% specificity, the recommended asymmetry-only decision thresholds
   (``positive_at`` at 90% specificity and ``negative_below`` at 90% sensitivity on the fitting
   groups) with their held-out sensitivity, specificity and inconclusive rate, and a reference
   non-negative logistic refit of the index weights on the fitting groups (how the constants in
   ``inference/engine/measure.py`` were obtained; see ``--per-class 0 --seed 0``).

Caveats that go with every figure: the two classes come from different sources (close-up patient
photos against press photos of public figures), near-duplicate grouping is approximate, and the
photos are not a clinical population.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import sys
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from inference.engine import duplicates  # noqa: E402
from inference.engine import measure as measure_module  # noqa: E402
from inference.engine.evaluation import (  # noqa: E402
    group_bootstrap_auc,
    roc_auc,
    roc_curve,
    sensitivity_at_specificity,
    threshold_at_sensitivity,
    threshold_at_specificity,
)
from inference.engine.measure import INDEX_UNITS, INDEX_WEIGHTS, measure  # noqa: E402

CLASSES = ("paralysis", "no_paralysis")  # positive first
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}
CACHE_VERSION = 3  # 3: landmarks from the mirror-consistent mesh
LAYOUT_GRID = duplicates.LAYOUT_GRID
# The refit puts 1.0 (per region and for the index) at this percentile of the healthy photos.
HEALTHY_PERCENTILE = 90

os.environ.setdefault("GLOG_minloglevel", "2")  # MediaPipe's C++ start-up chatter
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

try:
    from tqdm import tqdm
except ImportError:  # progress bars are a nicety
    tqdm = None


# ----------------------------------------------------------------------------------------------
# Images and landmarks


def list_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def load_rgb(path: Path) -> np.ndarray:
    from PIL import Image, ImageOps

    with Image.open(path) as image:
        return np.asarray(ImageOps.exif_transpose(image).convert("RGB"))


def largest_face(faces: list[np.ndarray]) -> np.ndarray:
    return max(faces, key=measure_module.eye_distance)


def file_key(path: Path, data_root: Path) -> str:
    stat = path.stat()
    return f"{path.relative_to(data_root).as_posix()}|{stat.st_size}|{stat.st_mtime_ns}"


class LandmarkCache:
    """Landmarks and hashes per photo, in one .npz (rewritten every few dozen photos)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: dict[str, dict] = {}
        if path.exists():
            with np.load(path, allow_pickle=False) as stored:
                if int(stored["version"]) == CACHE_VERSION:
                    data = {name: stored[name] for name in stored.files}  # decompress each array once
                    for i, key in enumerate(data["keys"]):
                        self.entries[str(key)] = {
                            "points": data["points"][i].astype(np.float64),
                            "found": bool(data["found"][i]),
                            "attempt": str(data["attempts"][i]),
                            "n_faces": int(data["n_faces"][i]),
                            "hash": int(data["hashes"][i]),
                            "hash_mirror": int(data["hashes_mirror"][i]),
                            "size": tuple(int(v) for v in data["sizes"][i]),
                            "layout": data["layouts"][i],
                            "layout_mask": data["layout_masks"][i],
                            "seconds": float(data["seconds"][i]),
                        }
        self._dirty = 0

    def put(self, key: str, entry: dict) -> None:
        self.entries[key] = entry
        self._dirty += 1
        if self._dirty >= 50:
            self.save()

    def save(self) -> None:
        if not self.entries:
            return
        keys = list(self.entries)
        entries = [self.entries[k] for k in keys]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp.npz")
        np.savez_compressed(
            tmp,
            version=np.array(CACHE_VERSION),
            keys=np.array(keys),
            points=np.stack([e["points"] for e in entries]).astype(np.float32),
            found=np.array([e["found"] for e in entries]),
            attempts=np.array([e["attempt"] for e in entries]),
            n_faces=np.array([e["n_faces"] for e in entries]),
            hashes=np.array([e["hash"] for e in entries], dtype=np.uint64),
            hashes_mirror=np.array([e["hash_mirror"] for e in entries], dtype=np.uint64),
            sizes=np.array([e["size"] for e in entries]),
            layouts=np.stack([e["layout"] for e in entries]).astype(np.float32),
            layout_masks=np.stack([e["layout_mask"] for e in entries]),
            seconds=np.array([e["seconds"] for e in entries]),
        )
        os.replace(tmp, self.path)
        self._dirty = 0


def extract(paths: list[Path], data_root: Path, cache: LandmarkCache) -> list[dict]:
    detector = None
    records = []
    todo = [p for p in paths if file_key(p, data_root) not in cache.entries]
    if todo:
        print(f"Landmarks: {len(paths) - len(todo)} cached, {len(todo)} to extract", flush=True)
    iterator = tqdm(paths, desc="landmarks", unit="img") if (tqdm and todo) else paths
    for path in iterator:
        key = file_key(path, data_root)
        entry = cache.entries.get(key)
        if entry is None:
            if detector is None:
                from inference.engine.face import FaceMeshDetector

                detector = FaceMeshDetector()
            started = time.perf_counter()
            try:
                rgb = load_rgb(path)
            except Exception as error:  # an unreadable file counts as "no face", and says so
                print(f"  cannot decode {path.name}: {error}", file=sys.stderr)
                rgb = None
            entry = {
                "points": np.zeros((478, 2)),
                "found": False,
                "attempt": "undecodable",
                "n_faces": 0,
                "hash": 0,
                "hash_mirror": 0,
                "size": (0, 0),
                "seconds": 0.0,
                "layout": np.zeros((LAYOUT_GRID, LAYOUT_GRID, 3), np.float32),
                "layout_mask": np.zeros((LAYOUT_GRID, LAYOUT_GRID), bool),
            }
            if rgb is not None:
                search = detector.find(rgb)
                entry["attempt"] = search.attempt
                entry["n_faces"] = len(search.faces)
                entry["size"] = (rgb.shape[1], rgb.shape[0])
                if search.faces:
                    points = largest_face(search.faces)
                    entry.update(points=points, found=True, **duplicates.signature(rgb, points))
            entry["seconds"] = time.perf_counter() - started
            cache.put(key, entry)
        records.append({"path": path, "key": key, **entry})
    cache.save()
    return records


# ----------------------------------------------------------------------------------------------
# Decision-rule statistics (the ROC maths is in inference/engine/evaluation.py)


def rates(scores, labels, positive_at: float, negative_below: float) -> dict:
    labels = labels.astype(bool)
    positive = scores >= positive_at
    negative = scores < negative_below
    inconclusive = ~positive & ~negative
    decided = ~inconclusive
    return {
        "n": int(len(scores)),
        "sensitivity": float(positive[labels].mean()),  # called paralysis among paralysis photos
        "specificity": float(negative[~labels].mean()),  # called no_paralysis among healthy photos
        "specificity_not_called_positive": float((~positive[~labels]).mean()),
        "missed_paralysis_rate": float(negative[labels].mean()),
        "false_alarm_rate": float(positive[~labels].mean()),
        "inconclusive_rate": float(inconclusive.mean()),
        "inconclusive_rate_paralysis": float(inconclusive[labels].mean()),
        "inconclusive_rate_no_paralysis": float(inconclusive[~labels].mean()),
        "accuracy_when_decided": (
            float((positive[decided] == labels[decided]).mean()) if decided.any() else float("nan")
        ),
    }


def fit_nonnegative_logistic(
    x: np.ndarray, y: np.ndarray, l2: float = 1e-2, steps: int = 4000
) -> tuple[np.ndarray, float]:
    """Logistic regression with weights kept >= 0 (more asymmetry never lowers the index), by
    projected gradient descent with a backtracking-free fixed step on standardised inputs."""
    scale = x.std(axis=0) + 1e-9
    z = x / scale
    w = np.zeros(x.shape[1])
    b = 0.0
    lr = 0.5
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(z @ w + b)))
        grad_w = z.T @ (p - y) / len(y) + l2 * w
        grad_b = float((p - y).mean())
        w = np.maximum(w - lr * grad_w, 0.0)
        b -= lr * grad_b
    return w / scale, b


# ----------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=REPO_ROOT.parent / "shared" / "datasets" / "stroke-faces",
        help="folder with paralysis/ and no_paralysis/ (default: ../shared/datasets/stroke-faces)",
    )
    parser.add_argument("--per-class", type=int, default=400, help="photos sampled per class; 0 = all (default 400)")
    parser.add_argument("--seed", type=int, default=0, help="sampling, group split and bootstrap seed (default 0)")
    parser.add_argument(
        "--holdout", type=float, default=0.5, help="share of each class's photos, by group, held out (default 0.5)"
    )
    parser.add_argument(
        "--dup-bits",
        type=int,
        default=4,
        help="aligned-face pHash bits (of 64) within which two photos count as copies (default 4)",
    )
    parser.add_argument(
        "--dup-colour",
        type=float,
        default=16.0,
        help="aligned colour-layout distance (RMS Delta E) within which two photos count as copies (default 16)",
    )
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path("/tmp/eval_asymmetry_cache"),
        help="folder for the landmark cache, outside the repository (default /tmp/eval_asymmetry_cache)",
    )
    parser.add_argument("--out", type=Path, default=None, help="folder for eval_asymmetry.json and roc.png")
    parser.add_argument(
        "--rule",
        type=float,
        nargs=2,
        metavar=("POSITIVE_AT", "NEGATIVE_BELOW"),
        default=None,
        help="also judge these thresholds (e.g. the ones in inference/engine/decide.py) on both parts",
    )
    parser.add_argument(
        "--bootstrap", type=int, default=500, help="group bootstrap resamples for AUC intervals (0 = none)"
    )
    args = parser.parse_args(argv)

    data_root = args.data.resolve()
    cache_dir = args.cache.resolve()
    for folder, what in ((cache_dir, "--cache"), (args.out.resolve() if args.out else None, "--out")):
        if folder is not None and (folder == REPO_ROOT or REPO_ROOT in folder.parents):
            parser.error(f"{what} must be outside the repository (it would hold data derived from the photos)")
    if not all((data_root / c).is_dir() for c in CLASSES):
        parser.error(f"{data_root} must contain {' and '.join(CLASSES)}/")

    rng = random.Random(args.seed)
    paths, labels = [], []
    for label, name in zip((1, 0), CLASSES):
        files = list_images(data_root / name)
        if args.per_class and args.per_class < len(files):
            files = sorted(rng.sample(files, args.per_class))
        paths += files
        labels += [label] * len(files)
    labels_all = np.array(labels)

    cache_file = cache_dir / f"landmarks-{hashlib.sha1(str(data_root).encode()).hexdigest()[:10]}.npz"
    records = extract(paths, data_root, LandmarkCache(cache_file))

    # --- detector coverage
    detection = {}
    for label, name in zip((1, 0), CLASSES):
        rows = [r for r, truth in zip(records, labels_all) if truth == label]
        attempts: dict[str, int] = {}
        for r in rows:
            # "plain, levelled +25": the detector refitted a tilted face upright; the angle varies.
            attempt = re.sub(r"levelled [+-]?\d+", "levelled", r["attempt"])
            attempts[attempt] = attempts.get(attempt, 0) + 1
        detection[name] = {
            "photos": len(rows),
            "faces_found": sum(r["found"] for r in rows),
            "no_face": sum(not r["found"] for r in rows),
            "by_pass": dict(sorted(attempts.items(), key=lambda kv: -kv[1])),
            "several_faces": sum(r["n_faces"] > 1 for r in rows),
            "median_seconds": float(np.median([r["seconds"] for r in rows])) if rows else 0.0,
        }

    found = np.array([r["found"] for r in records])
    kept = [r for r, f in zip(records, found) if f]
    y = labels_all[found]
    results = [measure(r["points"]) for r in kept]
    index = np.array([m.asymmetry_index for m in results])
    region_names = list(results[0].regions)
    features = {name: np.array([abs(m.regions[name]["difference"]) for m in results]) for name in region_names}

    # --- near-duplicate groups and the split
    groups = duplicates.duplicate_groups(kept, max_bits=args.dup_bits, max_colour=args.dup_colour)
    sizes = np.bincount(groups)
    mixed = sum(len(set(y[groups == g])) > 1 for g in np.unique(groups))
    held = duplicates.split_groups(groups, y, {"held_out": args.holdout}, rest="fit", seed=args.seed) == "held_out"
    fit = ~held

    # --- AUCs
    def auc_row(scores: np.ndarray) -> dict:
        row = {
            "all": roc_auc(y, scores),
            "fit": roc_auc(y[fit], scores[fit]),
            "held_out": roc_auc(y[held], scores[held]),
        }
        if args.bootstrap:
            row["held_out_ci95"] = group_bootstrap_auc(y[held], scores[held], groups[held], args.bootstrap, args.seed)
        return row

    aucs = {name: auc_row(values) for name, values in features.items()}
    aucs["asymmetry_index"] = auc_row(index)

    # --- thresholds fitted on the fitting groups, judged on the held-out ones
    positive_at = threshold_at_specificity(y[fit], index[fit], 0.90)
    negative_below = threshold_at_sensitivity(y[fit], index[fit], 0.90)
    if negative_below > positive_at:  # the two would overlap: no inconclusive band, one cut
        negative_below = positive_at
    sens_at_90_spec = {
        "threshold_from_fit": positive_at,
        "held_out_sensitivity": float((index[held & (y == 1)] >= positive_at).mean()),
        "held_out_specificity": float((index[held & (y == 0)] < positive_at).mean()),
        "held_out_oracle_sensitivity": sensitivity_at_specificity(y[held], index[held], 0.90),
    }
    decision = {
        "positive_at": round(positive_at, 3),
        "negative_below": round(negative_below, 3),
        "fit": rates(index[fit], y[fit], positive_at, negative_below),
        "held_out": rates(index[held], y[held], positive_at, negative_below),
    }
    if args.rule:
        given_positive, given_negative = args.rule
        decision["given_rule"] = {
            "positive_at": given_positive,
            "negative_below": given_negative,
            "fit": rates(index[fit], y[fit], given_positive, given_negative),
            "held_out": rates(index[held], y[held], given_positive, given_negative),
        }

    # --- refit of the constants on the fitting groups, in measure.py's form: units = each region's
    # healthy 90th percentile, weights = non-negative logistic on |difference| / unit, rescaled so
    # the index's healthy 90th percentile is 1.0. Once on the regions the index uses now, once on all.
    healthy_fit = fit & (y == 0)
    units = {n: float(np.percentile(features[n][healthy_fit], HEALTHY_PERCENTILE)) or 1.0 for n in region_names}

    def refit_constants(names: list[str]) -> dict:
        x = np.stack([features[n] / units[n] for n in names], axis=1)
        w, _ = fit_nonnegative_logistic(x[fit], y[fit].astype(float))
        score = x @ w
        scale = float(np.percentile(score[healthy_fit], HEALTHY_PERCENTILE)) or 1.0
        return {
            "INDEX_UNITS": {n: round(units[n], 2) for n in names},
            "INDEX_WEIGHTS": {n: round(float(v / scale), 3) for n, v in zip(names, w)},
            "auc_fit": roc_auc(y[fit], score[fit]),
            "auc_held_out": roc_auc(y[held], score[held]),
        }

    used = [n for n in INDEX_WEIGHTS if INDEX_WEIGHTS[n] > 0]
    refit = {
        "note": "index = sum(weight * |difference| / unit); unit = healthy 90th percentile of the region, weights"
        " rescaled so the index's healthy 90th percentile is 1.0; all fitted on the fitting groups only",
        "regions_in_index": refit_constants(used),
        "all_regions": refit_constants(region_names),
        "paralysis_index_tertiles_above_1_fit": [
            round(float(v), 2) for v in np.percentile(index[fit & (y == 1) & (index >= 1.0)], [100 / 3, 200 / 3])
        ]
        if np.any(fit & (y == 1) & (index >= 1.0))
        else [],
    }

    healthy_index = index[y == 0]
    distribution = {
        name: {q: round(float(np.percentile(index[y == label], q)), 3) for q in (5, 25, 50, 75, 90, 95, 99)}
        for label, name in zip((1, 0), CLASSES)
    }
    severity_counts = {
        name: {
            band: int(sum(m.severity == band and truth == label for m, truth in zip(results, y)))
            for _, band in measure_module.SEVERITY_BANDS
        }
        for label, name in zip((1, 0), CLASSES)
    }

    report = {
        "command": " ".join([Path(sys.argv[0]).name] + (argv if argv is not None else sys.argv[1:])),
        "data": str(data_root),
        "per_class": args.per_class,
        "seed": args.seed,
        "detection": detection,
        "groups": {
            "dup_bits": args.dup_bits,
            "dup_colour": args.dup_colour,
            "photos_with_face": int(len(kept)),
            "groups": int(len(sizes)),
            "groups_per_class": {name: int(len(np.unique(groups[y == label]))) for label, name in zip((1, 0), CLASSES)},
            "largest_group": int(sizes.max()),
            "singletons": int((sizes == 1).sum()),
            "mixed_class_groups": int(mixed),
            "fit_photos": {name: int((fit & (y == label)).sum()) for label, name in zip((1, 0), CLASSES)},
            "held_out_photos": {name: int((held & (y == label)).sum()) for label, name in zip((1, 0), CLASSES)},
            "fit_groups": {
                name: int(len(np.unique(groups[fit & (y == label)]))) for label, name in zip((1, 0), CLASSES)
            },
            "held_out_groups": {
                name: int(len(np.unique(groups[held & (y == label)]))) for label, name in zip((1, 0), CLASSES)
            },
        },
        "index_constants": {
            "INDEX_UNITS": INDEX_UNITS,
            "INDEX_WEIGHTS": INDEX_WEIGHTS,
            "SEVERITY_BANDS": measure_module.SEVERITY_BANDS,
        },
        "auc": aucs,
        "sensitivity_at_90_specificity": sens_at_90_spec,
        "decision_thresholds": decision,
        "index_distribution": distribution,
        "severity_counts": severity_counts,
        "healthy_share_below_1": float((healthy_index < 1.0).mean()),
        "reference_refit": refit,
    }

    print_report(report)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "eval_asymmetry.json").write_text(json.dumps(report, indent=2, default=float))
        plotted = plot_roc(args.out / "roc.png", index, features, y, held, positive_at, negative_below)
        plot_note = f" and {args.out / 'roc.png'}" if plotted else " (no matplotlib: no plot)"
        print(f"\nWrote {args.out / 'eval_asymmetry.json'}{plot_note}")
    return 0


def print_report(report: dict) -> None:
    print("\nFace detection (largest face kept when several)")
    for name, d in report["detection"].items():
        passes = ", ".join(f"{k} {v}" for k, v in d["by_pass"].items())
        print(
            f"  {name:13s} {d['faces_found']:4d}/{d['photos']:<4d} faces found, {d['no_face']} without  [{passes}]"
            f"  several faces: {d['several_faces']}, median {1000 * d['median_seconds']:.0f} ms"
        )
    g = report["groups"]
    print(
        f"\nNear-duplicate groups (aligned face: pHash <= {g['dup_bits']} bits or colour layout"
        f" <= {g['dup_colour']} RMS Delta E, mirrored copies included): {g['groups']} groups for"
        f" {g['photos_with_face']} photos ({g['groups_per_class']}), largest {g['largest_group']},"
        f" {g['singletons']} singletons, {g['mixed_class_groups']} mixing both classes"
    )
    print(
        f"  fitting photos {g['fit_photos']} in groups {g['fit_groups']}; "
        f"held-out photos {g['held_out_photos']} in groups {g['held_out_groups']}"
    )
    print(
        "\nROC AUC, paralysis vs no_paralysis (|left - right| per region; held-out = other groups, 95% group bootstrap)"
    )
    print(f"  {'feature':22s} {'all':>6s} {'fit':>6s} {'held-out':>9s}  ci95")
    for name, row in report["auc"].items():
        ci = row.get("held_out_ci95")
        ci_text = f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""
        print(f"  {name:22s} {row['all']:6.3f} {row['fit']:6.3f} {row['held_out']:9.3f}  {ci_text}")
    s = report["sensitivity_at_90_specificity"]
    print(
        f"\nSensitivity at 90% specificity (threshold {s['threshold_from_fit']:.3f} from the fitting groups): "
        f"held-out sensitivity {s['held_out_sensitivity']:.3f}, specificity {s['held_out_specificity']:.3f} "
        f"(threshold chosen on held-out itself: {s['held_out_oracle_sensitivity']:.3f})"
    )
    d = report["decision_thresholds"]
    print(
        f"\nAsymmetry-only rule: positive_at={d['positive_at']} (90% specificity on fit), "
        f"negative_below={d['negative_below']} (90% sensitivity on fit)"
    )
    print(
        "  (sensitivity: paralysis photos called paralysis; specificity: healthy photos called no_paralysis;"
        " 'not called paralysis' counts inconclusive healthy photos as right)"
    )

    def print_rates(parts: dict) -> None:
        for part in ("fit", "held_out"):
            r = parts[part]
            print(
                f"  {part:8s} n={r['n']:4d} sensitivity {r['sensitivity']:.3f} specificity {r['specificity']:.3f} "
                f"(not called paralysis {r['specificity_not_called_positive']:.3f}) "
                f"missed paralysis {r['missed_paralysis_rate']:.3f} "
                f"inconclusive {r['inconclusive_rate']:.3f} (paralysis {r['inconclusive_rate_paralysis']:.3f}, "
                f"healthy {r['inconclusive_rate_no_paralysis']:.3f}), "
                f"accuracy when decided {r['accuracy_when_decided']:.3f}"
            )

    print_rates(d)
    if "given_rule" in d:
        given = d["given_rule"]
        print(f"Given rule: positive_at={given['positive_at']}, negative_below={given['negative_below']}")
        print_rates(d["given_rule"])
    print("\nIndex distribution (percentiles)")
    for name, q in report["index_distribution"].items():
        print(f"  {name:13s} " + "  ".join(f"p{k}={v}" for k, v in q.items()))
    print(
        f"  healthy photos below 1.0: {report['healthy_share_below_1']:.3f}; "
        f"severity bands: {report['severity_counts']}"
    )
    r = report["reference_refit"]
    for part, title in (("regions_in_index", "regions in the index"), ("all_regions", "all regions")):
        fit_ = r[part]
        print(
            f"\nRefit on the fitting groups, {title}: held-out AUC {fit_['auc_held_out']:.3f}"
            f" (fit {fit_['auc_fit']:.3f})"
        )
        print(f"  INDEX_UNITS   {fit_['INDEX_UNITS']}")
        print(f"  INDEX_WEIGHTS {fit_['INDEX_WEIGHTS']}")
    print(f"  paralysis index tertiles above 1.0 (fit): {r['paralysis_index_tertiles_above_1_fit']}")
    print(
        "\nCaveats: classes come from different sources (patient close-ups vs press photos); near-duplicate"
        " grouping is approximate (different photos of one person are not linked); not a clinical population."
    )


def plot_roc(path: Path, index, features, y, held, positive_at, negative_below) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(6.5, 6))
    yh = y[held]
    ranked = sorted(features, key=lambda n: -roc_auc(yh, features[n][held]))
    for name in ranked[:4]:
        fpr, tpr, _ = roc_curve(yh, features[name][held])
        ax.plot(fpr, tpr, lw=1, alpha=0.7, label=f"{name} (AUC {roc_auc(yh, features[name][held]):.3f})")
    fpr, tpr, _ = roc_curve(yh, index[held])
    ax.plot(fpr, tpr, lw=2.5, color="black", label=f"asymmetry_index (AUC {roc_auc(yh, index[held]):.3f})")
    for threshold, marker, label in ((positive_at, "o", "positive_at"), (negative_below, "s", "negative_below")):
        sens = float((index[held][yh == 1] >= threshold).mean())
        fp = float((index[held][yh == 0] >= threshold).mean())
        ax.plot([fp], [sens], marker=marker, color="crimson", ms=8, ls="none", label=f"{label}={threshold:.2f}")
    ax.plot([0, 1], [0, 1], ls=":", color="grey")
    ax.set_xlabel("1 - specificity (no_paralysis called paralysis)")
    ax.set_ylabel("sensitivity")
    ax.set_title(f"Held-out groups: {int((yh == 1).sum())} paralysis, {int((yh == 0).sum())} no_paralysis")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


if __name__ == "__main__":
    raise SystemExit(main())
