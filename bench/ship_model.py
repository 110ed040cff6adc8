"""A trained checkpoint made into the shipped file and its record: fp16 weights under models/ and the
JSON record beside it (thresholds and every figure of bench/eval_shipped.py), written from the
evaluation's report, never typed by hand.

    PYTHONPATH=. .venv/bin/python bench/eval_shipped.py --checkpoint var/xfit-1/fold0.pt \\
        --cross-fitted var/xfit0/fold0.pt var/xfit1/fold0.pt --palda var/palda128.npz \\
        --stroke var/stroke128.npz --fit-rule --json var/eval-v3.json
    PYTHONPATH=. .venv/bin/python bench/ship_model.py var/xfit-1/fold0.pt --name resnet50-droops128-v3 \\
        --eval var/eval-v3.json --trained-on "..." --device "..."

Prints the file's sha256 for inference/shipped.py. The record's source names how palda-dev was scored
(by the cross-fitted models when the checkpoint learnt from it).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MAX_BYTES = 50 * 1024 * 1024  # the one tracked file over 5 MB may not exceed this


def evaluation_source(report: dict, clinical: dict | None) -> str:
    """Where the palda-dev figures come from, in words, with the counts the evaluation itself made."""
    if "palda_counts" not in report or "scored_by" not in report:
        raise SystemExit("the evaluation predates its counts and scorer: run bench/eval_shipped.py again")
    counts = report["palda_counts"]
    photos = f"{counts['photos']} clinical photos of {counts['people']} people"
    if report["scored_by"] == "cross-fitted":
        folds = f"{clinical['folds']} folds by person; " if clinical else ""
        return (
            f"palda-dev ({photos}), each scored by a model cross-fitted without its person ({folds}the shipped "
            "model learnt from all of them)"
        )
    return f"palda-dev ({photos}, never trained on)"


def main(argv=None) -> int:
    import torch

    from inference.engine.classifier import file_sha256

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--name", required=True)
    parser.add_argument("--eval", type=Path, required=True, help="bench/eval_shipped.py --fit-rule --json of it")
    parser.add_argument("--trained-on", required=True, help="what it learnt from, in words")
    parser.add_argument("--device", required=True, help="the hardware it trained on, in words")
    parser.add_argument("--out", type=Path, default=ROOT / "models")
    args = parser.parse_args(argv)

    report = json.loads(args.eval.read_text())
    if "fitted_rule" not in report:
        raise SystemExit(f"{args.eval} has no fitted rule: run bench/eval_shipped.py with --fit-rule")
    payload = torch.load(args.checkpoint, map_location="cpu", weights_only=False)
    payload["state_dict"] = {k: v.half() if v.is_floating_point() else v for k, v in payload["state_dict"].items()}
    training = dict(payload.get("training", {}))
    history = [row for row in training.get("history", []) if "epoch" in row]
    kept = next((row for row in training.get("history", []) if "best_epoch" in row), {})
    training.update(
        device=args.device,
        trained_on=args.trained_on,
        kept_epoch=kept.get("best_epoch"),
        kept=kept.get("kept"),
        normalisation=payload.get("normalisation"),
    )
    payload["training"] = training
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{args.name}.pt"
    torch.save(payload, path)
    if path.stat().st_size > MAX_BYTES:
        path.unlink()
        raise SystemExit(f"{path.name} would be {path.stat().st_size} bytes, over the 50 MB allowed")
    sha = file_sha256(path)

    palda = report["palda"]["palsy vs healthy"]
    source = evaluation_source(report, training.get("clinical"))
    record = {
        "name": args.name,
        "sha256": sha,
        "thresholds": report["fitted_rule"],
        "metrics": {
            "evaluation": {
                "source": source,
                # Whose scores: the cross-fitted siblings' figures are not this version's own held-out ones
                # (inference.selectors.activation_problems reads only its own).
                "scored_by": report["scored_by"],
                "classifier": {
                    "roc_auc": round(palda["classifier"], 4),
                    "interval_95": [round(x, 4) for x in palda["classifier_interval"]],
                },
                "asymmetry_index": {"roc_auc": round(palda["index"], 4)},
                "fused": {"roc_auc": round(report["fused_auc"], 4)},
                "by_pattern": report["palda"],
                "cross_fitted_weights": report["cross_fitted_weights"],
                "cross_fitted_fused_auc": report["cross_fitted_fused_auc"],
                **({"stroke_veto": report["stroke_veto"]} if "stroke_veto" in report else {}),
                "decisions": report["decisions"],
            },
            **({"stroke_faces_fold0": report["stroke"]} if "stroke" in report else {}),
            "robustness": report["robustness"],
            "training": {k: v for k, v in training.items() if k != "history"},
            "history": history,
        },
        "notes": "shipped in the repository (models/); trained on this project's CPU; see docs/model-card.md",
    }
    path.with_suffix(".json").write_text(json.dumps(record, indent=2, default=float) + "\n")
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB) and {path.with_suffix('.json').name}; sha256 {sha}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
