from __future__ import annotations

from celery import shared_task


@shared_task(name="alerts.tasks.escalate_overdue_alerts", ignore_result=True)
def escalate_overdue_alerts() -> int:
    from alerts.services import alert_escalate_overdue

    return alert_escalate_overdue()
