"""Celery tasks of alerts: thin entry points (house style: task = API)."""

from __future__ import annotations

from celery import shared_task

from alerts.notify import notify_alert_task  # noqa: F401 - registered with the worker from here
from alerts.services import alert_sweep


@shared_task(name="alerts.tasks.escalate_overdue_alerts", ignore_result=True)
def escalate_overdue_alerts() -> dict[str, int]:
    return alert_sweep()
