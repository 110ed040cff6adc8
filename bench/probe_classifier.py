"""Does the classifier read the face or the photo? Its answers on held-out faces, changed in ways
that alter how a photo was taken but not whether the face droops.

    PYTHONPATH=. .venv/bin/python bench/probe_classifier.py PACK CHECKPOINT [--fold 0]

stroke-faces' two classes come from different sources (patient close-ups against press photos), so a
model can learn resolution, compression or exposure instead of droop. On the checkpoint's held-out
fold of the pack (made by ``train_classifier --save-pack``), each change in
``inference.engine.training.PHOTO_CHANGES`` is applied to every face; the script prints the ROC AUC,
the mean P(paralysis) per class and how many labels (at 0.5) flip. ``train_classifier`` stores the
same table in every version's metrics. A mirrored face is the control. A benchmark: it prints.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from inference.engine import training  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    import torch

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pack", type=Path)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--fold", type=int, default=0, help="the checkpoint's held-out fold")
    args = parser.parse_args(argv)

    prepared = training.load_pack(args.pack)
    if prepared.folds is None:
        parser.error("this pack came with its own split: no folds")
    payload = torch.load(args.checkpoint, map_location="cpu", weights_only=True)
    splits = training.fold_splits(prepared, args.fold)
    if payload.get("training", {}).get("split_digest") != training.split_digest(prepared, splits):
        parser.error(f"{args.checkpoint} was not trained with fold {args.fold} of {args.pack} held out")
    model = training.build_resnet50()
    model.load_state_dict(payload["state_dict"])
    test = np.array([s == "test" for s in splits])
    faces, labels = prepared.faces[test], prepared.labels[test]
    print(f"{len(labels)} held-out faces ({int(labels.sum())} paralysis) of fold {args.fold}; {args.checkpoint.name}")
    report = training.robustness(model, faces, labels, training.predict(model, faces))
    print(f"  {'change':<20} ROC AUC   mean P healthy   mean P paralysis   labels flipped")
    for name, row in report.items():
        print(f"  {name:<20} {row['roc_auc']:7.3f}   {row['mean_p_healthy']:14.3f}   {row['mean_p_paralysis']:16.3f}   "
              f"{row['flipped']:14.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
