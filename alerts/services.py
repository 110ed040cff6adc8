"""Writes to alerts. Every transition is a conditional update, an event row, then a broadcast."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone

from alerts.events import publish_alert
from alerts.models import Alert, AlertEvent
from alerts.selectors import alert_get_visible
from portal.selectors import user_role


class AlertNotFound(Exception):
    """No such alert, or the user may not see it (the two are indistinguishable on purpose)."""


class AlertForbidden(Exception):
    """Only clinicians and the staff triage desk act on alerts; caregivers are kept informed."""


class AlertConflict(Exception):
    """The alert is not in a state that allows this step (e.g. someone else claimed it first)."""


def alert_raise(*, scan, result) -> Alert:
    """Store the alert for a positive scan (once per scan), then tell everyone who may see it."""
    with transaction.atomic():
        try:
            with transaction.atomic():
                alert = Alert.objects.create(
                    scan=scan, patient_id=scan.patient_id, severity=result.severity, score=result.score
                )
        except IntegrityError:
            # A redelivered task: the alert exists already and was announced then.
            return Alert.objects.get(scan=scan)
        AlertEvent.objects.create(alert=alert, kind=AlertEvent.Kind.RAISED, source=AlertEvent.Source.SYSTEM)
        publish_alert(event_type="alert.created", alert_id=alert.id, patient_id=alert.patient_id)
    return alert


def alert_acknowledge(*, alert_id: int, user, source: str, remote_addr: str | None = None) -> Alert:
    alert = _visible_or_raise(user=user, alert_id=alert_id)
    now = timezone.now()
    with transaction.atomic():
        claimed = Alert.objects.filter(id=alert.id, status=Alert.Status.OPEN).update(
            status=Alert.Status.ACKNOWLEDGED, acknowledged_by=user, acknowledged_at=now
        )
        if claimed != 1:
            alert.refresh_from_db()
            who = alert.acknowledged_by.get_username() if alert.acknowledged_by else "someone"
            raise AlertConflict(f"Alert {alert.id} is already {alert.status} (claimed by {who}).")
        AlertEvent.objects.create(alert_id=alert.id, kind=AlertEvent.Kind.ACKNOWLEDGED, actor=user,
                                  source=source, remote_addr=remote_addr)
        publish_alert(event_type="alert.updated", alert_id=alert.id, patient_id=alert.patient_id)
    return alert_get_visible(user=user, alert_id=alert.id)


def alert_resolve(*, alert_id: int, user, outcome: str, note: str = "", source: str,
                  remote_addr: str | None = None) -> Alert:
    if outcome not in Alert.Outcome.values:
        raise ValueError(f"outcome must be one of {', '.join(Alert.Outcome.values)}")
    alert = _visible_or_raise(user=user, alert_id=alert_id)
    now = timezone.now()
    with transaction.atomic():
        updated = Alert.objects.filter(
            id=alert.id, status__in=[Alert.Status.OPEN, Alert.Status.ACKNOWLEDGED]
        ).update(status=Alert.Status.RESOLVED, resolved_by=user, resolved_at=now, outcome=outcome)
        if updated != 1:
            raise AlertConflict(f"Alert {alert.id} is already resolved.")
        AlertEvent.objects.create(alert_id=alert.id, kind=AlertEvent.Kind.RESOLVED, actor=user, source=source,
                                  remote_addr=remote_addr, note=note[:500])
        publish_alert(event_type="alert.updated", alert_id=alert.id, patient_id=alert.patient_id)
    return alert_get_visible(user=user, alert_id=alert.id)


def _visible_or_raise(*, user, alert_id: int) -> Alert:
    alert = alert_get_visible(user=user, alert_id=alert_id)
    if alert is None:
        raise AlertNotFound(f"Alert {alert_id} not found.")
    if user_role(user) not in {"staff", "clinician"}:
        raise AlertForbidden("Only the patient's clinicians can acknowledge or resolve an alert.")
    return alert
