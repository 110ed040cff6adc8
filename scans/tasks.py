from __future__ import annotations

from celery import shared_task


@shared_task(name="scans.tasks.requeue_stalled_scans", ignore_result=True)
def requeue_stalled_scans() -> int:
    from scans.services import scan_requeue_stalled

    return scan_requeue_stalled()
