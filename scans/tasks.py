"""Celery tasks of scans: thin entry points into the worker's services (house style: task = API)."""

from __future__ import annotations

import logging

from celery import shared_task

from scans.analysis import scan_analyze
from scans.fhir_push import fhir_push_configured, fhir_push_due_ids, push_fhir_result
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


@shared_task(name="scans.tasks.push_unsent_fhir_results", ignore_result=True)
def push_unsent_fhir_results() -> int:
    """Queue again the FHIR pushes that ran out of retries or never reached the broker (beat, when
    FHIR_ENDPOINT is set)."""
    if not fhir_push_configured():
        return 0
    due = fhir_push_due_ids()
    for push_id in due:
        push_fhir_result.delay(push_id)
    if due:
        logger.warning("re-queued %d FHIR pushes", len(due))
    return len(due)


__all__ = ["analyze_scan", "push_fhir_result", "push_unsent_fhir_results", "requeue_stalled_scans"]
