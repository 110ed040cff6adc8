"""`python -m inference.engine.training PACK OUT`: fit on a pack where only PyTorch is installed."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from inference.engine.classifier import NORMALISATIONS
from inference.engine.evaluation import deal_folds, person_of, roc_auc
from inference.engine.training.data import fold_splits, load_pack, photo_name, split_digest
from inference.engine.training.fitting import (
    PRECISION_HELP,
    PRECISIONS,
    RECIPE,
    arithmetic,
    checkpoint_payload,
    predict,
    train,
)


def main(argv: list[str] | None = None) -> int:
    """Fit on a pack written by ``manage.py train_classifier DATA_DIR --save-pack PACK``, where only
    PyTorch is installed (a GPU machine): writes OUT/fold<i>.pt per cross-validation round (fold 0 is
    the pack's own test split) and OUT/cv.npz, every model's P(paralysis) for every photo. Bring
    fold0.pt back and evaluate and register it with ``train_classifier DATA_DIR --checkpoint``."""
    import argparse
    import time

    import torch
    from tqdm import tqdm

    parser = argparse.ArgumentParser(prog="python -m inference.engine.training", description=main.__doc__)
    parser.add_argument("pack", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--epochs", type=int, default=RECIPE.epochs)
    parser.add_argument("--batch-size", type=int, default=RECIPE.batch_size)
    parser.add_argument("--lr", type=float, default=RECIPE.lr)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--weights", type=Path, help="ImageNet weights (.pth or .safetensors)")
    parser.add_argument("--folds", default="0", help="comma-separated test folds to train, e.g. 0,1,2,3,4")
    parser.add_argument("--weight-decay", type=float, default=RECIPE.weight_decay)
    parser.add_argument("--mixup", type=float, default=RECIPE.mixup, help="Beta(a, a) of mixup; 0: off")
    parser.add_argument("--erase", type=float, default=RECIPE.erase, help="share of faces with a noise patch")
    parser.add_argument("--ema", type=float, default=RECIPE.ema, help="decay of the weights' moving average; 0: off")
    parser.add_argument(
        "--normalisation",
        choices=NORMALISATIONS,
        default=RECIPE.normalisation,
        help="per_face: standardise each face by its own brightness and contrast",
    )
    parser.add_argument(
        "--synthetic", type=float, default=RECIPE.synthetic, help="share of healthy faces given a drawn droop; 0: off"
    )
    parser.add_argument(
        "--real-positives", type=float, default=RECIPE.real_positives, help="real paralysis photos per healthy face"
    )
    parser.add_argument("--grey", type=float, default=RECIPE.grey, help="share of faces turned to greyscale")
    parser.add_argument(
        "--brightness", type=float, default=RECIPE.brightness, help="brightness and contrast scaled by 1 ± this"
    )
    parser.add_argument(
        "--consistency",
        type=float,
        default=RECIPE.consistency,
        help="weight of the term holding a face's logit under brightening and darkening; 0: off",
    )
    parser.add_argument("--relit", type=int, default=RECIPE.relit, help="relit copies per step for --consistency")
    parser.add_argument("--keep", choices=("last", "best"), default=RECIPE.keep, help="which epoch's weights to keep")
    parser.add_argument("--precision", choices=PRECISIONS, default=RECIPE.precision, help=PRECISION_HELP)
    parser.add_argument(
        "--validate",
        choices=("every", "last"),
        default=RECIPE.validate,
        help="score the validation split after every epoch or only the last (with --keep last: same weights)",
    )
    parser.add_argument(
        "--unpaired",
        action="store_true",
        help="mix drooped faces and real paralysis photos in each batch instead of pairing each face with itself",
    )
    parser.add_argument(
        "--watch",
        type=Path,
        help="a pack of other photos (e.g. palda-dev's) scored after every epoch: OUT/watch.npz, not used to choose",
    )
    parser.add_argument(
        "--clinical",
        type=Path,
        help="a pack of real clinical photos (palda-dev's) learnt from beside the pairs, healthy and palsy alike",
    )
    parser.add_argument(
        "--clinical-fold",
        type=int,
        default=-1,
        help="hold out this fold of the clinical pack's people (dealt into --clinical-folds per class); -1: none",
    )
    parser.add_argument("--clinical-folds", type=int, default=2)
    parser.add_argument("--clinical-per-step", type=int, default=2, help="clinical photos of each class per step")
    parser.add_argument(
        "--start-from",
        type=Path,
        help="fine-tune this classifier checkpoint (one trained on the same split: the same --folds)",
    )
    parser.add_argument("--seed", type=int, default=RECIPE.seed)
    parser.add_argument("--time-budget", type=float, default=0, help="seconds; start no fold that would end later")
    args = parser.parse_args(argv)
    start_from, trained_on = None, {}
    if args.start_from:
        payload = torch.load(args.start_from, map_location="cpu", weights_only=True)
        start_from = {k: v.float() if v.is_floating_point() else v for k, v in payload["state_dict"].items()}
        trained_on = payload.get("training", {})

    started = time.monotonic()
    torch.backends.cudnn.benchmark = True
    prepared = load_pack(args.pack)
    size = int(prepared.faces.shape[1])
    folds = [int(f) for f in args.folds.split(",")]
    if prepared.folds is None and folds != [0]:
        parser.error("this pack came with its own split: only --folds 0")
    if args.start_from:
        for fold in folds:
            splits = fold_splits(prepared, fold) if prepared.folds is not None else prepared.splits
            if trained_on.get("split_digest") != split_digest(prepared, splits):
                parser.error(
                    f"{args.start_from} was trained on another split than fold {fold}'s: "
                    "fine-tuning it would train on that fold's test photos"
                )
    args.out.mkdir(parents=True, exist_ok=True)
    watch = load_pack(args.watch) if args.watch else None
    clinical, clinical_record = None, {}
    if args.clinical:
        clinical, clinical_record = _clinical(args)
        print(
            f"clinical photos: {len(clinical[1])} of {args.clinical.name} learnt from "
            f"({clinical_record['held_out_photos']} of its people's photos held out: fold {args.clinical_fold})"
        )
    print(
        f"{len(prepared.labels)} faces of {size} px from {args.pack}; device {args.device} "
        f"({torch.cuda.get_device_name() if args.device.startswith('cuda') else 'cpu'}); torch {torch.__version__}"
    )
    probabilities = np.full((max(folds) + 1, len(prepared.labels)), np.nan, dtype=np.float32)
    seconds_per_fold = 0.0
    for fold in folds:
        elapsed = time.monotonic() - started
        if args.time_budget and seconds_per_fold and elapsed + seconds_per_fold > args.time_budget:
            print(f"stopping before fold {fold}: {elapsed:.0f} s spent of a {args.time_budget:.0f} s budget")
            break
        fold_started = time.monotonic()
        splits = fold_splits(prepared, fold) if prepared.folds is not None else prepared.splits
        trained = set(clinical_record.get("trained_photos", ()))
        on_epoch = _watcher(watch, args, fold, trained) if watch is not None else None
        model, history = train(
            prepared,
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            device=args.device,
            initial_weights=args.weights,
            seed=args.seed + fold,
            splits=splits,
            weight_decay=args.weight_decay,
            mixup=args.mixup,
            erase=args.erase,
            ema=args.ema,
            normalisation=args.normalisation,
            start_from=start_from,
            synthetic=args.synthetic,
            real_positives=args.real_positives,
            grey=args.grey,
            brightness=args.brightness,
            paired=not args.unpaired,
            keep=args.keep,
            clinical=clinical,
            clinical_per_step=args.clinical_per_step,
            consistency=args.consistency,
            relit=args.relit,
            precision=args.precision,
            validate=args.validate,
            state_dir=args.out / f"state-fold{fold}",
            on_epoch=on_epoch,
            progress=lambda it, **kw: tqdm(it, leave=False, mininterval=5, **kw),
        )
        model.to(args.device)
        probabilities[fold] = predict(
            model, prepared.faces, batch_size=256, device=args.device, normalisation=args.normalisation
        )
        model.to("cpu")
        seconds_per_fold = time.monotonic() - fold_started
        test = np.array([s == "test" for s in splits])
        test_auc = roc_auc(prepared.labels[test], probabilities[fold][test])
        training = {
            "fold": fold,
            "split_digest": split_digest(prepared, splits),
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "lr": args.lr,
            "seed": args.seed + fold,
            "history": history,
            "weight_decay": args.weight_decay,
            "mixup": args.mixup,
            "erase": args.erase,
            "ema": args.ema,
            "synthetic": args.synthetic,
            "real_positives": args.real_positives,
            "grey": args.grey,
            "brightness": args.brightness,
            "paired": not args.unpaired,
            **({"consistency": args.consistency, "relit": args.relit} if args.consistency else {}),
            **({"clinical": clinical_record} if clinical_record else {}),
            "initial_weights": (
                f"fine-tuned from {args.start_from.name}"
                if args.start_from
                else args.weights.name
                if args.weights
                else "none (from scratch)"
            ),
            "device": args.device,
            "precision": arithmetic(args.precision, args.device),
            "torch": str(torch.__version__),
            "seconds": round(seconds_per_fold, 1),
            "test_auc_on_pack": test_auc,
        }
        torch.save(
            checkpoint_payload(model, input_size=size, training=training, normalisation=args.normalisation),
            args.out / f"fold{fold}.pt",
        )
        np.savez(
            args.out / "cv.npz",
            probabilities=probabilities,
            labels=prepared.labels,
            paths=np.array(prepared.paths),
            folds=prepared.folds if prepared.folds is not None else np.zeros(len(prepared.labels), int),
        )
        print(
            f"fold {fold}: kept epoch {history[-1]['best_epoch']} ({history[-1]['kept']}), "
            f"test ROC AUC {test_auc:.4f}, "
            f"{seconds_per_fold:.0f} s"
        )
    print(f"wall time {time.monotonic() - started:.0f} s")
    return 0


def _clinical(args) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], dict]:
    """The clinical pack's photos to learn from: every person's, or all but one fold's (people dealt
    into folds per class, so the held-out photos score a model that never saw their person)."""
    pack = load_pack(args.clinical)
    if pack.landmarks is None:
        raise SystemExit(f"{args.clinical} has no landmarks: write it again with train_classifier --save-pack")
    kinds = np.array(pack.kinds or [str(label) for label in pack.labels])
    people = np.array([person_of(Path(p).parent.name, Path(p).name) for p in pack.paths])
    folds = deal_folds(people, kinds, args.clinical_folds, seed=args.seed)
    learn = folds != args.clinical_fold
    record = {
        "pack": args.clinical.name,
        "folds": args.clinical_folds,
        "held_out_fold": args.clinical_fold,
        "per_step": args.clinical_per_step,
        "held_out_photos": int((~learn).sum()),
        "trained_photos": sorted(photo_name(p) for p, keep in zip(pack.paths, learn) if keep),
    }
    return (pack.faces[learn], pack.labels[learn], pack.landmarks[learn]), record


def _watcher(watch, args, fold, trained=frozenset()):
    """After each epoch: P(paralysis) of the watched photos (mirror-averaged) into OUT/watch-fold<i>.npz,
    with their ROC AUC printed (of those not ``trained`` on, by photo name), and the epoch's kept weights
    in fp16 under OUT/epochs-fold<i>/."""
    import torch

    unseen = np.array([photo_name(p) not in trained for p in watch.paths])
    rows: dict[int, np.ndarray] = {}
    folder = args.out / f"epochs-fold{fold}"
    folder.mkdir(parents=True, exist_ok=True)

    def on_epoch(epoch, model):
        p = predict(model, watch.faces, batch_size=64, device=args.device, normalisation=args.normalisation)
        rows[epoch] = p
        np.savez(
            args.out / f"watch-fold{fold}.npz",
            epochs=np.array(sorted(rows)),
            probabilities=np.stack([rows[e] for e in sorted(rows)]),
            labels=watch.labels,
            paths=np.array(watch.paths),
            kinds=np.array(watch.kinds or [""] * len(watch.labels)),
            unseen=unseen,
        )
        torch.save(
            {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()},
            folder / f"epoch{epoch}.pt",
        )
        print(
            f"  watched {args.watch.name}: ROC AUC {roc_auc(watch.labels[unseen], p[unseen]):.4f} "
            f"on {int(unseen.sum())} photos never trained on",
            flush=True,
        )

    return on_epoch


if __name__ == "__main__":
    raise SystemExit(main())
