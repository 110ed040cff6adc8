"""The Celery queues (portal/queues.py): which pool serves which task."""

from __future__ import annotations

from django.conf import settings

from portal.queues import ANALYSIS, CLOCK, WORKER_NAMES, queue_names
from stack.processes import Stack


def test_the_clocks_sweeps_run_on_a_queue_no_analysis_fills_served_by_a_pool_of_their_own():
    """Issue 40: the escalation sweep ran on the analysis queue, so during an upload burst the clock that
    calls people waited behind every queued analysis (two processes, 120 s a task at most, against an
    urgent deadline of 5 minutes)."""
    queues = queue_names(settings.CELERY_TASK_DEFAULT_QUEUE)
    routes = settings.CELERY_TASK_ROUTES
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        assert routes[entry["task"]]["queue"] == queues[CLOCK] != queues[ANALYSIS], entry["task"]
    assert "alerts.tasks.escalate_overdue_alerts" in {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert all(route["queue"] != queues[ANALYSIS] for route in routes.values())  # analyses go to the default queue

    commands = Stack(env={"CELERY_QUEUE": settings.CELERY_TASK_DEFAULT_QUEUE}).commands()
    served = {
        name: command[command.index("--queues") + 1] for name, command in commands.items() if "--queues" in command
    }
    assert served[WORKER_NAMES[CLOCK]] == queues[CLOCK]
    assert served[WORKER_NAMES[ANALYSIS]] == queues[ANALYSIS]
    assert list(served.values()).count(queues[CLOCK]) == 1
