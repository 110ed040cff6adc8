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


def patient_timeline(*, user, patient_id: int, limit: int = 200) -> list[dict]:
    """The patient's analysed scans, oldest first, with what a trend needs (visible patients only)."""
    scans = (scan_list_for_user(user=user).filter(patient_id=patient_id, status=Scan.Status.DONE)
             .order_by("-uploaded_at")[:limit])
    points = []
    for scan in reversed(list(scans)):
        result = scan.result
        points.append({
            "scan_id": scan.id,
            "uploaded_at": scan.uploaded_at,
            "label": result.label,
            "severity": result.severity,
            "score": result.score,
            "asymmetry_index": result.measurements.get("asymmetry_index"),
            "affected_side": result.affected_side,
            "model_version": result.model_version_name,
        })
    return points
