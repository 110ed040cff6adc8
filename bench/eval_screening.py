"""The screening figures of the model card, from both data sets, in one command.

    PYTHONPATH=. .venv/bin/python bench/eval_screening.py \
        --palda ../shared/datasets/palda-dev --stroke-faces ../shared/datasets/stroke-faces --out var/eval

What it does (landmarks are found once, exactly as the worker finds them, and cached under
``--cache``; photos are only read, never copied):

1. Every photo goes through the worker's steps: decode, the mirror-consistent mesh, the quality
   gate (a refused photo counts as missed, whatever its class), the measurements and the rule.
2. Fits the rule for faces at rest on every photo of palda-dev (inference/engine/calibration.py:
   one spread from the healthy faces, one pattern threshold from the flagged palsy faces) and says
   whether the constants in inference/engine/decide.py still match.
3. Cross-fits the same procedure: palda-dev's people are dealt into ``--folds`` folds per class
   (the numbered photos of one patient stay together), the constants are fitted without one fold
   and applied to it, and that is repeated ``--repeats`` times with other deals. These out-of-fold
   figures are what to expect on photos the constants have not seen; the figures of the shipped
   rule on palda-dev are in-sample.
4. Applies the shipped rule to stroke-faces (near-duplicate groups as in bench/eval_asymmetry.py):
   its healthy photos are press photos with expressions, not faces at rest, so its specificity is
   reported, not tuned away.

Every rate comes with a 95% interval from resampling whole people (palda-dev) or near-duplicate
groups (stroke-faces). "Flagged" means sent to a clinician: positive (an alert) or inconclusive (a
review item).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "bench"))

from screening_cache import load  # noqa: E402

from inference.engine import calibration, duplicates, quality, repeatability  # noqa: E402
from inference.engine.decide import (  # noqa: E402
    ASYMMETRY_ONLY_RULE,
    CENTRAL,
    INCONCLUSIVE,
    NO_PARALYSIS,
    PARALYSIS,
    PERIPHERAL,
    UNDETERMINED,
    decide,
)
from inference.engine.evaluation import (  # noqa: E402
    deal_folds,
    group_bootstrap_auc,
    group_bootstrap_rate,
    person_of,
    roc_auc,
)
from inference.engine.measure import measure  # noqa: E402

PALSY = ("central", "peripheral")
PATTERNS = (CENTRAL, PERIPHERAL, UNDETERMINED)


def examine(record: dict) -> dict:
    """The rule-independent part of the worker's analysis of one cached photo."""
    if record["points"] is None or record["n_faces"] != 1:
        reason = record["error"] or (quality.NO_FACE if record["n_faces"] == 0 else quality.SEVERAL_FACES)
        return {"measured": False, "reason": reason, "warnings": []}
    m = measure(record["points"])
    report = quality.judge_face(record["points"], record["figures"], m)
    sureness = repeatability.assess(record["points"], m, record["fits"], report.figures)
    one_way = {name: measure(record[name]).asymmetry_index for name in ("direct", "mirror") if record[name] is not None}
    return {
        "measured": report.passed,
        "reason": report.reason,
        "warnings": [w["code"] for w in report.warnings + sureness.warnings],
        "half_width": sureness.half_width,
        "index": m.asymmetry_index,
        "lean": m.lean,
        "severity": m.severity,
        "involvement": m.upper_face["involvement"],
        "one_way": one_way,
    }


def apply(rows: list[dict], rule) -> tuple[np.ndarray, np.ndarray]:
    """Label and pattern per photo ("refused" for a photo the gate refused)."""
    labels, patterns = [], []
    for row in rows:
        if not row["measured"]:
            labels.append("refused")
            patterns.append("")
            continue
        decision = decide(
            asymmetry_index=row["index"],
            severity=row["severity"],
            probability=None,
            rule=rule,
            upper_face_involvement=row["involvement"],
            uncertainty=row["half_width"],
        )
        labels.append(decision.label)
        patterns.append(decision.pattern)
    return np.array(labels), np.array(patterns)


def palda_person(record: dict) -> str:
    return person_of(record["class"], record["name"])


def fit(rows: list[dict], classes: np.ndarray, index: np.ndarray):
    """The shipped procedure on the photos ``index`` selects."""
    healthy = [i for i in index if classes[i] == "healthy" and rows[i]["measured"]]
    rule = calibration.fit_rest_rule(np.array([rows[i]["lean"] for i in healthy]), interval_rule=True)
    labels, _ = apply([rows[i] for i in index], rule)
    flagged = [i for i, label in zip(index, labels) if classes[i] in PALSY and label in (PARALYSIS, INCONCLUSIVE)]
    threshold = calibration.fit_pattern_threshold(
        np.array([rows[i]["involvement"] for i in flagged]), np.array([classes[i] == "peripheral" for i in flagged])
    )
    return calibration.with_pattern_threshold(rule, threshold)


