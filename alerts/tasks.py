from __future__ import annotations

from celery import shared_task


@shared_task(name="alerts.tasks.escalate_overdue_alerts", ignore_result=True)
def escalate_overdue_alerts() -> int:
    from alerts.services import alert_escalate_overdue

    return alert_escalate_overdue()


@shared_task(name="alerts.tasks.notify_alert", ignore_result=True)
def notify_alert_task(alert_id: int, level: int) -> dict:
    from alerts.notify import notify_alert

    return notify_alert(alert_id, level)
