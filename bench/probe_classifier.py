"""Does the classifier read the face or the photo? Its answers on held-out faces, changed in ways
that alter how a photo was taken but not whether the face droops.

    PYTHONPATH=. .venv/bin/python bench/probe_classifier.py PACK CHECKPOINT [--fold 0] [--index]

stroke-faces' two classes come from different sources (patient close-ups against press photos), so a
model can learn resolution, compression or exposure instead of droop. On the checkpoint's held-out
fold of the pack (made by ``train_classifier --save-pack``), each change in
``inference.engine.training.reporting.PHOTO_CHANGES`` is applied to every face; the script prints the ROC AUC,
the mean P(paralysis) per class and how many labels (at 0.5) flip. ``train_classifier`` stores the
same table in every version's metrics. A mirrored face is the control. With --index, the same
changes are made to the whole photos (read from the paths in the pack) and the training-free
asymmetry index is measured again, for comparison. A benchmark: it prints.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from inference.engine import classifier  # noqa: E402
from inference.engine.training import data, fitting, reporting  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    import torch

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pack", type=Path)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--fold", type=int, default=0, help="the checkpoint's held-out fold")
    parser.add_argument("--index", action="store_true", help="also probe the asymmetry index on the photos")
    args = parser.parse_args(argv)

    prepared = data.load_pack(args.pack)
    if prepared.folds is None:
        parser.error("this pack came with its own split: no folds")
    payload = torch.load(args.checkpoint, map_location="cpu", weights_only=True)
    splits = data.fold_splits(prepared, args.fold)
    if payload.get("training", {}).get("split_digest") != data.split_digest(prepared, splits):
        parser.error(f"{args.checkpoint} was not trained with fold {args.fold} of {args.pack} held out")
    model = classifier.build_resnet50()
    model.load_state_dict(payload["state_dict"])
    test = np.array([s == "test" for s in splits])
    faces, labels = prepared.faces[test], prepared.labels[test]
    print(f"{len(labels)} held-out faces ({int(labels.sum())} paralysis) of fold {args.fold}; {args.checkpoint.name}")
    report = reporting.robustness(model, faces, labels, fitting.predict(model, faces))
    print(f"  {'change':<20} ROC AUC   mean P healthy   mean P paralysis   labels flipped")
    for name, row in report.items():
        print(
            f"  {name:<20} {row['roc_auc']:7.3f}   {row['mean_p_healthy']:14.3f}   {row['mean_p_paralysis']:16.3f}   "
            f"{row['flipped']:14.1%}"
        )
    if args.index:
        probe_index([p for p, held in zip(prepared.paths, test) if held], labels)
    return 0


def probe_index(paths: list[str], labels: np.ndarray) -> None:
    from inference.engine.decide import ASYMMETRY_ONLY_RULE
    from inference.engine.evaluation import roc_auc
    from inference.engine.face import FaceMeshDetector
    from inference.engine.imaging import analysis_copy, open_image
    from inference.engine.measure import measure

    detector = FaceMeshDetector()
    positive_at = ASYMMETRY_ONLY_RULE.asymmetry_positive_at
    photos = [np.asarray(analysis_copy(open_image(Path(p).read_bytes(), max_pixels=10**9))) for p in paths]
    print(f"\nThe asymmetry index on the same {len(photos)} photos, changed whole (label: index >= {positive_at:g}):")
    print(f"  {'change':<20} ROC AUC   mean index healthy   paralysis   labels flipped   faces lost")
    baseline = None
    for name, change in {"as stored": lambda face: face, **reporting.PHOTO_CHANGES}.items():
        index = np.full(len(photos), np.nan)
        for i, photo in enumerate(photos):
            faces = detector.find(np.ascontiguousarray(change(photo))).faces
            if len(faces) == 1:
                index[i] = measure(faces[0]).asymmetry_index
        if baseline is None:
            baseline = index
        both = ~np.isnan(index) & ~np.isnan(baseline)
        flipped = float(np.mean((index[both] >= positive_at) != (baseline[both] >= positive_at)))
        found = ~np.isnan(index)
        print(
            f"  {name:<20} {roc_auc(labels[found], index[found]):7.3f}   "
            f"{np.nanmean(index[labels == 0]):18.3f}   {np.nanmean(index[labels == 1]):9.3f}   "
            f"{flipped:14.1%}   {int((~found).sum()):10d}"
        )


if __name__ == "__main__":
    raise SystemExit(main())
