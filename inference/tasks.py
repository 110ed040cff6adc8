"""Thin Celery task: take the id, let the scans service do the work (house style: task = API)."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="inference.analyze_scan", ignore_result=True)
def analyze_scan(scan_id: int) -> None:
    from scans.services import scan_analyze

    scan_analyze(scan_id=scan_id)
