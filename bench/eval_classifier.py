"""Cross-validated evaluation of the ResNet-50 classifier, the asymmetry index and their fusion.

    manage.py train_classifier ../shared/datasets/stroke-faces --save-pack var/faces.npz
    python -m inference.engine.training var/faces.npz var/cv --folds 0,1,2,3,4        # a GPU machine
    PYTHONPATH=. .venv/bin/python bench/eval_classifier.py var/faces.npz var/cv/cv.npz [--out DIR]

The pack deals whole near-duplicate groups into five folds. Round i trained a model on three folds,
chose its epoch on fold i+1 and never saw fold i; cv.npz holds every round's P(paralysis) for every
photo. Here, per round: the classifier's and the index's ROC AUC on the test fold, and the fused
decision with its weight and thresholds fitted on that round's validation fold (as train_classifier
does), applied to the test fold. Then the pooled out-of-fold figures, with 95% intervals that
resample whole near-duplicate groups. Photos are never read: the pack holds the faces' indices, the
probabilities were computed on the pack's faces where the models were trained.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from inference.engine.decide import ASYMMETRY_ONLY_RULE  # noqa: E402
from inference.engine.evaluation import classification_report, group_bootstrap_auc, roc_auc  # noqa: E402
from inference.engine.training import reporting  # noqa: E402


def evaluate(labels, asymmetry, groups, folds, probabilities) -> dict:
    rounds, pooled = [], {"labels": [], "classifier": [], "index": [], "fused": [], "groups": [], "decided": []}
    count = int(folds.max()) + 1
    for fold in range(count):
        prob = probabilities[fold]
        if np.isnan(prob).all():
            continue
        test, val = folds == fold, folds == (fold + 1) % count
        fitted = reporting.fit_thresholds(
            labels[val],
            prob[val],
            asymmetry[val],
            asymmetry_positive_at=ASYMMETRY_ONLY_RULE.asymmetry_positive_at,
            asymmetry_negative_below=ASYMMETRY_ONLY_RULE.asymmetry_negative_below,
        )
        fused = reporting.fused_scores(
            prob[test],
            asymmetry[test],
            weight=fitted["classifier_weight"],
            positive_at=fitted["asymmetry_positive_at"],
            negative_below=fitted["asymmetry_negative_below"],
        )
        y = labels[test]
        report = classification_report(y, fused, fitted["fused_positive_at"])
        inconclusive = (fused >= fitted["fused_negative_below"]) & (fused < fitted["fused_positive_at"])
        rounds.append(
            {
                "test_fold": fold,
                "photos": int(test.sum()),
                "paralysis": int(y.sum()),
                "groups": int(len(np.unique(groups[test]))),
                "classifier_auc": roc_auc(y, prob[test]),
                "index_auc": roc_auc(y, asymmetry[test]),
                "fused_auc": roc_auc(y, fused),
                "classifier_weight": fitted["classifier_weight"],
                "fused_sensitivity": report["paralysis"]["recall"],
                "fused_specificity": report["no_paralysis"]["recall"],
                "inconclusive": float(inconclusive.mean()),
            }
        )
        pooled["labels"].append(y)
        pooled["classifier"].append(prob[test])
        pooled["index"].append(asymmetry[test])
        pooled["fused"].append(fused)
        pooled["groups"].append(groups[test])
        pooled["decided"].append(
            np.where(fused >= fitted["fused_positive_at"], 1, np.where(fused < fitted["fused_negative_below"], 0, -1))
        )
    joined = {k: np.concatenate(v) for k, v in pooled.items()}
    summary = {}
    for key in ("classifier", "index", "fused"):
        low, high = group_bootstrap_auc(joined["labels"], joined[key], joined["groups"], 2000, seed=0)
        per_round = [r[f"{key}_auc"] for r in rounds]
        summary[key] = {
            "pooled_auc": roc_auc(joined["labels"], joined[key]),
            "ci95": [low, high],
            "mean_round_auc": float(np.mean(per_round)),
            "min_round_auc": float(np.min(per_round)),
            "max_round_auc": float(np.max(per_round)),
        }
    y, decided = joined["labels"], joined["decided"]
    summary["fused_decision"] = {
        "sensitivity": float(np.mean(decided[y == 1] == 1)),
        "specificity": float(np.mean(decided[y == 0] == 0)),
        "missed_paralysis": float(np.mean(decided[y == 1] == 0)),
        "inconclusive": float(np.mean(decided == -1)),
    }
    return {
        "rounds": rounds,
        "summary": summary,
        "photos": int(len(y)),
        "groups": int(len(np.unique(joined["groups"]))),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pack", type=Path)
    parser.add_argument("cv", type=Path, nargs="+", help="cv.npz of one or more training runs")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)

    with np.load(args.pack, allow_pickle=False) as pack:
        labels, asymmetry, groups, folds = pack["labels"], pack["asymmetry"], pack["groups"], pack["folds"]
        paths = pack["paths"]
    if (folds < 0).any():
        parser.error("this pack came with its own split: there are no folds to cross-validate")
    results = {}
    for path in args.cv:
        with np.load(path, allow_pickle=False) as cv:
            if not np.array_equal(cv["paths"], paths) or not np.array_equal(cv["folds"], folds):
                parser.error(f"{path} was not trained on {args.pack}")
            result = evaluate(labels, asymmetry, groups, folds, cv["probabilities"])
        results[str(path)] = result
        print_result(str(path), result)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "eval_classifier.json").write_text(json.dumps(results, indent=2, default=_json))
    return 0


def print_result(name: str, result: dict) -> None:
    """The five-round table of one evaluation, and its pooled figures."""
    print(f"\n{name}: {result['photos']} held-out photos in {result['groups']} near-duplicate groups")
    print("  round  photos  paralysis  groups  classifier  index   fused  weight  sens   spec   inconcl.")
    for r in result["rounds"]:
        print(
            f"  {r['test_fold']:>5}  {r['photos']:>6}  {r['paralysis']:>9}  {r['groups']:>6}  "
            f"{r['classifier_auc']:>10.3f}  {r['index_auc']:.3f}  {r['fused_auc']:.3f}  "
            f"{r['classifier_weight']:>6.1f}  {r['fused_sensitivity']:.3f}  {r['fused_specificity']:.3f}  "
            f"{r['inconclusive']:.3f}"
        )
    for key in ("classifier", "index", "fused"):
        s = result["summary"][key]
        print(
            f"  {key:<10} pooled out-of-fold ROC AUC {s['pooled_auc']:.3f} "
            f"(95% group bootstrap {s['ci95'][0]:.3f}-{s['ci95'][1]:.3f}); rounds {s['min_round_auc']:.3f}-"
            f"{s['max_round_auc']:.3f}, mean {s['mean_round_auc']:.3f}"
        )
    d = result["summary"]["fused_decision"]
    print(
        f"  fused decision: sensitivity {d['sensitivity']:.3f}, specificity {d['specificity']:.3f}, "
        f"missed paralysis {d['missed_paralysis']:.3f}, inconclusive {d['inconclusive']:.3f}"
    )


def _json(value):
    if isinstance(value, float) and math.isnan(value):
        return None
    return float(value)


if __name__ == "__main__":
    raise SystemExit(main())
