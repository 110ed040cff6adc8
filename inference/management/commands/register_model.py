"""Register a classifier checkpoint, optionally evaluate it on labelled photos and activate it.

    python manage.py register_model CHECKPOINT --name NAME [--evaluate-on DIR] [--activate]
        [--thresholds-from VERSION | --thresholds JSON]

CHECKPOINT: train_classifier's file, or a plain torchvision ResNet-50 state_dict with a two-class head.
DIR: paralysis/ + no_paralysis/, or healthy/ + palsy folders (e.g. central/, peripheral/), of photos
the model never trained on. Activation needs a held-out ROC AUC of at least 0.80 and thresholds with
an inconclusive band (inference/services.py); otherwise the version stays registered, inactive, the
active one is unchanged, and the command exits non-zero saying why.
"""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from inference.models import ModelVersion
from inference.services import ModelRefused, model_activate, model_evaluate, model_register


class Command(BaseCommand):
    help = "Register a ResNet-50 checkpoint as a classifier version (evaluate and activate it on request)."

    def add_arguments(self, parser):
        parser.add_argument("checkpoint", type=Path)
        parser.add_argument("--name", required=True)
        parser.add_argument("--evaluate-on", type=Path, metavar="DIR", help="labelled photos it never trained on")
        parser.add_argument(
            "--thresholds",
            help='the fused rule as JSON, e.g. {"classifier_weight": 0.5, '
            '"fused_positive_at": 0.6, "fused_negative_below": 0.4}',
        )
        parser.add_argument("--thresholds-from", metavar="VERSION", help="copy the rule of a registered version")
        parser.add_argument("--activate", action="store_true")

    def handle(
        self,
        *args,
        checkpoint: Path,
        name: str,
        evaluate_on: Path | None,
        thresholds: str | None,
        thresholds_from: str | None,
        activate: bool,
        **options,
    ):
        rule = self._thresholds(thresholds, thresholds_from)
        version = None
        try:
            version = model_register(
                checkpoint=checkpoint,
                name=name,
                thresholds=rule,
                notes=f"registered by register_model from {checkpoint.name}",
            )
            self.stdout.write(f"registered {version.name} (sha256 {version.sha256[:12]}…), not active")
            if evaluate_on is not None:
                figures = model_evaluate(
                    version=version,
                    folder=evaluate_on,
                    progress=lambda items: tqdm(items, desc="evaluating", unit="photo"),
                )
                self.stdout.write(
                    f"held-out on {figures['source']}: {figures['scored']} photos scored, {figures['refused']} refused "
                    f"by the quality gate; ROC AUC classifier {figures['classifier']['roc_auc']:.3f}, asymmetry index "
                    f"{figures['asymmetry_index']['roc_auc']:.3f}, fused {figures['fused']['roc_auc']:.3f}"
                )
            if activate:
                model_activate(version=version)
                self.stdout.write(self.style.SUCCESS(f"{version.name} is now the active classifier"))
        except ModelRefused as exc:
            kept = " It stays registered, inactive; the active version is unchanged." if version is not None else ""
            raise CommandError(f"{exc}{kept}") from None

    @staticmethod
    def _thresholds(raw: str | None, source: str | None) -> dict:
        if raw and source:
            raise CommandError("give --thresholds or --thresholds-from, not both")
        if source:
            version = ModelVersion.objects.filter(name=source).first()
            if version is None:
                raise CommandError(f"no registered version is named {source!r}")
            return dict(version.thresholds)
        if raw:
            try:
                rule = json.loads(raw)
            except ValueError as exc:
                raise CommandError(f"--thresholds is not JSON: {exc}") from None
            if not isinstance(rule, dict):
                raise CommandError("--thresholds must be a JSON object")
            return rule
        return {}
