"""The Celery queues, named from one base (CELERY_QUEUE), so that settings (which route the tasks) and
stack/processes.py (which starts a worker pool per queue) agree.

Analyses are CPU work; calls (Web Push, e-mail) and FHIR sends wait on other people's servers. Each has
its own queue and its own worker pool, so a push service or FHIR server that hangs never holds up an
analysis, nor the one the other.
"""

from __future__ import annotations

ANALYSIS, NOTIFY, FHIR = "analysis", "notify", "fhir"
# What each pool's worker processes are called (celery --hostname <name>-<node>@host; /healthz's checks).
WORKER_NAMES = {ANALYSIS: "worker", NOTIFY: "notifier", FHIR: "fhir"}


def queue_names(base: str) -> dict[str, str]:
    """{pool: queue}: analyses (and the beat sweeps) on ``base`` itself, the others beside it."""
    return {ANALYSIS: base, NOTIFY: f"{base}.notify", FHIR: f"{base}.fhir"}


def task_routes(base: str) -> dict[str, dict[str, str]]:
    queues = queue_names(base)
    return {
        "alerts.tasks.notify_alert": {"queue": queues[NOTIFY]},
        "scans.tasks.push_fhir_result": {"queue": queues[FHIR]},
    }


def pool_of_worker(hostname: str) -> str:
    """Which pool a worker serves, by its name (notifier-8000@host...); a worker named otherwise (a
    plain `celery worker`) serves the default queue, the analyses."""
    prefix = hostname.split("-", 1)[0]
    return next((pool for pool, name in WORKER_NAMES.items() if name == prefix and pool != ANALYSIS), ANALYSIS)
