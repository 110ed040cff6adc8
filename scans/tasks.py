"""Celery tasks of scans: thin entry points into scans.services (house style: task = API)."""

from __future__ import annotations

from celery import shared_task


# Registered under its first name, so that messages queued before it moved here still run.
@shared_task(name="inference.analyze_scan", ignore_result=True)
def analyze_scan(scan_id: int) -> None:
    from scans.services import scan_analyze

    scan_analyze(scan_id=scan_id)


@shared_task(name="scans.tasks.requeue_stalled_scans", ignore_result=True)
def requeue_stalled_scans() -> int:
    from scans.services import scan_requeue_stalled

    return scan_requeue_stalled()
