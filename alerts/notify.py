"""Escalation that reaches people beyond an open dashboard: Web Push and e-mail at each tier.

Each tier adds people who were not reached before (ESCALATION_TIERS):
- 0, the care team: its members (its lead physicians too when it has no other member; the triage
  desk when the patient has no care team or nobody is in it);
- 1, the lead physician: the team's leads not reached yet;
- 2, the triage desk: every active staff user not reached yet.
At the top tier an unclaimed alert calls the triage desk again every ALERT_TOP_TIER_REPEAT_MINUTES.
Everyone who may see the patient still sees the alert on the dashboard from the start; these are the
people *called*. Pushes and e-mails name no patient (a lock screen or a mailbox is not the portal):
the alert number, its kind, severity and tier, and a link to sign in and see it.
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor, wait
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from alerts.models import ESCALATION_TIERS, Alert, AlertCall, AlertEvent, PushSubscription
from portal.clinical import DISCLAIMER
from portal.models import CareTeamMembership
from portal.outbound import guarded_session, push_endpoint_problem

logger = logging.getLogger(__name__)


def tier_recipients(alert: Alert, level: int) -> list:
    """The active users called at `level` who were not called at a lower one."""
    return sorted(_reached_by(alert, level) - _reached_by(alert, level - 1), key=lambda user: user.id)


def _reached_by(alert: Alert, level: int) -> set:
    if level < 0:
        return set()
    users = get_user_model().objects.filter(is_active=True)
    team = alert.patient.care_team_id
    memberships = CareTeamMembership.objects.filter(care_team_id=team, physician__user__isnull=False)
    members = set(users.filter(physician__memberships__in=memberships.filter(role=CareTeamMembership.Role.MEMBER)))
    leads = set(users.filter(physician__memberships__in=memberships.filter(role=CareTeamMembership.Role.LEAD)))
    reached = members or leads
    if not reached:  # no care team (or nobody in it): the triage desk is called from the first tier
        reached = set(users.filter(is_staff=True))
    if level >= 1:
        reached |= leads
    if level >= 2:
        reached |= set(users.filter(is_staff=True))
    return reached


def message(alert: Alert, level: int) -> tuple[str, str, str]:
    """(title, body, url) with no patient data: the recipient signs in to see who it is."""
    routine = "Facial paralysis alert" if alert.kind == Alert.Kind.POSITIVE else "Inconclusive photo to review"
    what = alert.urgent_label or routine
    url = f"{settings.PORTAL_BASE_URL.rstrip('/')}/alerts/#alert-{alert.id}"
    escalated = f" Not claimed in time: escalated to the {ESCALATION_TIERS[level]}." if level else ""
    # A call that starts over (round > 0) says why: what changed since the last calls.
    changed = f" Called again: {alert.call_reason}." if alert.call_round and alert.call_reason else ""
    body = (
        f"Alert #{alert.id}, severity {alert.severity}.{changed}{escalated} Sign in to see the patient and "
        f"claim it. {DISCLAIMER}"
    )
    return f"{what} #{alert.id}", body, url


def push_configured() -> bool:
    return bool(settings.VAPID_PRIVATE_KEY and settings.VAPID_PUBLIC_KEY)


NOBODY = {"pushed": 0, "mailed": 0, "people": 0}


def call_lease_seconds() -> int:
    """How long a task may take its calls before another may make them: past the task's hard time limit
    it is surely dead (killed, or ended by the limit) and its calls still unmade are made again."""
    return settings.NOTIFY_SOFT_TIME_LIMIT_SECONDS + 15 + 15


def notify_alert(alert_id: int, level: int = 0, *, task_id: str = "") -> dict:
    """Make the alert's calls of its current round that are due and not made yet, in order (each tier,
    then repeats of the top tier). Calls are at least once: each is recorded as due by the transaction
    that made it due (alerts/services.py), taken here under the alert's row lock for call_lease_seconds,
    and marked made only after it was made. A call taken by a task that was then cut off (a killed
    worker, a soft time limit) is made by that task delivered again (the same ``task_id``), or, once
    the lease is over, by the task the sweep queues for it. A claimed or resolved alert calls nobody.
    ``level`` (the tier the task was queued for) is informational: what is due is read from the rows.

    Each call goes to the tier's new recipients: every push subscription of theirs, and their e-mail
    address. Returns counts; records who was reached as an AlertEvent."""
    now = timezone.now()
    with transaction.atomic():
        alert = Alert.objects.select_for_update(of=("self",)).select_related("patient").filter(id=alert_id).first()
        if alert is None or alert.status != Alert.Status.OPEN:
            return dict(NOBODY)
        free = Q(taken_until__isnull=True) | Q(taken_until__lt=now)
        if task_id:
            free |= Q(taken_by=task_id)
        calls = list(alert.calls.filter(free, round=alert.call_round, made_at__isnull=True).order_by("tier", "repeat"))
        if not calls:
            return dict(NOBODY)
        AlertCall.objects.filter(id__in=[call.id for call in calls]).update(
            taken_by=task_id, taken_until=now + timedelta(seconds=call_lease_seconds()), attempts=F("attempts") + 1
        )
    totals = dict(NOBODY)
    for call in calls:
        for key, count in call_tier(alert, call.tier, repeat=call.repeat).items():
            totals[key] += count
        AlertCall.objects.filter(id=call.id).update(made_at=timezone.now())
    return totals


def call_tier(alert: Alert, level: int, *, repeat: int = 0) -> dict:
    """Push and e-mail the tier's recipients about the alert, all at once (NOTIFY_CALLS_AT_ONCE), each
    push waiting at most NOTIFY_PUSH_TIMEOUT_SECONDS and all of them together NOTIFY_DEADLINE_SECONDS:
    a push service that never answers costs one slot until the deadline, not the others their call.
    Records who was reached as an AlertEvent."""
    title, body, url = message(alert, level)
    if repeat:
        body = f"Still not claimed (call {repeat + 1} to the {ESCALATION_TIERS[level]}). {body}"
    people = tier_recipients(alert, level)
    payload = {"title": title, "body": body, "url": url, "tag": f"alert-{alert.id}", "urgent": alert.urgent}
    # E-mails first, then the devices that took a push most recently: when there are more calls than
    # NOTIFY_CALLS_AT_ONCE, those known to answer are not kept waiting behind ones that never have.
    subscriptions = (
        PushSubscription.objects.filter(user__in=people).order_by(F("last_sent_at").desc(nulls_last=True), "id")
        if people and push_configured()
        else []
    )
    calls = [(_mail, user, (title, f"{body}\n\n{url}\n")) for user in people if user.email]
    calls += [(_push, subscription, payload) for subscription in subscriptions]
    outcomes = _call_at_once(calls)
    pushed = mailed = failed = late = 0
    for (send, target, _), outcome in zip(calls, outcomes, strict=True):
        if outcome is None:
            late += 1
            logger.warning("%s to %s about alert %s: no answer by the deadline", send.__name__[1:], target, alert.id)
            continue
        failed += outcome == "failed"
        if send is _push:
            pushed += _record_push(target, outcome)
        else:
            mailed += outcome == "sent"
    if people:
        AlertEvent.objects.create(
            alert=alert,
            kind=AlertEvent.Kind.NOTIFIED,
            source=AlertEvent.Source.SYSTEM,
            note=(
                f"{ESCALATION_TIERS[level]}{f' (repeat {repeat})' if repeat else ''}: "
                f"{', '.join(u.get_username() for u in people)}; {pushed} push, {mailed} e-mail"
                f"{f', {failed} failed' if failed else ''}{f', {late} unanswered by the deadline' if late else ''}"
            )[:500],
        )
    return {"pushed": pushed, "mailed": mailed, "people": len(people)}


def _call_at_once(calls: list) -> list:
    """Run each (send, target, payload) in a thread of its own, up to NOTIFY_CALLS_AT_ONCE at a time, and
    return what each returned, or None for one still waiting at NOTIFY_DEADLINE_SECONDS (its thread is
    left to end at its own timeout). Only network I/O runs in the threads; the database is written by
    the caller. The task's soft time limit is raised here, in the task's own thread, and goes up."""
    if not calls:
        return []
    pool = ThreadPoolExecutor(max_workers=min(settings.NOTIFY_CALLS_AT_ONCE, len(calls)), thread_name_prefix="call")
    try:
        futures = [pool.submit(send, target, payload) for send, target, payload in calls]
        wait(futures, timeout=settings.NOTIFY_DEADLINE_SECONDS)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return [future.result() if future.done() and not future.cancelled() else None for future in futures]


def _push(subscription: PushSubscription, payload: dict) -> str:
    """Send one push: "sent", "gone" (the browser unsubscribed) or "failed". Network only (a thread of
    _call_at_once)."""
    from pywebpush import WebPushException, webpush

    problem = push_endpoint_problem(subscription.endpoint)
    if problem:  # saved before the check existed, or PUSH_ALLOWED_HOSTS changed since: never sent to
        logger.warning("push subscription %s refused and dropped: %s", subscription.id, problem)
        return "gone"
    try:
        webpush(
            subscription_info={
                "endpoint": subscription.endpoint,
                "keys": {"p256dh": subscription.p256dh, "auth": subscription.auth},
            },
            data=json.dumps(payload),
            vapid_private_key=settings.VAPID_PRIVATE_KEY,
            vapid_claims={"sub": settings.VAPID_SUBJECT},
            ttl=3600,
            timeout=settings.NOTIFY_PUSH_TIMEOUT_SECONDS,
            # Connects only to the public address it checks as it connects, follows no redirect.
            requests_session=guarded_session(),
        )
    except WebPushException as exc:
        if getattr(exc.response, "status_code", None) in {404, 410}:  # unsubscribed, or the subscription expired
            return "gone"
        logger.warning("push to subscription %s failed: %s", subscription.id, exc)
        return "failed"
    except Exception:  # noqa: BLE001 - a push service being down must not stop the others
        logger.exception("push to subscription %s failed", subscription.id)
        return "failed"
    return "sent"


def _record_push(subscription: PushSubscription, outcome: str) -> int:
    if outcome == "gone":
        subscription.delete()
    elif outcome == "sent":
        PushSubscription.objects.filter(id=subscription.id).update(last_sent_at=timezone.now())
    return int(outcome == "sent")


def _mail(user, message: tuple[str, str]) -> str:
    """E-mail one user (EMAIL_TIMEOUT bounds the SMTP server's answers): "sent" or "failed"."""
    title, text = message
    try:
        return "sent" if send_mail(title, text, None, [user.email]) else "failed"
    except Exception:  # noqa: BLE001 - one mailbox failing must not stop the others
        logger.exception("could not e-mail user %s", user.id)
        return "failed"


# The task lives beside the work it does, so services can queue it without importing alerts/tasks.py
# (whose escalation sweep calls back into services). alerts/tasks.py imports it, so the worker
# registers it under its first name.
# On its own queue and pool (portal/queues.py), with a time limit of its own: SoftTimeLimitExceeded is
# raised in notify_alert's thread and nothing here catches it.
@shared_task(
    bind=True,
    name="alerts.tasks.notify_alert",
    ignore_result=True,
    soft_time_limit=settings.NOTIFY_SOFT_TIME_LIMIT_SECONDS,
    time_limit=settings.NOTIFY_SOFT_TIME_LIMIT_SECONDS + 15,
)
def notify_alert_task(self, alert_id: int, level: int) -> dict:
    # The task's id names who took the calls: a redelivery of this same message makes them again.
    return notify_alert(alert_id, level, task_id=self.request.id or "")


def notify_on_commit(alert_id: int, level: int) -> None:
    """Queue the calls of this tier for the worker, once the alert's change is committed."""

    def send() -> None:
        try:
            notify_alert_task.delay(alert_id, level)
        except Exception:  # noqa: BLE001 - the broker is down: the dashboards still show the alert
            logger.exception("could not queue the notifications of alert %s", alert_id)

    transaction.on_commit(send)
