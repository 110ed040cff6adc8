"""Alert payloads: one shape for the REST API and the WebSocket frames."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from alerts.models import Alert
from portal.api_common import absolute_url
from portal.clinical import DISCLAIMER
from portal.serializers import PatientSummarySerializer


class AlertSerializer(serializers.ModelSerializer):
    patient = PatientSummarySerializer(read_only=True)
    scan = serializers.SerializerMethodField()
    acknowledged_by = serializers.SerializerMethodField()
    resolved_by = serializers.SerializerMethodField()
    disclaimer = serializers.SerializerMethodField()

    class Meta:
        model = Alert
        fields = [
            "id",
            "last_event_id",
            "kind",
            "urgent",
            "pattern",
            "advice",
            "status",
            "severity",
            "score",
            "created_at",
            "patient",
            "scan",
            "latest_scan",
            "scan_count",
            "escalation_level",
            "escalation_tier",
            "next_escalation_at",
            "acknowledged_by",
            "acknowledged_at",
            "resolved_by",
            "resolved_at",
            "outcome",
            "disclaimer",
        ]

    latest_scan = serializers.SerializerMethodField()
    escalation_tier = serializers.CharField(read_only=True)
    advice = serializers.CharField(read_only=True, help_text="What the alert asks of its reader while active.")
    last_event_id = serializers.IntegerField(
        read_only=True,
        allow_null=True,
        help_text="The latest change to this alert: reconnect with after_event=<the largest seen> to get every "
        "change since (resolutions and acknowledgements included).",
    )

    @extend_schema_field(serializers.DictField())
    def get_scan(self, alert: Alert) -> dict:
        """The scan that raised the alert."""
        return self._scan(alert.scan)

    @extend_schema_field(serializers.DictField())
    def get_latest_scan(self, alert: Alert) -> dict:
        """The most recent positive scan of the episode (the same as `scan` until another joins)."""
        return self._scan(alert.latest_scan or alert.scan)

    def _scan(self, scan) -> dict:
        request = self.context.get("request")
        result = getattr(scan, "result", None)
        return {
            "id": scan.id,
            "url": absolute_url(request, reverse("api:scan-detail", args=[scan.id])),
            "page_url": absolute_url(request, scan.get_absolute_url()),
            "image_url": absolute_url(request, reverse("api:scan-file", args=[scan.id, "image"])),
            "uploaded_at": scan.uploaded_at.isoformat(),
            "referring_physician": scan.referring_physician.full_name if scan.referring_physician else None,
            "label": result.label if result else None,
            "pattern": result.pattern if result else None,
            "pattern_display": result.get_pattern_display() if result else "",
            "quality_warnings": result.quality_warnings if result else [],
            "model_version": result.model_version_name if result else None,
        }

    def get_acknowledged_by(self, alert: Alert) -> str | None:
        return alert.acknowledged_by.get_username() if alert.acknowledged_by else None

    def get_resolved_by(self, alert: Alert) -> str | None:
        return alert.resolved_by.get_username() if alert.resolved_by else None

    def get_disclaimer(self, _alert) -> str:
        return DISCLAIMER


class AlertResolveSerializer(serializers.Serializer):
    outcome = serializers.ChoiceField(choices=Alert.Outcome.choices)
    note = serializers.CharField(required=False, allow_blank=True, max_length=500)
