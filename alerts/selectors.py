"""Reads of alerts, always scoped to what the user may see."""

from __future__ import annotations

from django.db.models import Case, IntegerField, QuerySet, Value, When

from alerts.models import Alert
from portal.selectors import patient_list_for_user


# Everything a serialized alert touches, fetched in the same query.
ALERT_RELATED = (
    "patient", "scan", "scan__referring_physician", "scan__result", "scan__result__model_version",
    "latest_scan", "latest_scan__referring_physician", "latest_scan__result",
    "latest_scan__result__model_version", "acknowledged_by", "resolved_by",
)


def alert_list_for_user(*, user, status: str | None = None, after: int | None = None) -> QuerySet[Alert]:
    alerts = Alert.objects.filter(patient_id__in=patient_list_for_user(user=user).values("id")).select_related(
        *ALERT_RELATED)
    if status:
        alerts = alerts.filter(status=status)
    if after is not None:
        alerts = alerts.filter(id__gt=after)
    return alerts


def alert_feed_for_user(*, user) -> QuerySet[Alert]:
    """The triage order: open or claimed stroke-pattern alerts first, then everything newest first."""
    urgent_first = Case(When(urgent=True, status__in=(Alert.Status.OPEN, Alert.Status.ACKNOWLEDGED), then=Value(0)),
                        default=Value(1), output_field=IntegerField())
    return alert_list_for_user(user=user).order_by(urgent_first, "-id")


def alert_get_visible(*, user, alert_id: int) -> Alert | None:
    return alert_list_for_user(user=user).filter(id=alert_id).first()


def alert_open_count(*, user) -> int:
    return alert_list_for_user(user=user, status=Alert.Status.OPEN).count()
