"""Reads of scans, always scoped to the patients the user may see."""

from __future__ import annotations

from django.db.models import QuerySet

from portal.selectors import patient_list_for_user
from scans.models import Scan


def scan_list_for_user(*, user) -> QuerySet[Scan]:
    return Scan.objects.filter(patient_id__in=patient_list_for_user(user=user).values("id")).select_related(
        "patient", "referring_physician", "result", "result__model_version", "episode_alert"
    )


def scan_get_visible(*, user, scan_id: int) -> Scan | None:
    return scan_list_for_user(user=user).filter(id=scan_id).first()
