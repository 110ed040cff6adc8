"""Serializers stay dumb: shapes only. The socket frames use the same ones as the REST API."""

from __future__ import annotations

from dataclasses import asdict

from django.urls import reverse
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from inference.engine.decide import REPEATABILITY_MEANING
from portal.api_common import absolute_url
from portal.clinical import DISCLAIMER
from portal.serializers import PatientSummarySerializer, PhysicianSerializer
from scans.models import Scan, ScanResult
from scans.urgency import onset_problem
from scans.wording import care_team_news, lay_advice


class ScanResultSerializer(serializers.ModelSerializer):
    model_version = serializers.CharField(source="model_version_name")
    explanation = serializers.ListField(
        child=serializers.CharField(), read_only=True, help_text="How the rule reached the label, in its own numbers."
    )
    disclaimer = serializers.SerializerMethodField()
    pattern_display = serializers.CharField(source="get_pattern_display", read_only=True)
    pattern_advice = serializers.CharField(
        read_only=True, help_text="What the pattern asks of the clinician reading a flagged result."
    )
    lay_advice = serializers.SerializerMethodField(
        help_text="The caregiver's wording (what the web page shows a caregiver): headline, body, tone "
        "(urgent, attention, calm), warning_signs and call_number, the emergency number to offer as tap-to-call."
    )
    stroke_pattern = serializers.BooleanField(
        source="is_stroke_pattern",
        read_only=True,
        help_text="True for the central pattern: contact the stroke team now.",
    )
    quality_warnings = serializers.ListField(
        child=serializers.DictField(child=serializers.CharField()),
        read_only=True,
        help_text='What was imperfect about a photo that could still be measured: [{"code", "message"}].',
    )
    asymmetry_index = serializers.FloatField(read_only=True, allow_null=True)
    index_repeatability = serializers.FloatField(
        read_only=True,
        allow_null=True,
        help_text=f"The index's ± h, its {REPEATABILITY_MEANING}. Null for results stored before results carried one.",
    )
    index_interval = serializers.ListField(
        child=serializers.FloatField(),
        read_only=True,
        allow_null=True,
        help_text="[index - h, index + h]: the range the label is judged on (a label holds only where all of "
        "it gives that label).",
    )

    class Meta:
        model = ScanResult
        fields = [
            "label",
            "score",
            "severity",
            "affected_side",
            "pattern",
            "pattern_display",
            "pattern_advice",
            "lay_advice",
            "stroke_pattern",
            "urgent",
            "urgency_reason",
            "exam",
            "quality_warnings",
            "asymmetry_index",
            "index_repeatability",
            "index_interval",
            "measurements",
            "quality",
            "classifier",
            "decision",
            "explanation",
            "model_version",
            "engine_version",
            "created_at",
            "disclaimer",
        ]

    def get_disclaimer(self, _result) -> str:
        return DISCLAIMER

    def get_lay_advice(self, result) -> dict:
        return asdict(lay_advice(result))


def _finished_result(scan: Scan):
    """The scan's result; only a finished scan has one, so no query for the others (a new upload's 202
    among them)."""
    return getattr(scan, "result", None) if scan.status == Scan.Status.DONE else None


