"""Training speed on this machine's CPU: the recipe's own training loop (fitting.train: paired droops,
augmentation, ResNet-50 forward and backward, AdamW, the moving average) in fp32 and in bf16 autocast.

    PYTHONPATH=. .venv/bin/python bench/train_speed.py [--pack var/stroke128.npz] [--faces 64]
        [--epochs 3] [--threads 1] [--precision fp32 bf16]

Each precision trains a fresh model for --epochs on --faces healthy faces (each shown twice, as the
paired recipe does: 2 x faces per epoch); the first epoch warms up (oneDNN builds its kernels) and the
rate is taken over the others. Without --pack the faces are the test suite's portrait at 128 px. It
prints seconds per step of 32 faces and faces per second for each, and each one's speed against fp32
measured in the same run. --threads 1 with a second copy of this running beside it is how five-fold
rounds run here (two at a time on two cores). A benchmark: it prints figures, it never fails.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def healthy_training_faces(pack: Path, count: int):
    """``count`` healthy faces of the pack's fold-0 training split (as round 0 trains on)."""
    from inference.engine.training.data import PreparedSet, fold_splits, load_pack

    prepared = load_pack(pack)
    splits = np.array(fold_splits(prepared, 0) if prepared.folds is not None else prepared.splits)
    chosen = np.flatnonzero((splits == "train") & (prepared.labels == 0))[:count]
    return PreparedSet(
        faces=prepared.faces[chosen],
        labels=prepared.labels[chosen],
        asymmetry=prepared.asymmetry[chosen],
        paths=[prepared.paths[i] for i in chosen],
        splits=["train"] * len(chosen),
        groups=prepared.groups[chosen],
        landmarks=prepared.landmarks[chosen],
    )


def rate(prepared, precision: str, epochs: int, batch_size: int) -> float:
    """Faces per second of training after the first epoch."""
    from inference.engine.training.fitting import train

    ends = []
    train(
        prepared,
        device="cpu",
        initial_weights=None,
        epochs=epochs,
        batch_size=batch_size,
        precision=precision,
        validate="last",
        on_epoch=lambda epoch, model: ends.append(time.monotonic()),
        log=lambda *a: None,
    )
    faces_per_epoch = (2 * len(prepared.labels) // batch_size) * batch_size
    return faces_per_epoch * (epochs - 1) / (ends[-1] - ends[0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pack", type=Path, help="a pack (train_classifier --save-pack) to take healthy faces from")
    parser.add_argument("--faces", type=int, default=64, help="healthy faces, each shown twice per epoch")
    parser.add_argument("--epochs", type=int, default=3, help="the first warms up; at least 2")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--size", type=int, default=128, help="face size without --pack")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--precision", nargs="+", default=["fp32", "bf16"], choices=("fp32", "bf16"))
    args = parser.parse_args(argv)
    if args.epochs < 2:
        parser.error("--epochs must be at least 2: the first one warms up")
    import torch

    torch.set_num_threads(args.threads)
    if args.pack:
        prepared = healthy_training_faces(args.pack, args.faces)
    else:
        from tests.faces import portrait_pack

        paths = [f"/portrait/no_paralysis/{i}.jpg" for i in range(args.faces)]
        prepared = portrait_pack(paths, [0] * args.faces, args.size)
        prepared.splits = ["train"] * args.faces
    size = prepared.faces.shape[1]
    print(
        f"{len(prepared.labels)} healthy faces of {size} px, each shown twice per epoch; batch {args.batch_size}; "
        f"{args.threads} thread(s); torch {torch.__version__}"
    )
    rates = {precision: rate(prepared, precision, args.epochs, args.batch_size) for precision in args.precision}
    baseline = rates.get("fp32")
    for precision, faces_s in rates.items():
        against = f", {faces_s / baseline:.2f}x fp32" if baseline else ""
        print(f"  {precision}: {args.batch_size / faces_s:.2f} s a step, {faces_s:.1f} faces/s{against}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
