"""Home, information page and the health check (login is Django's, locked out by portal/auth.py)."""

from __future__ import annotations

from collections import Counter

import redis
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from alerts.selectors import alert_open_count
from inference.selectors import classifier_health
from portal.queues import ANALYSIS, FHIR, NOTIFY, WORKER_NAMES, pool_of_worker
from scans.selectors import scan_list_for_user


@login_required
def home(request):
    recent = scan_list_for_user(user=request.user)[:5]
    return render(
        request,
        "portal/home.html",
        {
            "recent_scans": recent,
            "open_alerts": alert_open_count(user=request.user),
        },
    )


def information(request):
    return render(request, "portal/information.html", {"emergency_number": settings.EMERGENCY_PHONE_NUMBER})


@never_cache
def healthz(request):
    """Liveness of the parts a scan needs (database, Redis, at least one Celery worker): 503 when one is
    down. The pools that make calls and FHIR sends are reported, "degraded" when one is missing (the
    web still serves). The classifier is reported too: when it cannot be loaded the status is "degraded" but the
    answer stays 200, since scans are still screened (by the asymmetry rule) and a load balancer must
    not take every web node out of service for it."""
    checks: dict[str, str] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure is reported, not raised
        checks["database"] = f"error: {exc.__class__.__name__}"
    try:
        redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1).ping()
        checks["redis"] = "ok"
    except Exception as exc:  # noqa: BLE001
        checks["redis"] = f"error: {exc.__class__.__name__}"
    if checks["redis"] == "ok":
        from portal.celery import app

        try:
            replies = app.control.ping(timeout=1.0)
            answering = Counter(pool_of_worker(name) for reply in replies for name in reply)
            # Beside the analyses, the pools that wait on other servers (portal/queues.py): without them
            # scans are still analysed and shown, but nobody is called, or nothing reaches the FHIR server.
            for pool in (ANALYSIS, NOTIFY, *([FHIR] if settings.FHIR_ENDPOINT else [])):
                name = WORKER_NAMES[pool]
                checks[name] = f"ok ({answering[pool]})" if answering[pool] else f"error: no {name} answered"
        except Exception as exc:  # noqa: BLE001
            checks["worker"] = f"error: {exc.__class__.__name__}"
    else:
        checks["worker"] = "unknown: Redis is down"
    serving = all(checks[part].startswith("ok") for part in ("database", "redis", "worker"))
    if checks["database"] == "ok":
        checks["classifier"] = classifier_health()
    healthy = all(value.startswith("ok") for value in checks.values())
    return JsonResponse({"status": "ok" if healthy else "degraded", "checks": checks}, status=200 if serving else 503)
