"""Writes to alerts. Every transition is a conditional update, an event row, then a broadcast."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from alerts.events import publish_alert
from alerts.models import ESCALATION_TIERS, TOP_TIER, Alert, AlertCall, AlertEvent, PushSubscription
from alerts.notify import call_lease_seconds, notify_on_commit
from alerts.selectors import alert_get_visible
from inference.engine.decide import severity_rank
from portal.models import Patient
from portal.outbound import push_endpoint_problem
from portal.selectors import patient_list_for_user, user_role

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
        team_id = (
            Patient.objects.select_for_update(no_key=True)
            .filter(id=scan.patient_id)
            .values_list("care_team_id", flat=True)
            .first()
        )
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
            stroke_pattern_positive=result.is_positive and result.is_stroke_pattern,
            next_escalation_at=now + ack_deadline(result.severity, urgent=urgent),
            called_team_id=team_id,
        )
        scan.__class__.objects.filter(id=scan.id).update(episode_alert=alert)
        event = AlertEvent.objects.create(
            alert=alert, kind=AlertEvent.Kind.RAISED, source=AlertEvent.Source.SYSTEM, note=f"scan {scan.id}"
        )
        publish_alert(event_type="alert.created", alert_id=alert.id, patient_id=alert.patient_id, version=event.id)
        _record_calls(alert, [(0, 0)], now=now, event=event)
    return alert


def _join_episode(alert: Alert, *, scan, result, now: datetime) -> Alert:
    """A later scan of the episode can only raise the alert: a worse severity, a positive after a
    review item, a possible stroke. It never lowers the tier the alert has reached.

    A positive joining the alert is announced again (alert.repeated: the dashboards sound and notify),
    so a claimed alert does not hide a new photo. One that makes the alert worse calls every tier
    reached so far again, saying what changed, on the deadline of what the alert now is: an open alert
    keeps the sooner of its deadline and the new one; a claimed one is re-opened."""
    worse_severity = severity_rank(result.severity) > severity_rank(alert.severity)
    severity = result.severity if worse_severity else alert.severity
    becomes_urgent = result.is_urgent and not alert.urgent
    becomes_positive = result.is_positive and alert.kind == Alert.Kind.REVIEW
    worse = worse_severity or becomes_urgent or becomes_positive
    changes = {
        "scan_count": F("scan_count") + 1,
        "latest_scan": scan,
        "severity": severity,
        "score": max(alert.score, result.score),
    }
    if result.is_positive:
        changes["kind"] = Alert.Kind.POSITIVE
    stroke_pattern_now = result.is_positive and result.is_stroke_pattern and not alert.stroke_pattern_positive
    if becomes_urgent:
        changes.update(urgent=True, pattern=result.pattern)
    elif not alert.pattern or (alert.urgent and result.is_stroke_pattern):  # a possible stroke, then the pattern
        changes["pattern"] = result.pattern
    if stroke_pattern_now:
        changes.update(stroke_pattern_positive=True, pattern=result.pattern)
    reopen = alert.status == Alert.Status.ACKNOWLEDGED and worse
    call_again = worse and alert.status in Alert.ACTIVE_STATUSES
    if call_again:
        changes.update(_called_again(alert, severity=severity, urgent=alert.urgent or becomes_urgent, now=now))
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
    alert.refresh_from_db()
    if call_again:
        what = [f"severity {severity}"] if worse_severity else []
        if becomes_urgent:
            what.append("now the stroke pattern" if stroke_pattern_now else "now a possible stroke")
        if becomes_positive:
            what.append("signs of facial paralysis, no longer only a photo to review")
        _start_round(alert, reason=f"a worse photo (scan {scan.id}): {', '.join(what)}", now=now, event=event)
    return alert


def alert_make_urgent(*, alert_id: int, reason: str, now: datetime | None = None) -> bool:
    """A result of the alert's episode became a possible stroke after it was recorded (the care team
    corrected the time of onset): the alert, if active and not urgent yet, becomes urgent, on the urgent
    deadline, and every tier reached is called again (a claimed one is re-opened). True if it changed."""
    now = now or timezone.now()
    with transaction.atomic():
        alert = (
            Alert.objects.select_for_update()
            .filter(id=alert_id, status__in=Alert.ACTIVE_STATUSES, urgent=False)
            .first()
        )
        if alert is None:
            return False
        reopen = alert.status == Alert.Status.ACKNOWLEDGED
        changes = {"urgent": True, **_called_again(alert, severity=alert.severity, urgent=True, now=now)}
        Alert.objects.filter(id=alert.id).update(**changes)
        event = AlertEvent.objects.create(
            alert_id=alert.id,
            kind=AlertEvent.Kind.REOPENED if reopen else AlertEvent.Kind.REPEATED,
            source=AlertEvent.Source.SYSTEM,
            note=reason[:500],
        )
        publish_alert(
            event_type="alert.repeated",
            alert_id=alert.id,
            patient_id=alert.patient_id,
            version=event.id,
            reopened=reopen,
        )
        alert.refresh_from_db()
        _start_round(alert, reason=f"now a possible stroke: {reason}", now=now, event=event)
    return True


def _called_again(alert: Alert, *, severity: str, urgent: bool, now: datetime) -> dict:
    """The changes that put an active alert, made worse, back on the clock: a claimed one re-opened on
    the deadline of what it now is; an open one keeps the sooner of its deadline and that one."""
    deadline = now + _open_deadline(severity, urgent=urgent, level=alert.escalation_level)
    if alert.status == Alert.Status.ACKNOWLEDGED:
        return {
            "status": Alert.Status.OPEN,
            "acknowledged_by": None,
            "acknowledged_at": None,
            "next_escalation_at": deadline,
        }
    if alert.next_escalation_at is not None:
        deadline = min(deadline, alert.next_escalation_at)
    return {"next_escalation_at": deadline}


def _open_deadline(severity: str, *, urgent: bool, level: int) -> timedelta:
    """How long an alert at ``level``, called again, waits for a claim before its next step (at the top
    tier: its next repeat, no later than its severity's deadline)."""
    deadline = ack_deadline(severity, urgent=urgent)
    return min(deadline, top_tier_repeat()) if level >= TOP_TIER else deadline


def _record_calls(alert: Alert, calls: list[tuple[int, int]], *, now: datetime, event: AlertEvent) -> None:
    """Record (tier, repeat) calls of the alert's current round as due, and queue the task that makes
    them once this is committed (alerts/notify.py). A top-tier repeat not made yet is replaced by the
    newer one: the triage desk is called for the alert as it is now, once. ``event`` (what made them
    due) becomes the alert's latest call: each open screen sounds once per call (static/portal/live.js)."""
    Alert.objects.filter(id=alert.id).update(call_event=event)
    if any(repeat for _, repeat in calls):
        AlertCall.objects.filter(alert_id=alert.id, round=alert.call_round, made_at__isnull=True, repeat__gt=0).delete()
    AlertCall.objects.bulk_create(
        [
            AlertCall(alert_id=alert.id, round=alert.call_round, tier=tier, repeat=repeat, due_at=now)
            for tier, repeat in calls
        ],
        ignore_conflicts=True,
    )
    notify_on_commit(alert.id, max(tier for tier, _ in calls))


def _start_round(alert: Alert, *, reason: str, now: datetime, event: AlertEvent) -> None:
    """Call again every tier the open alert has reached, from its patient's care team of now, saying
    why. Calls of an earlier round not made yet are replaced by these."""
    AlertCall.objects.filter(alert_id=alert.id, made_at__isnull=True).delete()
    team_id = Patient.objects.filter(id=alert.patient_id).values_list("care_team_id", flat=True).first()
    Alert.objects.filter(id=alert.id).update(
        call_round=F("call_round") + 1, call_reason=reason[:300], called_team_id=team_id, repeat_count=0
    )
    alert.refresh_from_db()
    _record_calls(alert, [(tier, 0) for tier in range(alert.escalation_level + 1)], now=now, event=event)


def alert_acknowledge(*, alert_id: int, user, source: str, remote_addr: str | None = None) -> Alert:
    alert = _actionable_or_raise(user=user, alert_id=alert_id)
    now = timezone.now()
    with transaction.atomic():
        claimed = Alert.objects.filter(id=alert.id, status=Alert.Status.OPEN).update(
            status=Alert.Status.ACKNOWLEDGED,
            acknowledged_by=user,
            acknowledged_at=now,
            next_escalation_at=now + claim_timeout(),
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
    by that clinician (a claimed alert calls nobody, so no tier is called twice), its outcome cleared,
    the claim running for ALERT_CLAIM_TIMEOUT_MINUTES from the undo. Refused (AlertConflict) after the
    window, for another clinician's resolution, or when a newer alert of the patient is already active
    (work on that one)."""
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
            next_escalation_at=now + claim_timeout(),
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


def alert_sweep(*, now: datetime | None = None) -> dict[str, int]:
    """The clock of alerts (Celery beat, on a queue of its own: portal/queues.py): claims that no longer
    hold are released, the care team a patient moved to is called, overdue alerts escalate, and calls
    nobody is making any more are queued again. Returns how many of each."""
    now = now or timezone.now()
    return {
        "released": _guarded(alert_release_lapsed_claims, now=now),
        "moved": _guarded(alert_follow_team_moves, now=now),
        "escalated": alert_escalate_overdue(now=now),
        "requeued": _guarded(alert_requeue_unmade_calls, now=now),
    }


def _guarded(step, *, now: datetime) -> int:
    try:
        return step(now=now)
    except Exception:  # noqa: BLE001 - one step failing must never stop escalation
        logger.exception("alert sweep: %s failed; the next sweep tries again", step.__name__)
        return 0


def alert_release_lapsed_claims(*, now: datetime) -> int:
    """A claim holds while its clinician may see the patient and for ALERT_CLAIM_TIMEOUT_MINUTES. A claim
    by someone who can no longer see the patient (taken off the care team, deactivated: however it was
    done) is released at once: open again, on its deadline, every tier reached called again. A claim
    left unresolved past its timeout goes back to open and escalates one tier, as an on-call pager
    re-triggers an acknowledged incident."""
    released = 0
    claimed = Alert.objects.filter(status=Alert.Status.ACKNOWLEDGED).select_related("acknowledged_by")
    for alert in claimed:
        claimant = alert.acknowledged_by
        if not _may_still_act(claimant, patient_id=alert.patient_id):
            who = claimant.get_username() if claimant else "its claimant"
            released += _release_claim(
                alert.id, reason=f"claim released: {who} can no longer see the patient", escalate=False, now=now
            )
        elif alert.next_escalation_at is not None and alert.next_escalation_at <= now:
            minutes = settings.ALERT_CLAIM_TIMEOUT_MINUTES
            released += _release_claim(
                alert.id,
                reason=f"claimed by {claimant.get_username()} and not resolved in {minutes} minutes",
                escalate=True,
                now=now,
            )
    return released


def _may_still_act(user, *, patient_id: int) -> bool:
    if user is None or not user.is_active or not user_role(user).is_clinical:
        return False
    return patient_list_for_user(user=user).filter(id=patient_id).exists()


def _release_claim(alert_id: int, *, reason: str, escalate: bool, now: datetime) -> int:
    with transaction.atomic():
        alert = Alert.objects.select_for_update().filter(id=alert_id, status=Alert.Status.ACKNOWLEDGED).first()
        if alert is None:
            return 0
        level = min(alert.escalation_level + 1, TOP_TIER) if escalate else alert.escalation_level
        Alert.objects.filter(id=alert.id).update(
            status=Alert.Status.OPEN,
            acknowledged_by=None,
            acknowledged_at=None,
            escalation_level=level,
            next_escalation_at=now + _open_deadline(alert.severity, urgent=alert.urgent, level=level),
        )
        event = AlertEvent.objects.create(
            alert_id=alert.id, kind=AlertEvent.Kind.RELEASED, source=AlertEvent.Source.SYSTEM, note=reason[:500]
        )
        # Announced as a repeat: the screens sound again for an alert nobody holds any more.
        publish_alert(
            event_type="alert.repeated", alert_id=alert.id, patient_id=alert.patient_id, version=event.id, reopened=True
        )
        _start_round(alert, reason=reason, now=now, event=event)
    return 1


def alert_follow_team_moves(*, now: datetime) -> int:
    """An active alert whose patient moved to another care team (in the admin, by an import: however it
    was done) is told to the new team: an open one calls every tier reached again, from the new team's
    members up; a claimed one (its claimant still sees the patient) reaches the new team's screens."""
    moved = 0
    active = Alert.objects.filter(status__in=Alert.ACTIVE_STATUSES).values_list(
        "id", "called_team_id", "patient__care_team_id"
    )
    for alert_id, called, team in active:
        if called != team:
            moved += _follow_team_move(alert_id, now=now)
    return moved


def _follow_team_move(alert_id: int, *, now: datetime) -> int:
    with transaction.atomic():
        alert = (
            Alert.objects.select_for_update(of=("self",))
            .select_related("patient__care_team")
            .filter(id=alert_id)
            .first()
        )
        if alert is None or alert.status not in Alert.ACTIVE_STATUSES:
            return 0
        team = alert.patient.care_team
        if alert.called_team_id == (team.id if team else None):
            return 0
        reason = f"the patient moved to the care team {team.name}" if team else "the patient has no care team now"
        event = AlertEvent.objects.create(
            alert_id=alert.id, kind=AlertEvent.Kind.TEAM_CHANGED, source=AlertEvent.Source.SYSTEM, note=reason
        )
        publish_alert(event_type="alert.updated", alert_id=alert.id, patient_id=alert.patient_id, version=event.id)
        if alert.status == Alert.Status.OPEN:
            _start_round(alert, reason=reason, now=now, event=event)
        else:
            Alert.objects.filter(id=alert.id).update(called_team=team)
    return 1


def alert_requeue_unmade_calls(*, now: datetime) -> int:
    """Queue again the calls of open alerts that are due and that no task is making: taken by a task
    that was cut off and not redelivered (its lease is over), or never taken (the broker was down when
    the task was queued, or lost it)."""
    lease = timedelta(seconds=call_lease_seconds())
    stale = AlertCall.objects.filter(
        Q(taken_until__lt=now) | Q(taken_until__isnull=True, due_at__lt=now - lease),
        made_at__isnull=True,
        alert__status=Alert.Status.OPEN,
        round=F("alert__call_round"),
    )
    alert_ids = sorted(set(stale.values_list("alert_id", flat=True)))
    for alert_id in alert_ids:
        with transaction.atomic():
            stale.filter(alert_id=alert_id).update(taken_by="", taken_until=None)
            notify_on_commit(alert_id, TOP_TIER)
    return len(alert_ids)


def claim_timeout() -> timedelta:
    return timedelta(minutes=settings.ALERT_CLAIM_TIMEOUT_MINUTES)


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
        _record_calls(alert, [(level, repeat)], now=now, event=event)
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