def rates(labels, patterns, classes, groups, n_boot: int) -> dict:
    """Per class: flagged / positive / inconclusive / negative / refused, with intervals."""
    table = {}
    for cls in np.unique(classes):
        members = classes == cls
        outcome = {
            "flagged": np.isin(labels[members], [PARALYSIS, INCONCLUSIVE]),
            "positive": labels[members] == PARALYSIS,
            "inconclusive": labels[members] == INCONCLUSIVE,
            "negative": labels[members] == NO_PARALYSIS,
            "refused": labels[members] == "refused",
        }
        table[str(cls)] = {
            "n": int(members.sum()),
            **{
                name: {"rate": float(hits.mean()), "ci95": group_bootstrap_rate(hits, groups[members], n_boot, seed=1)}
                for name, hits in outcome.items()
            },
        }
    return table


def pattern_table(labels, patterns, classes, groups, n_boot: int) -> dict:
    flagged = np.isin(labels, [PARALYSIS, INCONCLUSIVE]) & np.isin(classes, PALSY)
    matrix = {cls: {p: int(np.sum(flagged & (classes == cls) & (patterns == p))) for p in PATTERNS} for cls in PALSY}
    right = (patterns == classes)[flagged]
    return {
        "confusion": matrix,
        "n": int(flagged.sum()),
        "right": float(right.mean()) if right.size else float("nan"),
        "right_ci95": group_bootstrap_rate(right, groups[flagged], n_boot, seed=2) if right.size else None,
        "central_recall": float(np.mean(patterns[flagged & (classes == "central")] == CENTRAL)),
        "peripheral_recall": float(np.mean(patterns[flagged & (classes == "peripheral")] == PERIPHERAL)),
    }


