"""The model registry: which classifier checkpoint the workers use, with its thresholds and metrics."""

from __future__ import annotations

from django.db import models
from django.db.models import Q


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

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["is_active"], condition=Q(is_active=True), name="one_active_model"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.architecture}{', active' if self.is_active else ''})"
