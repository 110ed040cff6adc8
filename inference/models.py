"""The model registry: which classifier checkpoint the workers use, with its thresholds and metrics."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

# More held-out labels than this flipping under a photo change earns a warning (report and admin).
PHOTO_SENSITIVITY_WARNING = 0.10


class EvaluatedVersionLocked(ValueError):
    """Raised on saving a change to an evaluated version's checkpoint, hash or thresholds."""


class ModelVersion(models.Model):
    name = models.CharField(max_length=100, unique=True)
    architecture = models.CharField(max_length=40, default="resnet50")
    checkpoint = models.FileField(upload_to="models/")
    sha256 = models.CharField(max_length=64, help_text="Checked when a worker loads the file.")
    input_size = models.PositiveIntegerField(default=224)
    thresholds = models.JSONField(
        default=dict, blank=True, help_text="Decision rule thresholds fitted on validation data."
    )
    metrics = models.JSONField(default=dict, blank=True, help_text="Held-out evaluation figures.")
    notes = models.TextField(blank=True)
    is_active = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    # Set by a worker that could not load the checkpoint (it then screens with the asymmetry rule
    # alone, and says so in each result); cleared by the next successful load. The admin banner and
    # /healthz show it.
    load_error = models.CharField(max_length=500, blank=True)
    load_error_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["is_active"], condition=Q(is_active=True), name="one_active_model"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.architecture}{', active' if self.is_active else ''})"

    def save(self, *args, **kwargs):
        """An evaluated version cannot change under its metrics: its file and thresholds are what the
        figures were measured with. A new file or new thresholds are a new version, evaluated again."""
        if self.pk is not None:
            stored = ModelVersion.objects.filter(pk=self.pk).values("checkpoint", "sha256", "thresholds", "metrics")
            stored = stored.first()
            if stored is not None and ModelVersion(metrics=stored["metrics"]).is_evaluated():
                changed = [
                    field
                    for field, now in (
                        ("checkpoint", self.checkpoint.name),
                        ("sha256", self.sha256),
                        ("thresholds", self.thresholds),
                    )
                    if stored[field] != now
                ]
                if changed:
                    raise EvaluatedVersionLocked(
                        f"{self.name} has a held-out evaluation: its {' and '.join(changed)} cannot change. "
                        "Register the new file or thresholds as a new version and evaluate it."
                    )
        super().save(*args, **kwargs)

    def is_evaluated(self) -> bool:
        """Whether the version carries a held-out evaluation (train_classifier's test split or an
        --evaluate-on run): from then on its file and thresholds are fixed (see save)."""
        metrics = self.metrics or {}
        return bool(metrics.get("evaluation") or metrics.get("classifier"))

    def photo_sensitivity(self) -> tuple[str, float] | None:
        """The photo change (metrics["robustness"], train_classifier) that flipped the most held-out
        labels, with the share flipped; None for versions evaluated without it."""
        rows = {
            name: row.get("flipped")
            for name, row in (self.metrics or {}).get("robustness", {}).items()
            if isinstance(row, dict) and isinstance(row.get("flipped"), (int, float))
        }
        if not rows:
            return None
        worst = max(rows, key=rows.get)
        return worst, float(rows[worst])
