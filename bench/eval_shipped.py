"""The shipped classifier judged on clinical photos it never trained on: the model card's tables.

    PYTHONPATH=. .venv/bin/python bench/eval_shipped.py --palda var/palda128.npz --stroke var/stroke128.npz \
        [--checkpoint models/....pt] [--cross-fitted A/fold0.pt B/fold0.pt] [--fit-rule] [--boot 2000]

A classifier that learnt from palda-dev's photos (training --clinical) is judged there by the
cross-fitted models trained without each photo's person (--cross-fitted: each scores the photos it held
out); --checkpoint is then judged on stroke-faces' held-out fold.

The packs are aligned faces as serving crops them, written by
    manage.py train_classifier ../shared/datasets/palda-dev --image-size 128 --save-pack var/palda128.npz
    manage.py train_classifier ../shared/datasets/stroke-faces --image-size 128 --save-pack var/stroke128.npz
(the stroke-faces pack's fold 0 is the test split the classifier never trained on, and fold 1 its
validation split, which no stage of the shipped lineage chose anything on: --stroke-folds 0,1 judges on
both; palda-dev was never
trained on at all).

What it prints, each with a 95% interval resampling whole people (palda-dev: the numbered photos of one
patient are one person) or near-duplicate groups (stroke-faces), 2,000 times:
1. ROC AUC of the classifier alone (P(paralysis), mirror-averaged as serving does), of the asymmetry
   index alone and of the fused score, on palda-dev (palsy, central, peripheral against healthy) and on
   stroke-faces' held-out fold.
2. The fused rule's classifier weight, cross-fitted on palda-dev: people dealt into 5 folds per class,
   the weight that ranks the other folds best chosen for each fold (20 deals); with --fit-rule, the
   weight and thresholds fitted on all of palda-dev, as shipped (models/*.json).
3. The decisions of the shipped fused rule against the asymmetry rule alone, per class: flagged
   (positive or inconclusive), positive, negative; each judged as the worker judges it, on the
   interval index ± the photo's own repeatability (the packs carry it).
4. Robustness of the classifier: the mirror image's |dP| and labels flipped when the face is 30%
   brighter or darker (at P 0.5, and the fused decision's labels with the index as measured: none
   can change at weight 0, and it says so instead of printing 0%).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from inference.engine.decide import ASYMMETRY_ONLY_RULE, INCONCLUSIVE, PARALYSIS, DecisionRule, decide  # noqa: E402
from inference.engine.evaluation import (  # noqa: E402
    deal_folds,
    group_bootstrap_auc,
    group_bootstrap_rate,
    person_of,
    roc_auc,
)
from inference.engine.training.data import fold_splits, load_pack, photo_name  # noqa: E402
from inference.engine.training.reporting import fused_scores  # noqa: E402

WEIGHTS = np.round(np.linspace(0, 1, 11), 2)


def person(path: str) -> str:
    """palda-dev: numbered variants of one patient (image0011, image0012) are one person."""
    return person_of(Path(path).parent.name, Path(path).name)


def scores_of(classifier, faces: np.ndarray, change=None) -> np.ndarray:
    """P(paralysis) of each face (after ``change``), as serving computes it (mirror-averaged)."""
    return np.array(
        [classifier.predict(change(face) if change else face, with_heatmap=False).probability for face in faces]
    )


def learnt_from(checkpoint: Path) -> set[str]:
    """The clinical photos (class folder/file name) a checkpoint was trained on (training --clinical)."""
    import torch

    training = torch.load(checkpoint, map_location="cpu", weights_only=False).get("training", {})
    return set(training.get("clinical", {}).get("trained_photos", ()))


class OutOfFold:
    """Scores each palda-dev photo with a checkpoint that never learnt from its person: one checkpoint
    that never saw palda-dev scores them all; cross-fitted ones (trained with --clinical-fold) each score
    the photos they held out."""

    def __init__(self, checkpoints: list[Path], paths: list[str]):
        from inference.engine.classifier import ResNetClassifier

        names = [photo_name(p) for p in paths]
        seen = [learnt_from(c) for c in checkpoints]
        self.scorer = np.array([next((k for k, s in enumerate(seen) if n not in s), -1) for n in names])
        if (self.scorer < 0).any():
            raise SystemExit(f"{int((self.scorer < 0).sum())} palda-dev photos were trained on by every checkpoint")
        self.classifiers = [ResNetClassifier(c, runtime="torch") for c in checkpoints]

    def scores(self, faces: np.ndarray, change=None) -> np.ndarray:
        p = np.zeros(len(faces))
        for k, classifier in enumerate(self.classifiers):
            mine = self.scorer == k
            if mine.any():
                p[mine] = scores_of(classifier, faces[mine], change)
        return p


def labels_of(probability, index: np.ndarray, rule: DecisionRule, half_widths: np.ndarray) -> np.ndarray:
    """Each photo's label as the worker gives it: the rule judged on the interval index ± the photo's
    own repeatability (decide's ``uncertainty``), not on the index alone."""
    return np.array(
        [
            decide(
                asymmetry_index=float(i),
                severity="mild",
                probability=None if p is None else float(p),
                rule=rule,
                uncertainty=float(h),
            ).label
            for p, i, h in zip(probability, index, half_widths)
        ]
    )


def decision_flips(changed, p, index: np.ndarray, rule: DecisionRule, half_widths: np.ndarray) -> float | None:
    """The share of decisions that a change of the classifier's P (``changed`` against ``p``) changes;
    None for a rule that gives the classifier weight 0, where P decides nothing and the share could not
    be anything but 0."""
    if rule.classifier_weight <= 0:
        return None
    return float(np.mean(labels_of(changed, index, rule, half_widths) != labels_of(p, index, rule, half_widths)))


def widths_of(pack, path: Path) -> np.ndarray:
    """The pack's repeatability of each photo: its decisions are judged on it."""
    if pack.half_widths is None:
        raise SystemExit(
            f"{path} carries no repeatability per photo (written before packs did): its decisions cannot be "
            "judged as the worker judges them; write it again with train_classifier --save-pack"
        )
    return pack.half_widths


def auc_row(name, labels, scores, groups, boot) -> str:
    low, high = group_bootstrap_auc(labels, scores, groups, boot, 0)
    return f"  {name:<40} {roc_auc(labels, scores):.3f} ({low:.3f}-{high:.3f})"


def fused(p, index, weight: float, rule: DecisionRule = ASYMMETRY_ONLY_RULE) -> np.ndarray:
    """The fused score, with the asymmetry score scaled by ``rule``'s index thresholds."""
    return fused_scores(
        p, index, weight=weight, positive_at=rule.asymmetry_positive_at, negative_below=rule.asymmetry_negative_below
    )


def choose_weight(labels, p, index) -> float:
    """The weight whose fused score ranks these photos best (ties: the smaller weight)."""
    best = (-1.0, 0.0)
    for weight in WEIGHTS:
        auc = roc_auc(labels, fused(p, index, weight))
        if auc > best[0] + 1e-9:
            best = (auc, float(weight))
    return best[1]


def fit_rule(labels, p, index, kinds, *, adds: bool = True) -> dict:
    """The weight by ROC AUC on these photos, or 0 when cross-fitting says the classifier adds nothing
    (``adds`` False: a second reader); thresholds by the asymmetry rule's own principle, on the healthy
    faces: positive from the fused score of the healthy 97.5th percentile, negative below the 92.5th
    (empirical here; the index rule uses a half-normal fit of the same quantiles). With weight 0 the
    rule is the asymmetry rule itself, mapped to the fused score."""
    rule = ASYMMETRY_ONLY_RULE
    weight = choose_weight(labels, p, index) if adds else 0.0
    if weight == 0:
        from inference.engine.decide import asymmetry_score

        positive = asymmetry_score(rule.asymmetry_positive_at, rule)
        negative = asymmetry_score(rule.asymmetry_negative_below, rule)
    else:
        healthy = fused(p, index, weight)[kinds == "healthy"]
        positive, negative = float(np.quantile(healthy, 0.975)), float(np.quantile(healthy, 0.925))
    return {
        "classifier_weight": weight,
        # Unrounded at weight 0: exactly the asymmetry rule's thresholds mapped to the score.
        "fused_positive_at": float(positive) if weight == 0 else round(float(positive), 4),
        "fused_negative_below": float(negative) if weight == 0 else round(float(min(negative, positive - 1e-4)), 4),
        "asymmetry_positive_at": rule.asymmetry_positive_at,
        "asymmetry_negative_below": rule.asymmetry_negative_below,
        "pattern_peripheral_at": rule.pattern_peripheral_at,
        "pattern_central_below": rule.pattern_central_below,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path)
    parser.add_argument(
        "--cross-fitted",
        type=Path,
        nargs="+",
        help="checkpoints trained on parts of palda-dev (--clinical-fold): each scores the photos it held out",
    )
    parser.add_argument("--palda", type=Path, required=True)
    parser.add_argument("--stroke", type=Path)
    parser.add_argument("--boot", type=int, default=2000)
    parser.add_argument("--fit-rule", action="store_true", help="print the rule fitted on all of palda-dev")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument(
        "--stroke-folds",
        default="0",
        help="stroke-faces folds judged on, e.g. 0,1 (fold 1 is the lineage's validation fold, never chosen on)",
    )
    args = parser.parse_args(argv)
    from inference.shipped import SHIPPED_MODEL

    checkpoint = args.checkpoint or SHIPPED_MODEL.path
    record_path = checkpoint.with_suffix(".json")
    shipped_rule = json.loads(record_path.read_text())["thresholds"] if record_path.exists() else None
    report: dict = {"checkpoint": checkpoint.name}

    palda = load_pack(args.palda)
    kinds = np.array(palda.kinds)
    groups = np.array([person(p) for p in palda.paths])
    labels, index, widths = palda.labels, palda.asymmetry, widths_of(palda, args.palda)
    report["palda_counts"] = {"photos": len(labels), "people": len(set(groups))}
    # Whose scores these are: the activation gate takes only a version's own held-out figures.
    report["scored_by"] = "cross-fitted" if args.cross_fitted else "itself"
    from inference.engine.classifier import ResNetClassifier

    classifier = ResNetClassifier(checkpoint, runtime="torch")  # loaded once, scored with every change
    scorers = args.cross_fitted or [checkpoint]
    palda_scorer = OutOfFold(scorers, palda.paths)
    p = palda_scorer.scores(palda.faces)
    scored_by = ", ".join(f"{c.parent.name}/{c.name}" if args.cross_fitted else c.name for c in scorers)
    print(
        f"{scored_by} on palda-dev: {len(labels)} faces of {len(set(groups))} people "
        f"({', '.join(f'{k} {int((kinds == k).sum())}' for k in np.unique(kinds))}); each scored by a model "
        "that never trained on its person\n"
    )
    print("ROC AUC (95% interval by person)")
    report["palda"] = {}
    for subset, mask in (
        ("palsy vs healthy", np.ones(len(labels), bool)),
        ("central vs healthy", np.isin(kinds, ["healthy", "central"])),
        ("peripheral vs healthy", np.isin(kinds, ["healthy", "peripheral"])),
    ):
        print(auc_row(f"classifier alone, {subset}", labels[mask], p[mask], groups[mask], args.boot))
        print(auc_row(f"asymmetry index alone, {subset}", labels[mask], index[mask], groups[mask], args.boot))
        report["palda"][subset] = {
            "classifier": roc_auc(labels[mask], p[mask]),
            "classifier_interval": group_bootstrap_auc(labels[mask], p[mask], groups[mask], args.boot, 0),
            "index": roc_auc(labels[mask], index[mask]),
        }

    # Cross-fitted weight: which weight would a fit without these people have chosen?
    chosen, pooled_auc = [], []
    for seed in range(20):
        fold = deal_folds(groups, kinds, 5, seed)
        out_of_fold = np.zeros(len(labels))
        for k in range(5):
            train = fold != k
            weight = choose_weight(labels[train], p[train], index[train])
            chosen.append(weight)
            out_of_fold[~train] = fused(p[~train], index[~train], weight)
        pooled_auc.append(roc_auc(labels, out_of_fold))
    values, counts = np.unique(chosen, return_counts=True)
    print(
        "\nFused weight cross-fitted on palda-dev (5 folds by person, 20 deals): chosen "
        + ", ".join(f"{v:g} x{c}" for v, c in zip(values, counts))
        + f"; out-of-fold fused ROC AUC {np.median(pooled_auc):.3f} (range {min(pooled_auc):.3f}-{max(pooled_auc):.3f})"
    )
    report["cross_fitted_weights"] = {f"{v:g}": int(c) for v, c in zip(values, counts)}
    report["cross_fitted_fused_auc"] = [float(min(pooled_auc)), float(np.median(pooled_auc)), float(max(pooled_auc))]
    adds = bool(np.median(pooled_auc) > roc_auc(labels, index))
    if args.stroke:
        # The veto of the second data set: the weight palda-dev would choose must not rank stroke-faces'
        # held-out fold worse than the index alone does.
        stroke = load_pack(args.stroke)
        judged = [int(f) for f in args.stroke_folds.split(",")]
        if not set(judged) <= {0, 1}:
            parser.error("the shipped lineage trained on stroke-faces' folds 2-4: judge it on folds 0 and 1 only")
        wanted = {("test", "val")[f] for f in judged}  # fold 0's round: fold 0 tests, fold 1 validates
        test = np.array([s in wanted for s in fold_splits(stroke, 0)])
        folds_name = "fold" + ("s " if len(judged) > 1 else " ") + " and ".join(map(str, judged))
        sp = scores_of(classifier, stroke.faces[test])
        sy, si, sg = stroke.labels[test], stroke.asymmetry[test], stroke.groups[test]
        sw = widths_of(stroke, args.stroke)[test]
        weight = choose_weight(labels, p, index)
        at_weight = fused(sp, si, weight)
        stroke_ok = roc_auc(sy, at_weight) >= roc_auc(sy, si)
        print(
            f"stroke-faces {folds_name} at palda-dev's weight {weight:g}: fused {roc_auc(sy, at_weight):.3f} "
            f"against the index alone {roc_auc(sy, si):.3f}: {'no worse' if stroke_ok else 'worse'}"
        )
        report["stroke_veto"] = {"weight": weight, "fused": roc_auc(sy, at_weight), "index": roc_auc(sy, si)}
        adds = adds and stroke_ok
    report["classifier_adds"] = adds
    print(
        f"palda-dev out of fold: fused {np.median(pooled_auc):.3f} against the index alone "
        f"{roc_auc(labels, index):.3f}; the classifier {'decides' if adds else 'is a second reader (weight 0)'}"
    )
    if args.fit_rule:
        fitted = fit_rule(labels, p, index, kinds, adds=adds)
        print(f"rule fitted on all of palda-dev: {json.dumps(fitted)}")
        report["fitted_rule"] = fitted
    rule = DecisionRule.from_thresholds(shipped_rule or fit_rule(labels, p, index, kinds, adds=adds), name="fused")
    shipped = fused(p, index, rule.classifier_weight, rule)
    title = f"fused score (weight {rule.classifier_weight:g}), palsy vs healthy"
    print(auc_row(title, labels, shipped, groups, args.boot))
    report["fused_auc"] = roc_auc(labels, shipped)
    report["rule"] = rule.as_dict()

    print(
        "\nDecisions on palda-dev: the fused rule against the asymmetry rule alone (flagged = positive or inconclusive)"
    )
    with_classifier = labels_of(p, index, rule, widths)
    alone = labels_of([None] * len(index), index, ASYMMETRY_ONLY_RULE, widths)
    report["decisions"] = {}
    for kind in ("healthy", "central", "peripheral"):
        mask = kinds == kind
        row = {}
        for name, decided in (("fused", with_classifier), ("index alone", alone)):
            flagged = np.isin(decided[mask], [PARALYSIS, INCONCLUSIVE])
            low, high = group_bootstrap_rate(flagged, groups[mask], args.boot, 0)
            row[name] = {
                "flagged": float(flagged.mean()),
                "interval": [low, high],
                "positive": float(np.mean(decided[mask] == PARALYSIS)),
            }
        print(
            f"  {kind:<11} n={int(mask.sum()):<3} flagged: fused {row['fused']['flagged']:.1%} "
            f"({row['fused']['interval'][0]:.0%}-{row['fused']['interval'][1]:.0%}), index alone "
            f"{row['index alone']['flagged']:.1%} ({row['index alone']['interval'][0]:.0%}-"
            f"{row['index alone']['interval'][1]:.0%})"
        )
        report["decisions"][kind] = row

    print("\nRobustness on palda-dev (the index as measured on the photo; only the classifier sees the change)")
    report["robustness"] = {}
    mirrored = palda_scorer.scores(palda.faces, lambda f: np.ascontiguousarray(f[:, ::-1]))
    print(f"  mirrored face: max |dP| {np.abs(mirrored - p).max():.4f}, median {np.median(np.abs(mirrored - p)):.4f}")
    report["robustness"]["mirror_max_dp"] = float(np.abs(mirrored - p).max())
    for name, factor in (("brighter x1.3", 1.3), ("darker x0.7", 0.7)):
        changed = palda_scorer.scores(palda.faces, lambda f, k=factor: np.clip(f * k, 0, 255).astype(np.uint8))
        flips = float(np.mean((changed >= 0.5) != (p >= 0.5)))
        changed_decisions = decision_flips(changed, p, index, rule, widths)
        said = "none can (weight 0: P decides nothing)" if changed_decisions is None else f"{changed_decisions:.1%}"
        print(
            f"  {name}: classifier labels flipped {flips:.1%}, fused decisions changed {said}, "
            f"ROC AUC {roc_auc(labels, changed):.3f}, max |dP| {np.abs(changed - p).max():.3f}"
        )
        report["robustness"][name] = {
            "classifier_flips": flips,
            "decision_flips": changed_decisions,
            "auc": roc_auc(labels, changed),
        }

    if args.stroke:
        sfused = fused(sp, si, rule.classifier_weight, rule)
        print(f"\nstroke-faces, held-out {folds_name} ({int(test.sum())} faces, {len(set(sg))} near-duplicate groups)")
        for name, scores in (("classifier alone", sp), ("asymmetry index alone", si), ("fused score", sfused)):
            print(auc_row(name, sy, scores, sg, args.boot))
        decided, alone_s = labels_of(sp, si, rule, sw), labels_of([None] * len(si), si, ASYMMETRY_ONLY_RULE, sw)
        for cls, name in ((1, "paralysis"), (0, "no paralysis")):
            mask = sy == cls
            print(
                f"  {name:<13} flagged: fused {np.isin(decided[mask], [PARALYSIS, INCONCLUSIVE]).mean():.1%}, "
                f"index alone {np.isin(alone_s[mask], [PARALYSIS, INCONCLUSIVE]).mean():.1%}"
            )
        report["stroke"] = {
            "classifier": roc_auc(sy, sp),
            "index": roc_auc(sy, si),
            "fused": roc_auc(sy, sfused),
            "weight": rule.classifier_weight,  # the fused figure's weight: the gate compares like with like
        }
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
