"""Fine-tune ResNet-50 on aligned faces, evaluate it on a held-out split, register a model version.

    python manage.py train_classifier DATA_DIR [--epochs 30] [--image-size 128] [--precision bf16] [--activate]

DATA_DIR: train|val|test/paralysis|no_paralysis (the paper's layout) or paralysis/ + no_paralysis/
(split here into near-duplicate-aware folds: fold 0 tests, fold 1 validates, the rest trains). Writes
checkpoint, metrics.json, roc.png and confusion.png to --output-dir and registers the version
(active only with --activate). Progress (tqdm: epoch, loss, faces/s, time left) goes to the terminal;
the whole training state is written to OUTPUT_DIR/state/ after every epoch, and the same command run
again with the same --output-dir resumes after the last finished epoch.

By default each epoch shows every healthy training face, half of them with a one-sided droop drawn at
their landmarks (positives beside themselves undrooped, inference/engine/training/synthetic.py), and a
quarter as many real paralysis photos (--synthetic 0 trains on the photos as labelled).

Training on a machine without MediaPipe (a GPU box with PyTorch only) takes three steps:
    manage.py train_classifier DATA_DIR --save-pack faces.npz          # align and split here
    python -m inference.engine.training faces.npz out/ --folds 0,1,2,3,4   # there
    manage.py train_classifier DATA_DIR --checkpoint out/fold0.pt      # evaluate and register here
"""

from __future__ import annotations

import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from inference.engine.classifier import NORMALISATIONS, CheckpointError, read_checkpoint
from inference.engine.training import data, fitting, reporting
from inference.engine.training.fitting import RECIPE
from inference.models import PHOTO_SENSITIVITY_WARNING, ModelVersion
from inference.services import ModelRefused, model_activate, model_register


def imagenet_weights() -> Path | None:
    """torchvision's ResNet-50 ImageNet file, if someone put it in the torch hub cache."""
    import torch

    folder = Path(torch.hub.get_dir()) / "checkpoints"
    found = sorted(folder.glob("resnet50-*.pth")) if folder.is_dir() else []
    return found[-1] if found else None


