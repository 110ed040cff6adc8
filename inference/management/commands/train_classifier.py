"""Fine-tune ResNet-50 on aligned faces, evaluate it on a held-out split, register a model version.

    python manage.py train_classifier DATA_DIR [--epochs 60] [--image-size 224] [--activate]

DATA_DIR: train|val|test/paralysis|no_paralysis (the paper's layout) or paralysis/ + no_paralysis/
(split here into near-duplicate-aware folds: fold 0 tests, fold 1 validates, the rest trains). Writes
checkpoint, metrics.json, roc.png and confusion.png to --output-dir and registers the version
(active only with --activate).

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

from inference.engine import training
from inference.engine.classifier import CLASSES, NORMALISATIONS, CheckpointError, read_checkpoint
from inference.engine.decide import ASYMMETRY_ONLY_RULE
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
        parser.add_argument("--epochs", type=int, default=60)
        parser.add_argument("--batch-size", type=int, default=64)
        parser.add_argument("--image-size", type=int, default=224)
        parser.add_argument("--lr", type=float, default=2e-3)
        parser.add_argument("--normalisation", choices=NORMALISATIONS, default="imagenet",
                            help="per_face: standardise each face by its own brightness and contrast")
        parser.add_argument("--device", default="", help="cpu or cuda (default: cuda when present)")
        parser.add_argument("--weights", type=Path, help="ImageNet weights file (default: torch hub cache)")
        parser.add_argument("--limit-per-class", type=int, default=0, help="use at most N photos per class")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--name", default="")
        parser.add_argument("--output-dir", type=Path)
        parser.add_argument("--cache-dir", type=Path, help="keep aligned faces here between runs")
        parser.add_argument("--activate", action="store_true", help="make the new version the active one")
        parser.add_argument("--save-pack", type=Path, metavar="PACK",
                            help="align and split, write the faces to PACK for `python -m inference.engine.training`, stop")
        parser.add_argument("--checkpoint", type=Path,
                            help="skip training: evaluate and register this checkpoint, trained on the same split")

    def handle(self, *args, **options):
        import torch

        try:
            samples = training.discover(options["data_dir"])
        except FileNotFoundError as exc:
            raise CommandError(str(exc)) from None
        if options["limit_per_class"]:
            samples = _limit(samples, options["limit_per_class"], options["seed"])
        device = options["device"] or ("cuda" if torch.cuda.is_available() else "cpu")
        name = options["name"] or f"resnet50-{timezone.now():%Y%m%d-%H%M%S}"
        out_dir = options["output_dir"] or Path(settings.VAR_DIR) / "training" / name
        out_dir.mkdir(parents=True, exist_ok=True)
        self.stdout.write(f"{len(samples)} photos from {options['data_dir']}; device {device}; output {out_dir}")

        started = time.monotonic()
        prepared = training.prepare(samples, size=options["image_size"], cache_dir=options["cache_dir"],
                                    progress=lambda it: _progress(it, total=len(samples), desc="aligning faces"))
        checkpoint_in = self._trained_elsewhere(options["checkpoint"])
        training.group_split(prepared, seed=options["seed"])
        counts = {split: int(sum(1 for s in prepared.splits if s == split)) for split in training.SPLITS}
        crossing = training.leakage(prepared)
        self.stdout.write(f"faces: {len(prepared.labels)} usable, skipped {prepared.skipped or 'none'}; "
                          f"split {counts}; near-duplicate groups {len(set(prepared.groups.tolist()))}, "
                          f"groups crossing splits {crossing}")
        if crossing:
            self.stderr.write(f"warning: {crossing} groups of near-duplicate faces appear in more than one split "
                              "of the given layout: test figures will overstate accuracy")
            self.stdout.write("(near-duplicates cross the given splits: test figures overstate accuracy)")
        if counts["train"] == 0 or counts["test"] == 0:
            raise CommandError("not enough usable faces to train and test")
        if options["save_pack"]:
            training.save_pack(prepared, options["save_pack"])
            size_mb = options["save_pack"].stat().st_size / 1e6
            self.stdout.write(self.style.SUCCESS(f"wrote {options['save_pack']} ({size_mb:.1f} MB); train with "
                                                 f"python -m inference.engine.training {options['save_pack']} OUT_DIR"))
            return

        normalisation = options["normalisation"]
        if checkpoint_in is not None:
            model, trained, normalisation = checkpoint_in
            if trained.get("split_digest") != training.split_digest(prepared):
                raise CommandError(f"{options['checkpoint']} was trained on another split of the data (other photos, "
                                   "seed or faces found): its test figures would not be held out")
            history, weights = trained.get("history", []), None
            initial = trained.get("initial_weights", "unknown")
            device = f"{trained.get('device', 'unknown')} (trained elsewhere, torch {trained.get('torch', '?')})"
        else:
            weights = options["weights"] or imagenet_weights()
            if weights is not None and not weights.exists():
                raise CommandError(f"{weights} does not exist")
            model, history = training.train(
                prepared, epochs=options["epochs"], batch_size=options["batch_size"], lr=options["lr"], device=device,
                initial_weights=weights, seed=options["seed"], normalisation=normalisation, progress=_progress,
                log=self.stdout.write)
            initial = weights.name if weights else "none (from scratch)"

        val_x, val_y, val_asym = prepared.subset("val")
        test_x, test_y, test_asym = prepared.subset("test")
        if len(val_y) == 0 or len(set(val_y.tolist())) < 2:
            val_x, val_y, val_asym = test_x, test_y, test_asym  # tiny data sets: say so in the metrics
            self.stderr.write("validation split too small: thresholds fitted on the test split")
        val_prob = training.predict(model, val_x, device="cpu", normalisation=normalisation)
        test_prob = training.predict(model, test_x, device="cpu", normalisation=normalisation)
        thresholds = training.fit_thresholds(
            val_y, val_prob, val_asym, asymmetry_positive_at=ASYMMETRY_ONLY_RULE.asymmetry_positive_at,
            asymmetry_negative_below=ASYMMETRY_ONLY_RULE.asymmetry_negative_below)
        fused = training.fused_scores(test_prob, test_asym, weight=thresholds["classifier_weight"],
                                      positive_at=thresholds["asymmetry_positive_at"],
                                      negative_below=thresholds["asymmetry_negative_below"])
        metrics = {
            "classifier": training.classification_report(test_y, test_prob, 0.5),
            "asymmetry_index": training.classification_report(
                test_y, test_asym, ASYMMETRY_ONLY_RULE.asymmetry_positive_at),
            "fused": training.classification_report(test_y, fused, thresholds["fused_positive_at"]),
            "robustness": training.robustness(model, test_x, test_y, test_prob, normalisation=normalisation),
            "normalisation": normalisation,
            "history": history,
            "splits": counts,
            "skipped": prepared.skipped,
            "near_duplicate_groups": int(len(set(prepared.groups.tolist()))),
            "groups_crossing_splits": crossing,
            "initial_weights": initial,
            "device": device,
            "seconds": round(time.monotonic() - started, 1),
            "caveat": "Near-duplicate-aware split of an augmented data set whose classes come from different "
                      "sources; figures may still overstate accuracy on new patients.",
        }
        plots = training.save_plots(out_dir, {"classifier": (test_y, test_prob), "asymmetry index": (test_y, test_asym),
                                              "fused": (test_y, fused)},
                                    metrics["fused"]["confusion_matrix"]["matrix"])
        training.write_json(out_dir / "metrics.json", {"thresholds": thresholds, **metrics})

        checkpoint = out_dir / f"{name}.pt"
        torch.save(training.checkpoint_payload(
            model, input_size=options["image_size"], normalisation=normalisation,
            training={"split_digest": training.split_digest(prepared), "history": history, "initial_weights": initial,
                      "device": device, "epochs": len(history) - 1}), checkpoint)
        version, refused = self._register(name, checkpoint, options["image_size"], thresholds, metrics,
                                          options["activate"])
        self._report(metrics, thresholds, version, plots)
        if refused:
            raise CommandError(f"{refused} The version is registered; the active one is unchanged.")

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
            version = model_register(checkpoint=checkpoint, name=name, input_size=size, thresholds=thresholds,
                                     metrics={k: v for k, v in metrics.items() if k != "history"},
                                     notes=f"trained by train_classifier; initial weights {metrics['initial_weights']}")
        except ModelRefused as exc:
            raise CommandError(str(exc)) from None
        if activate:
            try:
                version = model_activate(version=version)
            except ModelRefused as exc:
                return version, str(exc)
        return version, ""

    def _report(self, metrics: dict, thresholds: dict, version: ModelVersion, plots) -> None:
        write = self.stdout.write
        write("\nHeld-out test split (" + metrics["caveat"] + ")")
        for key in ("classifier", "asymmetry_index", "fused"):
            report = metrics[key]
            write(f"  {key:<16} accuracy {report['accuracy']:.3f}  ROC AUC {report['roc_auc']:.3f}  "
                  f"sensitivity@90%spec {report['sensitivity_at_90_specificity']:.3f}")
        fused = metrics["fused"]
        write("  fused decision, per class:")
        for name in CLASSES:
            row = fused[name]
            write(f"    {name:<13} precision {row['precision']:.2f}  recall {row['recall']:.2f}  f1 {row['f1']:.2f}"
                  f"  support {row['support']}")
        write("  classifier under photo changes (a droop is unchanged by them; the mirror is the control):")
        for change, row in metrics["robustness"].items():
            write(f"    {change:<20} ROC AUC {row['roc_auc']:.3f}  mean P healthy {row['mean_p_healthy']:.3f}  "
                  f"paralysis {row['mean_p_paralysis']:.3f}  labels flipped {row['flipped']:.1%}")
        unstable = {change: row["flipped"] for change, row in metrics["robustness"].items()
                    if row["flipped"] > PHOTO_SENSITIVITY_WARNING}
        if unstable:
            worst = max(unstable, key=unstable.get)
            self.stderr.write(f"warning: the classifier's labels move with how the photo was taken ({worst}: "
                              f"{unstable[worst]:.0%} flipped); weigh that before activating this version")
        write(f"  thresholds: {thresholds}")
        write(f"  plots: {', '.join(str(p) for p in plots)}")
        state = "active" if version.is_active else "registered, not active (use --activate or the admin action)"
        write(self.style.SUCCESS(f"model version {version.name}: {state}"))


def _limit(samples, per_class: int, seed: int):
    import random

    rng = random.Random(seed)
    chosen = []
    for label in range(len(CLASSES)):
        group = [s for s in samples if s.label == label]
        rng.shuffle(group)
        chosen += group[:per_class]
    return chosen


def _progress(iterable, total=None, desc=""):
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, leave=False)


