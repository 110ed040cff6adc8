"""A scan (one uploaded photo of a patient's face) and the result of analysing it."""

from __future__ import annotations

import uuid
from datetime import datetime

from django.conf import settings
from django.db import models
from django.urls import reverse

from inference.engine import decide
from inference.engine.decide import (
    applied_to_result,
    applied_wording,
    explain_result,
    healthy_below_of,
    pattern_advice,
)


def _private_image_path(instance: models.Model, filename: str) -> str:
    # The client's file name is never used: it may carry patient data or path tricks.
    now = datetime.now()
    return f"scans/{now:%Y/%m}/{uuid.uuid4().hex}.{filename.rsplit('.', 1)[-1].lower()}"


class Scan(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        PROCESSING = "processing", "Analysing"
        DONE = "done", "Done"
        REJECTED = "rejected", "Rejected"
        FAILED = "failed", "Failed"

    patient = models.ForeignKey("portal.Patient", on_delete=models.PROTECT, related_name="scans")
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="uploaded_scans"
    )
    referring_physician = models.ForeignKey(
        "portal.Physician", null=True, blank=True, on_delete=models.SET_NULL, related_name="referred_scans"
    )
    note = models.TextField(blank=True, max_length=2000)
    # "When was the person last seen without this weakness?" (scans/urgency.py): null when not known.
    # Given with the photo, and editable by the care team (who and when recorded below).
    onset_at = models.DateTimeField(null=True, blank=True)
    onset_recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The file as it was sent, kept only until the worker has decoded it (the web process reads its
    # headers, never its pixels): then `image`, the clean copy, replaces it.
    upload = models.FileField(upload_to=_private_image_path, blank=True)
    # The photo: upright, re-encoded as JPEG without any metadata. Empty until the worker decoded it.
    image = models.FileField(upload_to=_private_image_path, blank=True)
    image_sha256 = models.CharField(max_length=64, blank=True)
    image_width = models.PositiveIntegerField()
    image_height = models.PositiveIntegerField()
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED, db_index=True)
    status_reason = models.CharField(max_length=300, blank=True)
    uploaded_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    # The alert this scan raised or joined (repeated positives within an episode share one alert).
    episode_alert = models.ForeignKey(
        "alerts.Alert", null=True, blank=True, on_delete=models.SET_NULL, related_name="scans"
    )
    # A guided exam's pose photos (ScanPose), counted: {"brows_raised": 2, "smile": 1}; {} for a photo alone.
    # Written with them, so that no list or answer reads the poses to say so.
    pose_frames = models.JSONField(default=dict, blank=True)
    # The uploader's Idempotency-Key (the IETF draft's header): a retried upload answers this scan
    # instead of making a second one.
    idempotency_key = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["-uploaded_at", "-id"]
        indexes = [models.Index(fields=["patient", "-uploaded_at"])]
        constraints = [
            models.UniqueConstraint(
                fields=["uploaded_by", "idempotency_key"],
                condition=~models.Q(idempotency_key=""),
                name="one_scan_per_idempotency_key",
            )
        ]

    def __str__(self) -> str:
        return f"Scan {self.pk} of patient {self.patient_id} ({self.status})"

    def get_absolute_url(self) -> str:
        return reverse("scans:detail", args=[self.pk])


class ScanPose(models.Model):
    """A pose photo of a guided exam (issue 41): the same face, in the same sitting, as its scan's photo
    at rest, measured against it (inference/engine/exam.py). One to three frames of each pose."""

    class Pose(models.TextChoices):
        BROWS_RAISED = "brows_raised", "Eyebrows raised"
        EYES_CLOSED = "eyes_closed", "Eyes closed tightly"
        SMILE = "smile", "A big smile"

    MAX_FRAMES = 3

    scan = models.ForeignKey(Scan, on_delete=models.CASCADE, related_name="poses")
    pose = models.CharField(max_length=12, choices=Pose.choices)
    frame = models.PositiveSmallIntegerField()
    # As for the scan: the file as sent until the worker decoded it, then the clean JPEG.
    upload = models.FileField(upload_to=_private_image_path, blank=True)
    image = models.FileField(upload_to=_private_image_path, blank=True)

    class Meta:
        ordering = ["scan", "pose", "frame"]
        constraints = [models.UniqueConstraint(fields=["scan", "pose", "frame"], name="one_photo_per_pose_frame")]

    def __str__(self) -> str:
        return f"{self.get_pose_display()} (frame {self.frame + 1}) of scan {self.scan_id}"


