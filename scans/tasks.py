"""Celery tasks of scans: thin entry points into the worker's services (house style: task = API)."""

from __future__ import annotations

import logging

from celery import shared_task

from scans.analysis import scan_analyze
from scans.selectors import scan_stalled_ids

logger = logging.getLogger(__name__)


# Registered under its first name, so that messages queued before it moved here still run.
@shared_task(name="inference.analyze_scan", ignore_result=True)
def analyze_scan(scan_id: int) -> None:
    scan_analyze(scan_id=scan_id)


@shared_task(name="scans.tasks.requeue_stalled_scans", ignore_result=True)
def requeue_stalled_scans() -> int:
    """Queue again the scans that never reached a worker (broker down) or whose worker died."""
    stalled = scan_stalled_ids()
    for scan_id in stalled:
        analyze_scan.delay(scan_id)
    if stalled:
        logger.warning("re-enqueued %d stalled scans", len(stalled))
    return len(stalled)
