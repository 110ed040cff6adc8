"""The Celery queues, named from one base (CELERY_QUEUE), so that settings (which route the tasks) and
stack/processes.py (which starts a worker pool per queue) agree.

Analyses are CPU work; calls (Web Push, e-mail) and FHIR sends wait on other people's servers; the
clock's sweeps (Celery beat: escalating overdue alerts, releasing lapsed claims, re-queueing stalled
scans and unsent results) must run on time whatever else is queued. Each has its own queue and its own
worker pool, so a push service or FHIR server that hangs never holds up an analysis, nor the one the
other, and an upload burst never holds up the clock that calls people (an urgent deadline is 5 minutes;
200 queued analyses took longer than that to drain on a two-core node).
"""

from __future__ import annotations

ANALYSIS, NOTIFY, FHIR, CLOCK = "analysis", "notify", "fhir", "clock"
# What each pool's worker processes are called (celery --hostname <name>-<node>@host; /healthz's checks).
WORKER_NAMES = {ANALYSIS: "worker", NOTIFY: "notifier", FHIR: "fhir", CLOCK: "clock"}
# The pools beside the analyses' (each started by every worker node: stack/processes.py).
SIDE_POOLS = (NOTIFY, FHIR, CLOCK)
# Celery beat's periodic tasks: all on the clock's queue.
SWEEPS = (
    "alerts.tasks.escalate_overdue_alerts",
    "scans.tasks.requeue_stalled_scans",
    "scans.tasks.push_unsent_fhir_results",
)


def queue_names(base: str) -> dict[str, str]:
    """{pool: queue}: analyses on ``base`` itself, the others beside it."""
    return {ANALYSIS: base, NOTIFY: f"{base}.notify", FHIR: f"{base}.fhir", CLOCK: f"{base}.clock"}


def task_routes(base: str) -> dict[str, dict[str, str]]:
    queues = queue_names(base)
    return {
        "alerts.tasks.notify_alert": {"queue": queues[NOTIFY]},
        "scans.tasks.push_fhir_result": {"queue": queues[FHIR]},
        **{sweep: {"queue": queues[CLOCK]} for sweep in SWEEPS},
    }


def pool_of_worker(hostname: str) -> str:
    """Which pool a worker serves, by its name (notifier-8000@host...); a worker named otherwise (a
    plain `celery worker`) serves the default queue, the analyses."""
    prefix = hostname.split("-", 1)[0]
    return next((pool for pool, name in WORKER_NAMES.items() if name == prefix and pool != ANALYSIS), ANALYSIS)