def auc_table(rows, positive: np.ndarray, groups: np.ndarray, n_boot: int, subsets: dict) -> dict:
    table = {}
    measured = np.array([r["measured"] for r in rows])
    index = np.array([r.get("index", np.nan) for r in rows])
    direct = np.array([r.get("one_way", {}).get("direct", np.nan) for r in rows])
    for name, subset in subsets.items():
        keep = subset & measured
        table[name] = {
            "n": int(keep.sum()),
            "auc": roc_auc(positive[keep], index[keep]),
            "ci95": group_bootstrap_auc(positive[keep], index[keep], groups[keep], n_boot, seed=3),
            "auc_one_way_mesh": roc_auc(positive[keep], direct[keep]),
        }
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--palda", type=Path, required=True)
    parser.add_argument("--stroke-faces", type=Path)
    parser.add_argument("--cache", type=Path, default=REPO_ROOT / "var" / "screening")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--boot", type=int, default=2000)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)

    report: dict = {"shipped_rule": asdict(ASYMMETRY_ONLY_RULE)}
    records = load(args.palda, args.cache)
    rows = [examine(r) for r in records]
    classes = np.array([r["class"] for r in records])
    groups = np.array([palda_person(r) for r in records])
    everything = np.arange(len(rows))

    fitted = fit(rows, classes, everything)
    report["fitted_on_all_of_palda"] = asdict(fitted)
    keys = (
        "asymmetry_negative_below",
        "asymmetry_positive_at",
        "healthy_below",
        "pattern_central_below",
        "pattern_peripheral_at",
    )
    report["shipped_matches_fit"] = all(abs(getattr(fitted, k) - getattr(ASYMMETRY_ONLY_RULE, k)) < 1e-9 for k in keys)

    report["palda_refusals"] = dict(Counter(r["reason"] for r in rows if not r["measured"]))
    report["palda_warnings"] = dict(Counter(w for r in rows for w in r["warnings"]))
    labels, patterns = apply(rows, ASYMMETRY_ONLY_RULE)
    report["palda_shipped"] = rates(labels, patterns, classes, groups, args.boot)
    report["palda_shipped_pattern"] = pattern_table(labels, patterns, classes, groups, args.boot)
    palsy = np.isin(classes, PALSY)
    report["palda_auc"] = auc_table(
        rows,
        palsy,
        groups,
        args.boot,
        {
            "palsy vs healthy": np.ones(len(rows), bool),
            "central vs healthy": classes != "peripheral",
            "peripheral vs healthy": classes != "central",
        },
    )
    one_way = [
        abs(r["one_way"]["direct"] - r["one_way"]["mirror"]) for r in rows if r["measured"] and len(r["one_way"]) == 2
    ]
    report["one_way_mirror_gap"] = {"median": float(np.median(one_way)), "max": float(np.max(one_way))}

    crossfit = []
    for repeat in range(args.repeats):
        fold = deal_folds(groups, classes, args.folds, seed=repeat)
        out_labels = np.empty(len(rows), dtype=object)
        out_patterns = np.empty(len(rows), dtype=object)
        rules = []
        for k in range(args.folds):
            rule = fit(rows, classes, np.nonzero(fold != k)[0])
            rules.append(asdict(rule))
            test = np.nonzero(fold == k)[0]
            out_labels[test], out_patterns[test] = apply([rows[i] for i in test], rule)
        out_labels, out_patterns = out_labels.astype(str), out_patterns.astype(str)
        crossfit.append(
            {
                "rates": rates(out_labels, out_patterns, classes, groups, args.boot if repeat == 0 else 0),
                "pattern": pattern_table(out_labels, out_patterns, classes, groups, args.boot if repeat == 0 else 0),
                "rules": rules,
            }
        )
    report["palda_crossfit_first"] = crossfit[0]
    report["palda_crossfit_spread"] = {
        cls: {
            "flagged": [
                min(c["rates"][cls]["flagged"]["rate"] for c in crossfit),
                float(np.median([c["rates"][cls]["flagged"]["rate"] for c in crossfit])),
                max(c["rates"][cls]["flagged"]["rate"] for c in crossfit),
            ]
        }
        for cls in ("healthy", "central", "peripheral")
    }
    report["palda_crossfit_spread"]["pattern_right"] = [
        min(c["pattern"]["right"] for c in crossfit),
        float(np.median([c["pattern"]["right"] for c in crossfit])),
        max(c["pattern"]["right"] for c in crossfit),
    ]
    fitted_values = {k: [r[k] for c in crossfit for r in c["rules"]] for k in keys}
    report["palda_crossfit_constants"] = {k: [min(v), max(v)] for k, v in fitted_values.items()}

    if args.stroke_faces:
        sf_records = load(args.stroke_faces, args.cache, with_signature=True)
        sf_rows = [examine(r) for r in sf_records]
        sf_classes = np.array([r["class"] for r in sf_records])
        signed = [r for r in sf_records if r.get("signature") is not None]
        sf_groups = np.full(len(sf_records), -1)
        sf_groups[[i for i, r in enumerate(sf_records) if r.get("signature") is not None]] = (
            duplicates.duplicate_groups([r["signature"] for r in signed])
        )
        # A photo without a face has no signature: it is its own group.
        loose = sf_groups < 0
        sf_groups[loose] = sf_groups.max() + 1 + np.arange(loose.sum())
        sf_labels, sf_patterns = apply(sf_rows, ASYMMETRY_ONLY_RULE)
        report["stroke_faces_groups"] = int(len(np.unique(sf_groups)))
        report["stroke_faces_shipped"] = rates(sf_labels, sf_patterns, sf_classes, sf_groups, args.boot)
        report["stroke_faces_auc"] = auc_table(
            sf_rows,
            sf_classes == "paralysis",
            sf_groups,
            args.boot,
            {"paralysis vs no_paralysis": np.ones(len(sf_rows), bool)},
        )
        flagged = np.isin(sf_labels, [PARALYSIS, INCONCLUSIVE]) & (sf_classes == "paralysis")
        report["stroke_faces_patterns_of_flagged_paralysis"] = dict(Counter(sf_patterns[flagged].tolist()))
        report["stroke_faces_refusals"] = dict(Counter(r["reason"][:60] for r in sf_rows if not r["measured"]))

    print_report(report)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "eval_screening.json").write_text(json.dumps(report, indent=2, default=float))
        print(f"\nWritten: {args.out / 'eval_screening.json'}")
    return 0


def pct(entry: dict) -> str:
    low, high = entry["ci95"]
    interval = f" ({100 * low:.0f}–{100 * high:.0f})" if not np.isnan(low) else ""
    return f"{100 * entry['rate']:.1f}%{interval}"


