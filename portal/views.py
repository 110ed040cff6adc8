"""Home, information page, login and the health check."""

from __future__ import annotations

import logging

import redis
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView
from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from alerts.selectors import alert_open_count
from scans.selectors import scan_list_for_user

logger = logging.getLogger(__name__)


@login_required
def home(request):
    recent = scan_list_for_user(user=request.user)[:5]
    return render(request, "portal/home.html", {
        "recent_scans": recent,
        "open_alerts": alert_open_count(user=request.user),
    })


def information(request):
    return render(request, "portal/information.html")


@never_cache
def healthz(request):
    """Liveness of the parts a scan needs: database, Redis, and at least one Celery worker."""
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
            checks["worker"] = f"ok ({len(replies)})" if replies else "error: no worker answered"
        except Exception as exc:  # noqa: BLE001
            checks["worker"] = f"error: {exc.__class__.__name__}"
    else:
        checks["worker"] = "unknown: Redis is down"
    healthy = all(value.startswith("ok") for value in checks.values())
    return JsonResponse({"status": "ok" if healthy else "degraded", "checks": checks},
                        status=200 if healthy else 503)


class RateLimitedLoginView(LoginView):
    """Django's login, refusing (429) after too many failures from one address or for one username."""

    def post(self, request, *args, **kwargs):
        if _too_many_failures(login_failure_keys(request)):
            return render(request, "registration/login.html", {
                "form": self.get_form(), "locked_out": True,
            }, status=429)
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form):
        try:
            for key in login_failure_keys(self.request):
                # add() starts the window; incr() counts within it without extending it.
                if not cache.add(key, 1, timeout=settings.LOGIN_FAILURE_WINDOW_SECONDS):
                    cache.incr(key)
        except Exception:  # noqa: BLE001 - see _too_many_failures
            logger.exception("login failure counter unavailable")
        return super().form_invalid(form)


def _too_many_failures(keys: list[str]) -> bool:
    """Fails open: with Redis down, people can still log in (see portal/throttling.py)."""
    try:
        return any((cache.get(key) or 0) >= settings.LOGIN_FAILURE_LIMIT for key in keys)
    except Exception:  # noqa: BLE001
        logger.exception("login failure counter unavailable; allowing the attempt")
        return False


def login_failure_keys(request) -> list[str]:
    username = (request.POST.get("username") or "").strip().lower()[:150]
    return [f"login-fail:addr:{request.META.get('REMOTE_ADDR', '')}", f"login-fail:user:{username}"]
