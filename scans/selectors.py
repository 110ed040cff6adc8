"""Reads of scans. Every read for a user is scoped to the patients that user may see."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone

from inference.engine.repeatability import beyond_noise, combined
from portal.selectors import patient_list_for_user
from scans.models import Scan

# What a scan's answer (ScanSerializer) reads besides the scan.
SCAN_RELATED = ("patient", "referring_physician", "result", "result__model_version", "episode_alert")


def scan_list_for_user(*, user) -> QuerySet[Scan]:
    return Scan.objects.filter(patient_id__in=patient_list_for_user(user=user).values("id")).select_related(
        *SCAN_RELATED
    )


def scan_get_visible(*, user, scan_id: int) -> Scan | None:
    return scan_list_for_user(user=user).filter(id=scan_id).first()


def patient_finished_scans(*, user, patient_id: int) -> QuerySet[Scan]:
    """The patient's scans that have a result, oldest first (the patient's FHIR record); visible patients only."""
    return (
        scan_list_for_user(user=user)
        .filter(patient_id=patient_id, status=Scan.Status.DONE, result__isnull=False)
        .order_by("uploaded_at", "id")
    )


# What a timeline point takes from a result; a refused scan has none of them.
RESULT_FIELDS = (
    "label",
    "pattern",
    "severity",
    "score",
    "asymmetry_index",
    "index_repeatability",
    "index_interval",
    "change",
    "affected_side",
    "model_version",
)
BEYOND_NOISE = "beyond measurement noise"
NO_MEASURABLE_CHANGE = "no measurable change"


def patient_timeline(*, user, patient_id: int, limit: int = 200) -> list[dict]:
    """The patient's analysed and refused scans, oldest first, with what a trend needs (visible patients only).

    A refused photo has no result, so its result fields are None; it stays on the timeline because a run of
    refusals is itself something a clinician should see.
    """
    scans = (
        scan_list_for_user(user=user)
        .filter(patient_id=patient_id, status__in=[Scan.Status.DONE, Scan.Status.REJECTED])
        .order_by("-uploaded_at", "-id")[:limit]
    )
    points = []
    for scan in reversed(list(scans)):
        point = {
            "scan_id": scan.id,
            "uploaded_at": scan.uploaded_at,
            "status": scan.status,
            "status_reason": scan.status_reason,
        }
        if scan.status == Scan.Status.DONE:
            result = scan.result
            point.update(
                label=result.label,
                pattern=result.pattern,
                severity=result.severity,
                score=result.score,
                asymmetry_index=result.asymmetry_index,
                index_repeatability=result.index_repeatability,
                index_interval=result.index_interval,
                change=None,
                affected_side=result.affected_side,
                model_version=result.model_version_name,
                decision=result.decision,
            )
        else:
            point.update(dict.fromkeys(RESULT_FIELDS), decision={})
        points.append(point)
    _read_changes(points)
    return points


def _read_changes(points: list[dict]) -> None:
    """Each measured point's change against the previous measured one, read against both photos'
    repeatability (inference.engine.repeatability.beyond_noise); None where either has none."""
    previous = None
    for point in points:
        if point["asymmetry_index"] is None:
            continue
        if previous is not None and None not in (previous["index_repeatability"], point["index_repeatability"]):
            point["change"] = (
                BEYOND_NOISE
                if beyond_noise(
                    previous["asymmetry_index"],
                    previous["index_repeatability"],
                    point["asymmetry_index"],
                    point["index_repeatability"],
                )
                else NO_MEASURABLE_CHANGE
            )
        previous = point


def latest_change(points: list[dict]) -> dict | None:
    """The last two measured visits and how they compare, for the patient page; None before two."""
    measured = [p for p in points if p["asymmetry_index"] is not None]
    if len(measured) < 2 or measured[-1]["change"] is None:
        return None
    before, after = measured[-2], measured[-1]
    return {
        "before": before["asymmetry_index"],
        "after": after["asymmetry_index"],
        "before_at": before["uploaded_at"],
        "after_at": after["uploaded_at"],
        "beyond_noise": after["change"] == BEYOND_NOISE,
        "before_repeatability": before["index_repeatability"],
        "after_repeatability": after["index_repeatability"],
        "noise": combined(before["index_repeatability"], after["index_repeatability"]),
    }


def scan_stalled_ids(*, limit: int = 500) -> list[int]:
    """Scans that never reached a worker (still queued past the stall limit: the broker was down) or
    whose worker died mid-analysis (processing past it)."""
    stale = timezone.now() - timedelta(seconds=settings.SCAN_STALL_SECONDS)
    return list(
        Scan.objects.filter(
            Q(status=Scan.Status.QUEUED, uploaded_at__lt=stale) | Q(status=Scan.Status.PROCESSING, started_at__lt=stale)
        ).values_list("id", flat=True)[:limit]
    )
