"""Home, information page and the health check (login is Django's, locked out by portal/auth.py)."""

from __future__ import annotations

from collections import Counter

import redis
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from alerts.selectors import alert_open_count
from inference.selectors import classifier_health
from portal.queues import ANALYSIS, CLOCK, FHIR, NOTIFY, WORKER_NAMES, pool_of_worker
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


@never_cache
def session_state(request):
    """When this browser's session ends and why, for the page's sign-out notice (live.js). A request
    without the background header is someone using the screen: it moves the end on, as any page does."""
    from portal.credentials import session_end, session_ends_iso

    end = session_end(request.session) if request.user.is_authenticated else None
    if end is None:
        return JsonResponse({"signed_in": False}, status=401)
    return JsonResponse(
        {
            "signed_in": True,
            "ends_at": session_ends_iso(request.session),
            "reason": end[1],
            "idle_minutes": settings.SESSION_IDLE_MINUTES,
        }
    )


def information(request):
    return render(
        request,
        "portal/information.html",
        {"emergency_number": settings.EMERGENCY_PHONE_NUMBER, "stroke_window_hours": settings.STROKE_WINDOW_HOURS},
    )


@never_cache
def healthz(request):
    """Liveness of the parts a scan needs (database, Redis, at least one Celery worker): 503 when one is
    down. The pools that make calls, FHIR sends and the clock's sweeps are reported, "degraded" when one
    is missing (the web still serves). The classifier is reported too: when it cannot be loaded the
    status is "degraded" but the answer stays 200, since scans are still screened (by the asymmetry rule)
    and a load balancer must not take every web node out of service for it."""
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
            # Beside the analyses, the pools that wait on other servers and the clock (portal/queues.py):
            # without them scans are still analysed and shown, but nobody is called, nothing reaches the
            # FHIR server, or no alert escalates.
            for pool in (ANALYSIS, NOTIFY, CLOCK, *([FHIR] if settings.FHIR_ENDPOINT else [])):
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


class SignInView(LoginView):
    """Django's login page, saying why the last session ended when the page that was signed out tells
    it (live.js: ?signed_out=1&why=idle|shift&at=<ISO time>&open=<alerts open on that screen>)."""

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), "signed_out_notice": signed_out_notice(self.request.GET)}


def signed_out_notice(query) -> str:
    """The login page's words for a signed-out screen; only a reason, a time and a count are taken
    from the address, never words."""
    from datetime import datetime

    from django.utils import timezone
    from django.utils.dateformat import format as date_format
    from django.utils.formats import get_format

    if not query.get("signed_out"):
        return ""
    why = query.get("why")
    try:
        at = datetime.fromisoformat(query.get("at", "").replace("Z", "+00:00"))
        when = " at " + date_format(timezone.localtime(at), get_format("DATETIME_FORMAT")) if at.tzinfo else ""
    except ValueError:
        when = ""
    if why == "idle":
        notice = f"You were signed out{when}: nobody used this screen for {settings.SESSION_IDLE_MINUTES} minutes."
    elif why == "shift":
        notice = (
            f"You were signed out{when}: the session reached its limit of a shift ({settings.SESSION_MAX_HOURS} hours)."
        )
    else:
        notice = (
            "You were signed out: nobody used this screen for a while, or the session reached its limit of a shift."
        )
    try:
        still_open = max(0, min(int(query.get("open", "0")), 999))
    except ValueError:
        still_open = 0
    if still_open:
        alerts = "1 alert was" if still_open == 1 else f"{still_open} alerts were"
        notice += f" {alerts} open on this screen: the care team is still being called for them; sign in to see them."
    return notice + " Sign in again to keep receiving alerts."