class ScanSerializer(serializers.ModelSerializer):
    patient = PatientSummarySerializer(read_only=True)
    referring_physician = PhysicianSerializer(read_only=True, allow_null=True)
    result = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()
    page_url = serializers.SerializerMethodField()
    image_url = serializers.SerializerMethodField()
    overlay_url = serializers.SerializerMethodField()
    heatmap_url = serializers.SerializerMethodField()
    alert_id = serializers.SerializerMethodField()
    onset_at = serializers.DateTimeField(
        read_only=True,
        allow_null=True,
        help_text="When the person was last seen without this weakness (null: not known). It decides with the "
        "result's evidence whether it is a possible stroke (result.urgent, result.urgency_reason).",
    )
    poses = serializers.SerializerMethodField(
        help_text='A guided exam\'s pose photos: {"brows_raised": 2, ...} frames.'
    )
    onset_recorded_by = serializers.SerializerMethodField(
        help_text="Who gave the onset (the uploader, or the care team)."
    )
    care_team_news = serializers.SerializerMethodField(
        help_text="What the care team has done with this scan's alert, in plain words for a caregiver: a "
        "clinician is looking, or what they found (the web page shows it in the caregiver's box); empty "
        "while no one has yet."
    )

    class Meta:
        model = Scan
        fields = [
            "id",
            "url",
            "page_url",
            "patient",
            "status",
            "status_reason",
            "uploaded_at",
            "finished_at",
            "referring_physician",
            "note",
            "onset_at",
            "onset_recorded_by",
            "poses",
            "result",
            "image_url",
            "overlay_url",
            "heatmap_url",
            "alert_id",
            "care_team_news",
        ]

    @extend_schema_field(ScanResultSerializer(allow_null=True))
    def get_result(self, scan: Scan):
        result = _finished_result(scan)
        return ScanResultSerializer(result).data if result is not None else None

    def get_url(self, scan: Scan) -> str:
        return absolute_url(self.context.get("request"), reverse("api:scan-detail", args=[scan.id]))

    def get_page_url(self, scan: Scan) -> str:
        return absolute_url(self.context.get("request"), scan.get_absolute_url())

    def get_image_url(self, scan: Scan) -> str | None:
        """None until the worker has decoded the upload into the clean photo (and for a refused file)."""
        if not scan.image:
            return None
        return absolute_url(self.context.get("request"), reverse("api:scan-file", args=[scan.id, "image"]))

    def _result_file_url(self, scan: Scan, kind: str) -> str | None:
        result = _finished_result(scan)
        if result is None or not getattr(result, kind):
            return None
        return absolute_url(self.context.get("request"), reverse("api:scan-file", args=[scan.id, kind]))

    def get_overlay_url(self, scan: Scan) -> str | None:
        return self._result_file_url(scan, "overlay")

    def get_heatmap_url(self, scan: Scan) -> str | None:
        return self._result_file_url(scan, "heatmap")

    def get_poses(self, scan: Scan) -> dict[str, int]:
        return dict(scan.pose_frames or {})

    def get_onset_recorded_by(self, scan: Scan) -> str | None:
        return scan.onset_recorded_by.get_username() if scan.onset_recorded_by_id and scan.onset_recorded_by else None

    def get_alert_id(self, scan: Scan) -> int | None:
        return scan.episode_alert_id

    def get_care_team_news(self, scan: Scan) -> str:
        return care_team_news(scan.episode_alert)


ONSET_HELP = (
    "When was the person last seen without this weakness? An ISO 8601 time with its zone; leave it out (or null) "
    "when nobody knows: an unknown onset is treated as a possible stroke."
)


class OnsetField(serializers.DateTimeField):
    def to_internal_value(self, value):
        onset_at = super().to_internal_value(value)
        problem = onset_problem(onset_at, now=timezone.now())
        if problem:
            raise serializers.ValidationError(problem)
        return onset_at


class ScanCreateSerializer(serializers.Serializer):
    patient = serializers.IntegerField()
    image = serializers.FileField()
    referring_physician = serializers.IntegerField(required=False, allow_null=True)
    note = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    onset_at = OnsetField(required=False, allow_null=True, help_text=ONSET_HELP)
    # A guided exam (issue 41): the same face, in the same sitting, in up to three poses, each field
    # repeated for a burst's frames (1 to 3).
    brows_raised = serializers.ListField(
        child=serializers.FileField(),
        required=False,
        max_length=3,
        help_text="The eyebrows raised as high as they go, as if surprised (1-3 frames): the forehead in motion "
        "tells a stroke (forehead spared) from a peripheral palsy.",
    )
    eyes_closed = serializers.ListField(
        child=serializers.FileField(), required=False, max_length=3, help_text="The eyes closed tightly (1-3 frames)."
    )
    smile = serializers.ListField(
        child=serializers.FileField(),
        required=False,
        max_length=3,
        help_text="A big smile showing the teeth (1-3 frames).",
    )


class ScanOnsetSerializer(serializers.Serializer):
    onset_at = OnsetField(allow_null=True, help_text=ONSET_HELP)


class TimelinePointSerializer(serializers.Serializer):
    """One analysed or refused scan; a refused one (status "rejected") has no result fields."""

    scan_id = serializers.IntegerField()
    uploaded_at = serializers.DateTimeField()
    status = serializers.CharField()
    status_reason = serializers.CharField(allow_blank=True)
    label = serializers.CharField(allow_null=True)
    pattern = serializers.CharField(allow_null=True, allow_blank=True)
    severity = serializers.CharField(allow_null=True)
    score = serializers.FloatField(allow_null=True)
    asymmetry_index = serializers.FloatField(allow_null=True)
    index_repeatability = serializers.FloatField(allow_null=True)
    index_interval = serializers.ListField(child=serializers.FloatField(), allow_null=True)
    change = serializers.CharField(
        allow_null=True,
        help_text="Against the previous measured scan: 'beyond measurement noise' or 'no measurable change'.",
    )
    affected_side = serializers.CharField(allow_null=True, allow_blank=True)
    model_version = serializers.CharField(allow_null=True)
