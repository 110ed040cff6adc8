"""Alerts raised by positive scans, and the log of everything that happened to each."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.formats import date_format
from django.utils.timezone import localtime

from inference.engine.decide import pattern_advice

ESCALATION_TIERS = ("care team", "lead physician", "triage desk")
TOP_TIER = len(ESCALATION_TIERS) - 1


class Alert(models.Model):
    class Kind(models.TextChoices):
        POSITIVE = "positive", "Signs of facial paralysis"
        REVIEW = "review", "Inconclusive: review the photo"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        ACKNOWLEDGED = "acknowledged", "Acknowledged"
        RESOLVED = "resolved", "Resolved"

    # Still someone's to act on: not yet claimed, or claimed and not yet resolved.
    ACTIVE_STATUSES = (Status.OPEN, Status.ACKNOWLEDGED)

    class Outcome(models.TextChoices):
        CONFIRMED = "confirmed", "Confirmed"
        FALSE_ALARM = "false_alarm", "False alarm"
        REFERRED = "referred", "Referred"

    # One alert per scan; the constraint makes a retried task unable to raise a second one.
    scan = models.OneToOneField("scans.Scan", on_delete=models.CASCADE, related_name="alert")
    patient = models.ForeignKey("portal.Patient", on_delete=models.CASCADE, related_name="alerts")
    status = models.CharField(max_length=14, choices=Status.choices, default=Status.OPEN, db_index=True)
    # A positive result raises a `positive` alert, an inconclusive one a `review` item for the care team.
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.POSITIVE)
    # Central (stroke) pattern: the shortest deadline, the top of the feed, stroke-team wording.
    urgent = models.BooleanField(default=False, db_index=True)
    pattern = models.CharField(max_length=12, blank=True)
    # A positive photo of the episode showed the central pattern: the alert is headed STROKE PATTERN.
    stroke_pattern_positive = models.BooleanField(default=False)
    severity = models.CharField(max_length=10)
    score = models.FloatField()
    created_at = models.DateTimeField(auto_now_add=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=12, choices=Outcome.choices, blank=True)
    # Escalation: 0 = the care team; each missed deadline moves it one tier up (see ESCALATION_TIERS).
    # An open alert always has a next deadline: at the top tier it is when the top tier is called again
    # (repeat_count counts those repeats).
    escalation_level = models.PositiveSmallIntegerField(default=0)
    next_escalation_at = models.DateTimeField(null=True, blank=True, db_index=True)
    repeat_count = models.PositiveSmallIntegerField(default=0)
    # Calling rounds: round 0 calls from the care team up as the alert escalates; a new round calls every
    # tier reached so far again, saying why (call_reason): a worse photo, a claim released, the patient
    # moved to another team (called_team: the team this round calls). Each call is an AlertCall.
    call_round = models.PositiveIntegerField(default=0)
    call_reason = models.CharField(max_length=300, blank=True)
    called_team = models.ForeignKey(
        "portal.CareTeam", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # What made the latest calls due (raised, escalated, a new round): an open screen sounds once per call.
    call_event = models.ForeignKey("AlertEvent", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # Repeated positive scans of the patient within an episode join this alert instead of a new one.
    scan_count = models.PositiveIntegerField(default=1)
    latest_scan = models.ForeignKey("scans.Scan", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["patient", "status"])]

    def __str__(self) -> str:
        return f"Alert {self.pk} for {self.patient} ({self.status})"

    @property
    def advice(self) -> str:
        """What the alert asks of its reader while it is active (the stroke pattern: act now)."""
        if self.status not in self.ACTIVE_STATUSES:
            return ""
        return pattern_advice(self.pattern, inconclusive=self.kind == self.Kind.REVIEW)

    @property
    def urgent_label(self) -> str:
        """How an urgent alert is headed on calls and pages, from the strongest evidence of its episode:
        a positive photo with the central pattern is the stroke pattern; an undetermined pattern, or a
        central one seen only on an inconclusive photo, is a possible stroke (ScanResult.is_urgent).
        "" for a routine alert."""
        if not self.urgent:
            return ""
        # An inconclusive result is never called the stroke pattern: the measurement could not decide.
        return "STROKE PATTERN" if self.stroke_pattern_positive else "POSSIBLE STROKE"

    @property
    def heading(self) -> str:
        """The alert's heading on every page, call and notification (static/portal/live.js shows it)."""
        return self.urgent_label or ("Review" if self.kind == self.Kind.REVIEW else "Facial paralysis alert")

    @property
    def escalation_tier(self) -> str:
        return ESCALATION_TIERS[min(self.escalation_level, len(ESCALATION_TIERS) - 1)]