class ScanResult(models.Model):
    class Label(models.TextChoices):
        PARALYSIS = "paralysis", "Signs of facial paralysis"
        NO_PARALYSIS = "no_paralysis", "No signs detected"
        INCONCLUSIVE = "inconclusive", "Inconclusive"

    class Severity(models.TextChoices):  # the engine's order (inference.engine.decide.SEVERITIES)
        NONE = decide.NONE, "None"
        MILD = decide.MILD, "Mild"
        MODERATE = decide.MODERATE, "Moderate"
        SEVERE = decide.SEVERE, "Severe"

    class Pattern(models.TextChoices):
        CENTRAL = "central", "Central (lower face, forehead spared): the stroke pattern"
        PERIPHERAL = "peripheral", "Peripheral (the whole half of the face)"
        UNDETERMINED = "undetermined", "Undetermined"

    scan = models.OneToOneField(Scan, on_delete=models.CASCADE, related_name="result")
    label = models.CharField(max_length=16, choices=Label.choices)
    score = models.FloatField(help_text="0..1: how strongly the evidence points to paralysis.")
    severity = models.CharField(max_length=10, choices=Severity.choices)
    affected_side = models.CharField(max_length=10, blank=True)
    # Named for positive and inconclusive results only; blank for a negative one.
    pattern = models.CharField(max_length=12, choices=Pattern.choices, blank=True)
    measurements = models.JSONField(default=dict)
    quality = models.JSONField(default=dict)
    classifier = models.JSONField(default=dict, help_text="Classifier stage output, or why it was skipped.")
    decision = models.JSONField(default=dict, help_text="The rule and thresholds that produced the label.")
    model_version = models.ForeignKey(
        "inference.ModelVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="results"
    )
    engine_version = models.CharField(max_length=60)
    overlay = models.FileField(upload_to=_private_image_path, blank=True)
    heatmap = models.FileField(upload_to=_private_image_path, blank=True)
    # A possible stroke (scans/urgency.py): decided when the result is recorded, from its evidence, the
    # scan's onset and the patient's known palsy; decided again when the care team corrects the onset.
    urgent = models.BooleanField(default=False)
    urgency_reason = models.CharField(max_length=300, blank=True)
    # A guided exam's measurements against the photo at rest (inference/engine/exam.py ExamResult.to_dict):
    # movement per side, the eFACE-style items, a House-Brackmann estimate, refusals. {} for a photo alone.
    exam = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.get_label_display()} ({self.score:.2f}) for scan {self.scan_id}"

    @property
    def is_positive(self) -> bool:
        return self.label == self.Label.PARALYSIS

    @property
    def needs_clinician(self) -> bool:
        """Positive results raise an alert; inconclusive ones a review item: neither is left unseen."""
        return self.label in {self.Label.PARALYSIS, self.Label.INCONCLUSIVE}

    @property
    def pattern_advice(self) -> str:
        """The clinicians' wording (a caregiver reads scans.wording.lay_advice instead)."""
        return pattern_advice(self.pattern, inconclusive=self.label == self.Label.INCONCLUSIVE)

    @property
    def is_stroke_pattern(self) -> bool:
        return self.pattern == self.Pattern.CENTRAL

    @property
    def is_urgent(self) -> bool:
        """Treated as a possible stroke, on the urgent path (the shortest deadline, the top of the feed):
        ``urgent``, decided by scans/urgency.py (``urgency_reason`` says why)."""
        return self.urgent

    @property
    def quality_warnings(self) -> list[dict]:
        """[{"code", "message"}]: what was imperfect about a photo that could still be measured."""
        return list((self.quality or {}).get("warnings", []))

    @property
    def model_version_name(self) -> str:
        """Every result names what produced it: the classifier version, or the engine alone."""
        if self.model_version_id:
            return f"{self.model_version.name} + {self.engine_version}"
        return f"{self.engine_version} (asymmetry only, no classifier)"

    def _measured(self, key: str) -> float | None:
        value = (self.measurements or {}).get(key)
        return float(value) if isinstance(value, (int, float)) else None

    @property
    def asymmetry_index(self) -> float | None:
        return self._measured("asymmetry_index")

    @property
    def index_repeatability(self) -> float | None:
        """The index's 95% repeatability (inference/engine/repeatability.py); None for a result
        stored before results carried one."""
        return self._measured("index_repeatability")

    @property
    def index_interval(self) -> list[float] | None:
        """[index - h, index + h], h the index's 95% repeatability: the range the label is judged on."""
        interval = (self.measurements or {}).get("index_interval")
        return [float(v) for v in interval] if isinstance(interval, list) and len(interval) == 2 else None

    @property
    def healthy_below(self) -> float | None:
        """The healthy range's upper end under this result's rule (decide.healthy_below_of)."""
        return healthy_below_of(self.decision or {})

    @property
    def applied_thresholds(self) -> tuple[float | None, float | None] | None:
        """This result's rule as applied to its photo: (negative below, positive from) in index units
        (decide.applied_thresholds); None for a result decided before results carried their
        repeatability."""
        return applied_to_result(classifier=self.classifier, decision=self.decision)

    @property
    def applied_rule(self) -> str:
        """``applied_thresholds`` in words ("" where there are none)."""
        applied = self.applied_thresholds
        return applied_wording(*applied) if applied is not None else ""

    @property
    def explanation(self) -> list[str]:
        """The decision rule's arithmetic for this result, in sentences (scan page and API)."""
        return explain_result(
            measurements=self.measurements, classifier=self.classifier, decision=self.decision, pattern=self.pattern
        )


class FhirPush(models.Model):
    """A finished result owed to the hospital's FHIR server (settings.FHIR_ENDPOINT), until it is sent.

    Made with the result when an endpoint is configured (scans.analysis.scan_record_result); the task in
    scans/fhir_push.py sends it and records `sent_at`, so a task run again sends nothing. `sending_since`
    marks a send in progress: a second worker holding the same task waits its turn instead of sending too.
    """

    result = models.OneToOneField(ScanResult, on_delete=models.CASCADE, related_name="fhir_push")
    created_at = models.DateTimeField(auto_now_add=True)
    attempts = models.PositiveIntegerField(default=0)
    sending_since = models.DateTimeField(null=True, blank=True)
    last_tried_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True, db_index=True)
    # The server refused the bundle itself (a 4xx other than 408/429): sending it again cannot help,
    # so neither the retries nor the sweep try again; an admin reads the reason.
    refused = models.BooleanField(default=False)
    last_error = models.CharField(max_length=500, blank=True)

    class Meta:
        verbose_name = "FHIR push"
        verbose_name_plural = "FHIR pushes"

    def __str__(self) -> str:
        state = "sent" if self.sent_at else "refused" if self.refused else "pending"
        return f"FHIR push of result {self.result_id} ({state})"
