"""Writes to alerts. Every transition is a conditional update, an event row, then a broadcast."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from alerts.events import publish_alert
from alerts.models import ESCALATION_TIERS, TOP_TIER, Alert, AlertEvent, PushSubscription
from alerts.notify import notify_on_commit
from alerts.selectors import alert_get_visible
from inference.engine.decide import severity_rank
from portal.models import Patient
from portal.outbound import push_endpoint_problem
from portal.selectors import user_role

logger = logging.getLogger(__name__)


class AlertNotFound(Exception):
    """No such alert, or the user may not see it (the two are indistinguishable on purpose)."""


class AlertForbidden(Exception):
    """Only clinicians and the staff triage desk act on alerts; caregivers are kept informed."""


class AlertConflict(Exception):
    """The alert is not in a state that allows this step (e.g. someone else claimed it first)."""


def ack_deadline(severity: str, *, urgent: bool = False) -> timedelta:
    deadlines = settings.ALERT_ACK_DEADLINE_MINUTES
    minutes = deadlines.get(severity, deadlines["none"])
    if urgent:
        minutes = min(minutes, deadlines["urgent"])
    return timedelta(minutes=minutes)


def _kind_of(result) -> str:
    return Alert.Kind.POSITIVE if result.is_positive else Alert.Kind.REVIEW


def alert_raise(*, scan, result, now: datetime | None = None) -> Alert:
    """Store the alert for a positive scan (or a review item for an inconclusive one), then tell
    everyone who may see the patient. A possible stroke (the central pattern, or a positive face whose
    pattern is undetermined: ScanResult.is_urgent) makes it urgent: the shortest deadline and the top
    of the feed.

    A flagged scan of a patient who already has an open or claimed alert from the same episode
    joins that alert (the feed shows one alert with its scan count) instead of flooding the feed.
    Called inside scan_record_result's transaction with the scan row locked, so a redelivered task
    finds `episode_alert_id` set and does nothing; the patient's row is locked next, so two of the
    patient's scans finishing at once join one alert.
    """
    if scan.episode_alert_id:
        return Alert.objects.get(id=scan.episode_alert_id)
    with transaction.atomic():
        # The patient's analyses take turns here, so that photos finishing at the same moment on two
        # workers make one alert between them: each used to find no open alert and raise its own.
        # (FOR NO KEY UPDATE: uploads of the patient's photos, whose inserts reference the row, go on.)
        list(Patient.objects.select_for_update(no_key=True).filter(id=scan.patient_id).values_list("id", flat=True))
        now = now or timezone.now()  # read after the wait: the episode is measured from this moment
        episode_start = now - timedelta(hours=settings.ALERT_EPISODE_HOURS)
        current = (
            Alert.objects.select_for_update()
            .filter(patient_id=scan.patient_id, status__in=Alert.ACTIVE_STATUSES, created_at__gte=episode_start)
            .order_by("-id")
            .first()
        )
        if current is not None:
            return _join_episode(current, scan=scan, result=result, now=now)
        urgent = result.is_urgent
        alert = Alert.objects.create(
            scan=scan,
            latest_scan=scan,
            patient_id=scan.patient_id,
            severity=result.severity,
            score=result.score,
            kind=_kind_of(result),
            urgent=urgent,
            pattern=result.pattern,
            next_escalation_at=now + ack_deadline(result.severity, urgent=urgent),
        )
        scan.__class__.objects.filter(id=scan.id).update(episode_alert=alert)
        event = AlertEvent.objects.create(
            alert=alert, kind=AlertEvent.Kind.RAISED, source=AlertEvent.Source.SYSTEM, note=f"scan {scan.id}"
        )
        publish_alert(event_type="alert.created", alert_id=alert.id, patient_id=alert.patient_id, version=event.id)
        notify_on_commit(alert.id, 0)
    return alert


def _join_episode(alert: Alert, *, scan, result, now: datetime) -> Alert:
    """A later scan of the episode can only raise the alert: a worse severity, a positive after a
    review item, the stroke pattern (which also brings an open alert's deadline forward).

    A positive joining the alert is announced again (alert.repeated: the dashboards sound and notify),
    so a claimed alert does not hide a new photo. One that makes a claimed alert worse re-opens it,
    with the deadline of its new severity, from the care team up again."""
    worse_severity = severity_rank(result.severity) > severity_rank(alert.severity)
    severity = result.severity if worse_severity else alert.severity
    becomes_urgent = result.is_urgent and not alert.urgent
    worse = worse_severity or becomes_urgent or (result.is_positive and alert.kind == Alert.Kind.REVIEW)
    changes = {
        "scan_count": F("scan_count") + 1,
        "latest_scan": scan,
        "severity": severity,
        "score": max(alert.score, result.score),
    }
    if result.is_positive:
        changes["kind"] = Alert.Kind.POSITIVE
    if becomes_urgent:
        changes.update(urgent=True, pattern=result.pattern)
    elif not alert.pattern or (alert.urgent and result.is_stroke_pattern):  # a possible stroke, then the pattern
        changes["pattern"] = result.pattern
    reopen = alert.status == Alert.Status.ACKNOWLEDGED and worse
    # Re-opened, or become stroke-urgent while open: called again from the care team up, by every
    # channel, on the deadline of what it now is.
    call_again = reopen or (becomes_urgent and alert.status == Alert.Status.OPEN)
    if reopen:
        changes.update(status=Alert.Status.OPEN, acknowledged_by=None, acknowledged_at=None)
    if call_again:
        changes.update(
            escalation_level=0,
            repeat_count=0,
            called_level=-1,
            called_repeats=0,
            next_escalation_at=now + ack_deadline(severity, urgent=alert.urgent or becomes_urgent),
        )
    Alert.objects.filter(id=alert.id).update(**changes)
    scan.__class__.objects.filter(id=scan.id).update(episode_alert=alert)
    event = AlertEvent.objects.create(
        alert=alert,
        kind=AlertEvent.Kind.REOPENED if reopen else AlertEvent.Kind.REPEATED,
        source=AlertEvent.Source.SYSTEM,
        note=f"scan {scan.id}, severity {result.severity}",
    )
    publish_alert(
        event_type="alert.repeated" if result.is_positive or reopen else "alert.updated",
        alert_id=alert.id,
        patient_id=alert.patient_id,
        version=event.id,
        reopened=reopen,
    )
    if call_again:
        notify_on_commit(alert.id, 0)
    alert.refresh_from_db()
    return alert


def alert_acknowledge(*, alert_id: int, user, source: str, remote_addr: str | None = None) -> Alert:
    alert = _actionable_or_raise(user=user, alert_id=alert_id)
    now = timezone.now()
    with transaction.atomic():
        claimed = Alert.objects.filter(id=alert.id, status=Alert.Status.OPEN).update(
            status=Alert.Status.ACKNOWLEDGED, acknowledged_by=user, acknowledged_at=now, next_escalation_at=None
        )
        if claimed != 1:
            alert.refresh_from_db()
            who = alert.acknowledged_by.get_username() if alert.acknowledged_by else "someone"
            raise AlertConflict(f"Alert {alert.id} is already {alert.status} (claimed by {who}).")
        event = AlertEvent.objects.create(
            alert_id=alert.id, kind=AlertEvent.Kind.ACKNOWLEDGED, actor=user, source=source, remote_addr=remote_addr
        )
        publish_alert(event_type="alert.updated", alert_id=alert.id, patient_id=alert.patient_id, version=event.id)
    return alert_get_visible(user=user, alert_id=alert.id)


def alert_resolve(
    *, alert_id: int, user, outcome: str, note: str = "", source: str, remote_addr: str | None = None
) -> Alert:
    if outcome not in Alert.Outcome.values:
        raise ValueError(f"outcome must be one of {', '.join(Alert.Outcome.values)}")
    alert = _actionable_or_raise(user=user, alert_id=alert_id)
    now = timezone.now()
    with transaction.atomic():
        updated = Alert.objects.filter(id=alert.id, status__in=Alert.ACTIVE_STATUSES).update(
            status=Alert.Status.RESOLVED, resolved_by=user, resolved_at=now, outcome=outcome, next_escalation_at=None
        )
        if updated != 1:
            raise AlertConflict(f"Alert {alert.id} is already resolved.")
        event = AlertEvent.objects.create(
            alert_id=alert.id,
            kind=AlertEvent.Kind.RESOLVED,
            actor=user,
            source=source,
            remote_addr=remote_addr,
            note=note[:500],
        )
        publish_alert(event_type="alert.updated", alert_id=alert.id, patient_id=alert.patient_id, version=event.id)
    return alert_get_visible(user=user, alert_id=alert.id)


# How long the clinician who resolved an alert can take it back (a wrong outcome, a slip of the finger).
UNDO_RESOLVE_SECONDS = 120


def alert_undo_resolve(*, alert_id: int, user, source: str, remote_addr: str | None = None) -> Alert:
    """Take back one's own resolution within UNDO_RESOLVE_SECONDS: the alert is active again, claimed
    by that clinician (a claimed alert calls nobody, so no tier is called twice), its outcome cleared.
    Refused (AlertConflict) after the window, for another clinician's resolution, or when a newer
    alert of the patient is already active (work on that one)."""
    alert = _actionable_or_raise(user=user, alert_id=alert_id)
    now = timezone.now()
    with transaction.atomic():
        # The patient's alerts, locked in one order, so that an alert raised meanwhile is seen.
        active = list(
            Alert.objects.select_for_update()
            .filter(patient_id=alert.patient_id, status__in=Alert.ACTIVE_STATUSES)
            .order_by("id")
            .values_list("id", flat=True)
        )
        if active:
            raise AlertConflict(f"Alert {active[0]} of this patient is active: work on that one.")
        undone = Alert.objects.filter(
            id=alert.id,
            status=Alert.Status.RESOLVED,
            resolved_by=user,
            resolved_at__gte=now - timedelta(seconds=UNDO_RESOLVE_SECONDS),
        ).update(
            status=Alert.Status.ACKNOWLEDGED,
            acknowledged_by=user,
            acknowledged_at=Coalesce(F("acknowledged_at"), Value(now)),
            resolved_by=None,
            resolved_at=None,
            outcome="",
            next_escalation_at=None,
        )
        if undone != 1:
            raise AlertConflict(
                f"Alert {alert.id}'s resolution can no longer be undone: only the clinician who resolved it can, "
                f"within {UNDO_RESOLVE_SECONDS // 60} minutes."
            )
        event = AlertEvent.objects.create(
            alert_id=alert.id, kind=AlertEvent.Kind.UNRESOLVED, actor=user, source=source, remote_addr=remote_addr
        )
        publish_alert(event_type="alert.updated", alert_id=alert.id, patient_id=alert.patient_id, version=event.id)
    return alert_get_visible(user=user, alert_id=alert.id)


def alert_escalate_overdue(*, now: datetime | None = None) -> int:
    """Move every open alert past its deadline one tier up, or, at the top tier, call it again, and
    announce it (Celery beat). Each alert in its own transaction: one that fails is logged and left for
    the next sweep, and the others go on."""
    now = now or timezone.now()
    escalated = 0
    overdue = Alert.objects.filter(status=Alert.Status.OPEN, next_escalation_at__lte=now).values_list("id", flat=True)
    for alert_id in list(overdue):
        try:
            escalated += _escalate_one(alert_id, now=now)
        except Exception:  # noqa: BLE001 - one alert must never stop the others' escalation
            logger.exception("could not escalate alert %s; the next sweep tries again", alert_id)
    return escalated


def _escalate_one(alert_id: int, *, now: datetime) -> int:
    """One step of the escalation state machine: tier k -> k + 1 below the top, the top tier -> a
    repeated call of the top tier. 1 when a step was taken, 0 when another sweep took it first."""
    with transaction.atomic():
        # Locked and read again: two beats never take one step twice.
        alert = (
            Alert.objects.select_for_update()
            .filter(id=alert_id, status=Alert.Status.OPEN, next_escalation_at__lte=now)
            .first()
        )
        if alert is None:
            return 0
        if alert.escalation_level < TOP_TIER:
            level, repeat = alert.escalation_level + 1, 0
            wait = ack_deadline(alert.severity, urgent=alert.urgent) if level < TOP_TIER else top_tier_repeat()
            next_at = now + wait
            note = f"not acknowledged in time: escalated to the {ESCALATION_TIERS[level]}"
        else:
            level, repeat = TOP_TIER, alert.repeat_count + 1
            next_at = now + top_tier_repeat()
            note = f"still not acknowledged: the {ESCALATION_TIERS[level]} is called again (repeat {repeat})"
        Alert.objects.filter(id=alert.id).update(
            escalation_level=level, repeat_count=repeat, next_escalation_at=next_at
        )
        event = AlertEvent.objects.create(
            alert_id=alert.id, kind=AlertEvent.Kind.ESCALATED, source=AlertEvent.Source.SYSTEM, note=note
        )
        publish_alert(event_type="alert.escalated", alert_id=alert.id, patient_id=alert.patient_id, version=event.id)
        notify_on_commit(alert.id, level)
    return 1


def top_tier_repeat() -> timedelta:
    return timedelta(minutes=settings.ALERT_TOP_TIER_REPEAT_MINUTES)


def _actionable_or_raise(*, user, alert_id: int) -> Alert:
    alert = alert_get_visible(user=user, alert_id=alert_id)
    if alert is None:
        raise AlertNotFound(f"Alert {alert_id} not found.")
    if not user_role(user).is_clinical:
        raise AlertForbidden("Only the patient's clinicians can acknowledge or resolve an alert.")
    return alert


class PushEndpointRefused(ValueError):
    """The endpoint is not a push service the portal may send to (portal/outbound.py)."""


def push_subscription_save(*, user, endpoint: str, p256dh: str, auth: str, user_agent: str = "") -> PushSubscription:
    """Register (or renew) this device's Web Push subscription for ``user``. The endpoint must be a push
    service's public https URL (PushEndpointRefused otherwise). A subscription belongs to the user who
    made it: the same endpoint posted by another user (a shared ward computer) is a row of theirs,
    and the first is left as it was. A user keeps at most PUSH_SUBSCRIPTIONS_PER_USER: a new device
    replaces the one gone longest without a push (never pushed: the oldest), so a new phone always
    works and one user's devices cannot make a call cost many."""
    problem = push_endpoint_problem(endpoint)
    if problem:
        raise PushEndpointRefused(problem)
    with transaction.atomic():
        # The user's row lock: two devices registering at once cannot both fit in the last place.
        get_user_model().objects.select_for_update().filter(id=user.id).first()
        subscription, _ = PushSubscription.objects.update_or_create(
            user=user,
            endpoint=endpoint,
            defaults={"p256dh": p256dh, "auth": auth, "user_agent": user_agent[:300]},
        )
        others = PushSubscription.objects.filter(user=user).exclude(id=subscription.id)
        surplus = others.count() - (settings.PUSH_SUBSCRIPTIONS_PER_USER - 1)
        if surplus > 0:
            silent = others.order_by(F("last_sent_at").asc(nulls_first=True), "created_at", "id")[:surplus]
            PushSubscription.objects.filter(id__in=list(silent.values_list("id", flat=True))).delete()
    return subscription