class AlertEvent(models.Model):
    """Append-only: who did what to an alert, when, and from where."""

    class Kind(models.TextChoices):
        RAISED = "raised", "Raised"
        ACKNOWLEDGED = "acknowledged", "Acknowledged"
        RESOLVED = "resolved", "Resolved"
        ESCALATED = "escalated", "Escalated"
        REPEATED = "repeated", "Another positive scan"
        REOPENED = "reopened", "Re-opened by a worse scan"
        UNRESOLVED = "unresolved", "Resolution undone"
        NOTIFIED = "notified", "People notified (push, e-mail)"
        RELEASED = "released", "Claim released"
        TEAM_CHANGED = "team_changed", "Patient moved to another care team"

    class Source(models.TextChoices):
        SYSTEM = "system", "System"
        WEB = "web", "Dashboard"
        API = "api", "REST API"
        SOCKET = "socket", "WebSocket"

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=14, choices=Kind.choices)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.SYSTEM)
    remote_addr = models.GenericIPAddressField(null=True, blank=True)
    note = models.CharField(max_length=500, blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        at = date_format(localtime(self.at), "DATETIME_FORMAT")
        return f"{self.get_kind_display()} by {self.actor or 'system'} at {at}"


class AlertCall(models.Model):
    """One call of an alert (push and e-mail to a tier's people, or a repeat of the top tier) in one
    calling round: recorded as due in the transaction that made it due, taken by the task making it
    for a while (taken_by, taken_until), marked made only once made. So a call is made at least once:
    a task cut off mid-call leaves it unmade, for the same task delivered again or, once it is no longer
    taken, for the next task the sweep queues (alerts/notify.py, alerts/services.py alert_sweep)."""

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="calls")
    round = models.PositiveIntegerField()
    tier = models.PositiveSmallIntegerField()
    repeat = models.PositiveSmallIntegerField(default=0)
    due_at = models.DateTimeField()
    attempts = models.PositiveSmallIntegerField(default=0)
    taken_by = models.CharField(max_length=64, blank=True)
    taken_until = models.DateTimeField(null=True, blank=True)
    made_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        ordering = ["alert", "round", "tier", "repeat"]
        constraints = [
            models.UniqueConstraint(fields=["alert", "round", "tier", "repeat"], name="one_call_per_tier_and_round")
        ]

    def __str__(self) -> str:
        repeat = f" (repeat {self.repeat})" if self.repeat else ""
        return f"call of alert {self.alert_id}, round {self.round}: the {ESCALATION_TIERS[self.tier]}{repeat}"


class PushSubscription(models.Model):
    """A browser or phone that asked for Web Push notifications of alerts (the dashboard's "Notify this
    device" button; alerts/notify.py sends to it). Deleted when its push service says it is gone."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="push_subscriptions")
    endpoint = models.URLField(max_length=1000)
    p256dh = models.CharField(max_length=200)
    auth = models.CharField(max_length=100)
    user_agent = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "endpoint"], name="one_subscription_per_user_endpoint")]

    def __str__(self) -> str:
        return f"push to {self.user} ({self.user_agent[:40] or 'device'})"
