"""Alert payloads: one shape for the REST API and the WebSocket frames."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from alerts.models import Alert
from portal.api_common import absolute_url
from portal.clinical import DISCLAIMER
from portal.serializers import PatientSummarySerializer
from scans.models import ScanResult

PATTERN_WORDS = dict(ScanResult.Pattern.choices)


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
            "heading",
            "urgent",
            "pattern",
            "pattern_display",
            "advice",
            "status",
            "severity",
            "score",
            "created_at",
            "patient",
            "scan",
            "latest_scan",
            "scan_count",
            "referring_physician",
            "onset_at",
            "escalation_level",
            "escalation_tier",
            "next_escalation_at",
            "repeat_count",
            "call_round",
            "call_reason",
            "latest_call",
            "acknowledged_by",
            "acknowledged_at",
            "resolved_by",
            "resolved_at",
            "outcome",
            "disclaimer",
        ]

    latest_scan = serializers.SerializerMethodField()
    heading = serializers.CharField(
        read_only=True,
        help_text="How the alert is headed, from the strongest evidence of its episode: STROKE PATTERN (a positive "
        "photo with the central pattern), POSSIBLE STROKE, Facial paralysis alert or Review.",
    )
    pattern_display = serializers.SerializerMethodField(help_text="The episode's pattern, in words.")
    referring_physician = serializers.SerializerMethodField(
        help_text="The referring physician named on the episode's latest photo that named one."
    )
    onset_at = serializers.SerializerMethodField(
        help_text="When the person was last seen without this weakness, as given with the episode's latest photo "
        "that gave one (null: not known: treated as a possible stroke)."
    )
    call_round = serializers.IntegerField(
        read_only=True,
        help_text="Calling rounds: 0 from the care team up as the alert escalates; each later round calls every "
        "tier reached again (a worse photo, a claim released, the patient moved to another team).",
    )
    call_reason = serializers.CharField(read_only=True, help_text="Why the latest round called people again.")
    repeat_count = serializers.IntegerField(read_only=True, help_text="Repeated calls of the top tier this round.")
    latest_call = serializers.SerializerMethodField()
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
            # The caregiver's own words with the photo ("her mouth looks lopsided since lunch" is the onset,
            # in words), and when the person was last seen without this weakness (null: not known).
            "note": scan.note,
            "onset_at": scan.onset_at.isoformat() if scan.onset_at else None,
            "urgency_reason": result.urgency_reason if result else "",
            # A guided exam's forehead finding, in one sentence ("" for a photo alone).
            "exam_finding": (result.exam or {}).get("forehead_finding", "") if result else "",
            "label": result.label if result else None,
            "pattern": result.pattern if result else None,
            "pattern_display": result.get_pattern_display() if result else "",
            "quality_warnings": result.quality_warnings if result else [],
            "model_version": result.model_version_name if result else None,
        }

    @extend_schema_field(serializers.DictField(allow_null=True))
    def get_latest_call(self, alert: Alert) -> dict | None:
        """What made the latest calls due: {"event_id", "kind" (raised, escalated, repeated, reopened,
        released, team_changed), "words"}. A screen sounds once for each event_id it has not heard."""
        event = alert.call_event
        if event is None:
            return None
        if event.kind == event.Kind.RAISED:
            words = ""
        elif event.kind == event.Kind.ESCALATED:
            words = event.note[:1].upper() + event.note[1:] + "."
        else:
            words = f"Called again: {alert.call_reason}."
        return {"event_id": event.id, "kind": event.kind, "words": words}

    def get_onset_at(self, alert: Alert) -> str | None:
        for scan in (alert.latest_scan, alert.scan):
            if scan is not None and scan.onset_at is not None:
                return scan.onset_at.isoformat()
        return None

    def get_pattern_display(self, alert: Alert) -> str:
        return PATTERN_WORDS.get(alert.pattern, alert.pattern)

    def get_referring_physician(self, alert: Alert) -> str | None:
        # Annotated by alerts.selectors.with_last_event; a bare row reads its scans.
        if hasattr(alert, "episode_referring_physician"):
            return alert.episode_referring_physician
        scan = (
            alert.scans.filter(referring_physician__isnull=False)
            .select_related("referring_physician")
            .order_by("id")
            .last()
        )
        return scan.referring_physician.full_name if scan else None

    def get_acknowledged_by(self, alert: Alert) -> str | None:
        return alert.acknowledged_by.get_username() if alert.acknowledged_by else None

    def get_resolved_by(self, alert: Alert) -> str | None:
        return alert.resolved_by.get_username() if alert.resolved_by else None

    def get_disclaimer(self, _alert) -> str:
        return DISCLAIMER


class AlertResolveSerializer(serializers.Serializer):
    outcome = serializers.ChoiceField(choices=Alert.Outcome.choices)
    note = serializers.CharField(required=False, allow_blank=True, max_length=500)