def print_rates(title: str, table: dict, classes: tuple[str, ...]) -> None:
    print(f"\n{title}\n")
    print("| class | n | flagged | positive | inconclusive | negative | refused |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for cls in classes:
        row = table[cls]
        print(
            f"| {cls} | {row['n']} | "
            + " | ".join(pct(row[k]) for k in ("flagged", "positive", "inconclusive", "negative", "refused"))
            + " |"
        )


def print_pattern(title: str, table: dict) -> None:
    low, high = table["right_ci95"] or (float("nan"), float("nan"))
    print(
        f"\n{title}: right {100 * table['right']:.1f}% ({100 * low:.0f}–{100 * high:.0f}) of {table['n']} flagged "
        f"palsy photos; central recall {100 * table['central_recall']:.0f}%, peripheral recall "
        f"{100 * table['peripheral_recall']:.0f}%\n"
    )
    print("| true \\ called | central | peripheral | undetermined |")
    print("| --- | --- | --- | --- |")
    for cls, row in table["confusion"].items():
        print(f"| {cls} | " + " | ".join(str(row[p]) for p in PATTERNS) + " |")


def print_report(report: dict) -> None:
    rule = report["shipped_rule"]
    fitted = report["fitted_on_all_of_palda"]
    print(
        f"Shipped rule {rule['name']}: negative below {rule['asymmetry_negative_below']}, positive from "
        f"{rule['asymmetry_positive_at']}; pattern central below {rule['pattern_central_below']}, peripheral from "
        f"{rule['pattern_peripheral_at']}"
    )
    print(
        f"Fitted on all of palda-dev: {fitted['asymmetry_negative_below']} / {fitted['asymmetry_positive_at']}; "
        f"pattern {fitted['pattern_central_below']} / {fitted['pattern_peripheral_at']}  "
        f"({'matches the shipped rule' if report['shipped_matches_fit'] else 'DIFFERS from the shipped rule'})"
    )
    print(f"Cross-fitted constants ranged: {report['palda_crossfit_constants']}")
    print(f"\npalda-dev refusals: {report['palda_refusals'] or 'none'}; warnings: {report['palda_warnings']}")
    print("\nROC AUC of the asymmetry index (95% interval by person; one-way mesh = before mirror averaging)\n")
    print("| data set | comparison | n | AUC | 95% CI | one-way mesh |")
    print("| --- | --- | --- | --- | --- | --- |")
    for data, key in (("palda-dev", "palda_auc"), ("stroke-faces", "stroke_faces_auc")):
        for name, row in report.get(key, {}).items():
            print(
                f"| {data} | {name} | {row['n']} | {row['auc']:.3f} | {row['ci95'][0]:.3f}–{row['ci95'][1]:.3f} | "
                f"{row['auc_one_way_mesh']:.3f} |"
            )
    gap = report["one_way_mirror_gap"]
    print(
        f"\nOne-way mesh, photo vs its mirror image: index differs by median {gap['median']:.3f}, "
        f"max {gap['max']:.3f} (mirror-averaged: 0 by construction)"
    )
    classes = ("healthy", "central", "peripheral")
    print_rates(
        "palda-dev, cross-fitted (constants fitted without the person's fold; first deal)",
        report["palda_crossfit_first"]["rates"],
        classes,
    )
    spread = report["palda_crossfit_spread"]
    print(
        f"\nOver {len(spread) and 'all'} deals, flagged rate min / median / max: "
        + "; ".join(
            f"{c} {v['flagged'][0]:.3f} / {v['flagged'][1]:.3f} / {v['flagged'][2]:.3f}"
            for c, v in spread.items()
            if c in classes
        )
        + f"; pattern right {spread['pattern_right'][0]:.3f} / {spread['pattern_right'][1]:.3f} / "
        f"{spread['pattern_right'][2]:.3f}"
    )
    print_pattern("Pattern, cross-fitted", report["palda_crossfit_first"]["pattern"])
    print_rates(
        "palda-dev, shipped rule (in-sample: its constants were fitted on these photos)",
        report["palda_shipped"],
        classes,
    )
    print_pattern("Pattern, shipped rule (in-sample)", report["palda_shipped_pattern"])
    if "stroke_faces_shipped" in report:
        print_rates(
            f"stroke-faces, shipped rule ({report['stroke_faces_groups']} near-duplicate groups; "
            "healthy photos are press photos with expressions, not faces at rest)",
            report["stroke_faces_shipped"],
            ("paralysis", "no_paralysis"),
        )
        print(
            f"\nstroke-faces paralysis photos flagged, by pattern called: "
            f"{report['stroke_faces_patterns_of_flagged_paralysis']}"
        )
        print(f"stroke-faces refusals: {report['stroke_faces_refusals']}")


if __name__ == "__main__":
    raise SystemExit(main())
