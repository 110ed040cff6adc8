"""Reads of alerts, always scoped to what the user may see."""

from __future__ import annotations

from django.db.models import Case, IntegerField, Max, Min, OuterRef, QuerySet, Subquery, Value, When

from alerts.models import Alert, AlertEvent
from portal.selectors import patient_list_for_user
from scans.models import Scan

# Everything a serialized alert touches, fetched in the same query.
ALERT_RELATED = (
    "patient",
    "scan",
    "scan__referring_physician",
    "scan__result",
    "scan__result__model_version",
    "latest_scan",
    "latest_scan__referring_physician",
    "latest_scan__result",
    "latest_scan__result__model_version",
    "acknowledged_by",
    "resolved_by",
    "call_event",
)


def alert_list_for_user(*, user, status: str | None = None, after: int | None = None) -> QuerySet[Alert]:
    alerts = with_last_event(Alert.objects.filter(patient_id__in=patient_list_for_user(user=user).values("id")))
    if status:
        alerts = alerts.filter(status=status)
    if after is not None:
        alerts = alerts.filter(id__gt=after)
    return alerts


def alert_list_active_for_patient(*, user, patient_id: int) -> QuerySet[Alert]:
    """The patient's alerts still someone's to act on, if the user may see the patient."""
    return alert_list_for_user(user=user).filter(patient_id=patient_id, status__in=Alert.ACTIVE_STATUSES)


def with_last_event(alerts: QuerySet[Alert]) -> QuerySet[Alert]:
    """Alerts ready to serialize: related rows fetched, and ``last_event_id``, the id of the latest
    thing that happened to each (a client that remembers it can ask for every change since)."""
    # The episode's referring physician: named on its latest photo that named one (a card describes its
    # episode, not only its latest photo).
    referring = Scan.objects.filter(episode_alert=OuterRef("pk"), referring_physician__isnull=False).order_by("-id")
    # The annotation groups rows, and Django drops Meta.ordering from grouped queries: order again.
    return (
        alerts.select_related(*ALERT_RELATED)
        .annotate(
            last_event_id=Max("events__id"),
            episode_referring_physician=Subquery(referring.values("referring_physician__full_name")[:1]),
        )
        .order_by("-id")
    )


def changed_after(alerts: QuerySet[Alert], *, after_event: int) -> QuerySet[Alert]:
    """The alerts that changed (were raised, claimed, resolved, escalated, joined) after the event
    ``after_event``, in the order of their latest change; ``first_event_id`` > after_event marks
    those raised since."""
    changed = AlertEvent.objects.filter(id__gt=after_event).values("alert_id")
    return alerts.filter(id__in=changed).annotate(first_event_id=Min("events__id")).order_by("last_event_id")


def alert_changes_for_user(*, user, after_event: int) -> QuerySet[Alert]:
    return changed_after(alert_list_for_user(user=user), after_event=after_event)


def alert_feed_for_user(*, user) -> QuerySet[Alert]:
    """The triage order: active stroke-pattern alerts, other active positives, active review items,
    then resolved alerts; newest first within each (static/alerts/feed.js keeps the same order)."""
    triage = Case(
        When(status=Alert.Status.RESOLVED, then=Value(3)),
        When(urgent=True, then=Value(0)),
        When(kind=Alert.Kind.REVIEW, then=Value(2)),
        default=Value(1),
        output_field=IntegerField(),
    )
    return alert_list_for_user(user=user).order_by(triage, "-id")


def alert_get_visible(*, user, alert_id: int) -> Alert | None:
    return alert_list_for_user(user=user).filter(id=alert_id).first()


def alert_open_count(*, user) -> int:
    return alert_list_for_user(user=user, status=Alert.Status.OPEN).count()


def live_cursor() -> dict[str, int]:
    """Where a page's live feed starts (static/portal/live.js): the latest alert change ("event") and
    alert ("alert") recorded now. Read before the page's own list, so anything after it is replayed
    (a change seen twice is applied once; one never asked for is lost)."""
    return {
        "event": AlertEvent.objects.aggregate(latest=Max("id"))["latest"] or 0,
        "alert": Alert.objects.aggregate(latest=Max("id"))["latest"] or 0,
    }