class Command(BaseCommand):
    help = "Train the ResNet-50 classifier on a folder of face photos and register the new model version."

    def add_arguments(self, parser):
        parser.add_argument("data_dir", type=Path)
        parser.add_argument("--epochs", type=int, default=RECIPE.epochs)
        parser.add_argument("--batch-size", type=int, default=RECIPE.batch_size)
        parser.add_argument("--image-size", type=int, default=RECIPE.image_size)
        parser.add_argument("--lr", type=float, default=RECIPE.lr)
        parser.add_argument(
            "--normalisation",
            choices=NORMALISATIONS,
            default=RECIPE.normalisation,
            help="per_face: standardise each face by its own brightness and contrast",
        )
        parser.add_argument(
            "--synthetic",
            type=float,
            default=RECIPE.synthetic,
            help="share of healthy faces given a drawn droop; 0: off",
        )
        parser.add_argument(
            "--real-positives", type=float, default=RECIPE.real_positives, help="real paralysis photos per healthy face"
        )
        parser.add_argument("--device", default="", help="cpu or cuda (default: cuda when present)")
        parser.add_argument(
            "--precision", choices=fitting.PRECISIONS, default=RECIPE.precision, help=fitting.PRECISION_HELP
        )
        parser.add_argument("--weights", type=Path, help="ImageNet weights file (default: torch hub cache)")
        parser.add_argument("--limit-per-class", type=int, default=0, help="use at most N photos per class")
        parser.add_argument("--seed", type=int, default=RECIPE.seed)
        parser.add_argument("--name", default="")
        parser.add_argument("--output-dir", type=Path)
        parser.add_argument("--cache-dir", type=Path, help="keep aligned faces here between runs")
        parser.add_argument("--activate", action="store_true", help="make the new version the active one")
        parser.add_argument(
            "--save-pack",
            type=Path,
            metavar="PACK",
            help="align and split, write the faces to PACK for `python -m inference.engine.training`, stop",
        )
        parser.add_argument(
            "--photo-fit-only",
            action="store_true",
            help="landmarks from the photo's own fit, without the canonical refits (as before issue 28): the "
            "near-duplicate groups, and so the split, that resnet50-droops128-v1 and v2 were trained and "
            "evaluated on (fold 0 digest 26e69dfe...); the refits move the landmarks and with them the split",
        )
        parser.add_argument(
            "--checkpoint",
            type=Path,
            help="skip training: evaluate and register this checkpoint, trained on the same split",
        )

    def handle(self, *args, **options):
        import torch

        started = time.monotonic()
        checkpoint_in = self._trained_elsewhere(options["checkpoint"])
        prepared = self._prepared(options)
        if options["save_pack"]:
            data.save_pack(prepared, options["save_pack"])
            size_mb = options["save_pack"].stat().st_size / 1e6
            self.stdout.write(
                self.style.SUCCESS(
                    f"wrote {options['save_pack']} ({size_mb:.1f} MB); train with "
                    f"python -m inference.engine.training {options['save_pack']} OUT_DIR"
                )
            )
            return
        name = options["name"] or f"resnet50-{timezone.now():%Y%m%d-%H%M%S}"
        out_dir = options["output_dir"] or Path(settings.VAR_DIR) / "training" / name
        out_dir.mkdir(parents=True, exist_ok=True)

        if checkpoint_in is not None:
            model, trained, normalisation = checkpoint_in
            if trained.get("split_digest") != data.split_digest(prepared):
                raise CommandError(
                    f"{options['checkpoint']} was trained on another split of the data (other photos, "
                    "seed or faces found): its test figures would not be held out"
                )
            history, initial = trained.get("history", []), trained.get("initial_weights", "unknown")
            precision = trained.get("precision", "unknown")
            device = f"{trained.get('device', 'unknown')} (trained elsewhere, torch {trained.get('torch', '?')})"
        else:
            normalisation = options["normalisation"]
            device = options["device"] or ("cuda" if torch.cuda.is_available() else "cpu")
            weights = options["weights"] or imagenet_weights()
            if weights is not None and not weights.exists():
                raise CommandError(f"{weights} does not exist")
            precision = fitting.arithmetic(options["precision"], device)
            self.stdout.write(f"training on {device} in {precision}; output {out_dir}")
            model, history = fitting.train(
                prepared,
                epochs=options["epochs"],
                batch_size=options["batch_size"],
                lr=options["lr"],
                device=device,
                initial_weights=weights,
                seed=options["seed"],
                normalisation=normalisation,
                synthetic=options["synthetic"],
                real_positives=options["real_positives"],
                precision=options["precision"],
                state_dir=out_dir / "state",
                progress=_progress,
                log=self.stdout.write,
            )
            initial = weights.name if weights else "none (from scratch)"

        judged = reporting.held_out(model, prepared, normalisation=normalisation)
        if judged.thresholds_on_test:
            self.stderr.write("validation split too small: thresholds fitted on the test split")
        metrics = {
            **judged.metrics,
            "history": history,
            "splits": data.split_counts(prepared),
            "skipped": prepared.skipped,
            "near_duplicate_groups": int(len(set(prepared.groups.tolist()))),
            "groups_crossing_splits": data.leakage(prepared),
            "initial_weights": initial,
            "device": device,
            "precision": precision,
            "seconds": round(time.monotonic() - started, 1),
        }
        plots = reporting.save_plots(out_dir, judged.curves, metrics["fused"]["confusion_matrix"]["matrix"])
        reporting.write_json(out_dir / "metrics.json", {"thresholds": judged.thresholds, **metrics})
        checkpoint = out_dir / f"{name}.pt"
        torch.save(
            fitting.checkpoint_payload(
                model,
                input_size=options["image_size"],
                normalisation=normalisation,
                training={
                    "split_digest": data.split_digest(prepared),
                    "history": history,
                    "initial_weights": initial,
                    "device": device,
                    "precision": precision,
                    "epochs": len(history) - 1,
                },
            ),
            checkpoint,
        )

        version, refused = self._register(
            name, checkpoint, options["image_size"], judged.thresholds, metrics, options["activate"]
        )
        self._report(metrics, judged.thresholds, version, plots)
        self.stdout.write(f"wall time {time.monotonic() - started:.0f} s")
        if refused:
            raise CommandError(f"{refused} The version is registered; the active one is unchanged.")

    def _prepared(self, options) -> data.PreparedSet:
        """The photos found, aligned and split, with a word on near-duplicates crossing the splits."""
        try:
            samples = data.discover(options["data_dir"])
        except FileNotFoundError as exc:
            raise CommandError(str(exc)) from None
        if options["limit_per_class"]:
            samples = data.limit_per_class(samples, options["limit_per_class"], seed=options["seed"])
        self.stdout.write(f"{len(samples)} photos from {options['data_dir']}")
        from inference.engine.face import FaceMeshDetector

        prepared = data.prepare(
            samples,
            size=options["image_size"],
            detector=FaceMeshDetector(jitters=()) if options.get("photo_fit_only") else None,
            cache_dir=options["cache_dir"],
            progress=lambda it: _progress(it, total=len(samples), desc="aligning faces"),
        )
        data.group_split(prepared, seed=options["seed"])
        counts, crossing = data.split_counts(prepared), data.leakage(prepared)
        self.stdout.write(
            f"faces: {len(prepared.labels)} usable, skipped {prepared.skipped or 'none'}; "
            f"split {counts}; near-duplicate groups {len(set(prepared.groups.tolist()))}, "
            f"groups crossing splits {crossing}"
        )
        if crossing:
            self.stderr.write(
                f"warning: {crossing} groups of near-duplicate faces appear in more than one split "
                "of the given layout: test figures will overstate accuracy"
            )
            self.stdout.write("(near-duplicates cross the given splits: test figures overstate accuracy)")
        if counts["train"] == 0 or counts["test"] == 0:
            raise CommandError("not enough usable faces to train and test")
        return prepared

    def _trained_elsewhere(self, path: Path | None):
        """The model and training record of a checkpoint made by `python -m inference.engine.training`."""
        if path is None:
            return None
        try:
            payload, model = read_checkpoint(path)
        except CheckpointError as exc:
            raise CommandError(str(exc)) from None
        return model, payload.get("training", {}), payload.get("normalisation", "imagenet")

    def _register(self, name, checkpoint: Path, size: int, thresholds: dict, metrics: dict, activate: bool):
        """The registered version, and why activating it was refused ("" when it was not asked or not refused)."""
        try:
            version = model_register(
                checkpoint=checkpoint,
                name=name,
                input_size=size,
                thresholds=thresholds,
                metrics={k: v for k, v in metrics.items() if k != "history"},
                notes=f"trained by train_classifier; initial weights {metrics['initial_weights']}",
            )
        except ModelRefused as exc:
            raise CommandError(str(exc)) from None
        if activate:
            try:
                version = model_activate(version=version)
            except ModelRefused as exc:
                return version, str(exc)
        return version, ""

    def _report(self, metrics: dict, thresholds: dict, version: ModelVersion, plots) -> None:
        for line in reporting.summary_lines(metrics, thresholds):
            self.stdout.write(line)
        unstable = {
            change: row["flipped"]
            for change, row in metrics["robustness"].items()
            if row["flipped"] > PHOTO_SENSITIVITY_WARNING
        }
        if unstable:
            worst = max(unstable, key=unstable.get)
            self.stderr.write(
                f"warning: the classifier's labels move with how the photo was taken ({worst}: "
                f"{unstable[worst]:.0%} flipped); weigh that before activating this version"
            )
        self.stdout.write(f"  plots: {', '.join(str(p) for p in plots)}")
        state = "active" if version.is_active else "registered, not active (use --activate or the admin action)"
        self.stdout.write(self.style.SUCCESS(f"model version {version.name}: {state}"))


def _progress(iterable, total=None, desc=""):
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, leave=False)
