"""Sessions that know their real client and end on time, and database outages answered with 503."""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.contrib.auth import logout
from django.db import InterfaceError, OperationalError
from django.http import JsonResponse
from django.shortcuts import render
from qsessions.middleware import SessionMiddleware as QSessionMiddleware

from portal.auth import client_ip
from portal.credentials import ACTIVE_AT, ACTIVITY_RESOLUTION_SECONDS, BACKGROUND_HEADER, session_is_live

logger = logging.getLogger(__name__)

MESSAGE = "The service is briefly unavailable (database). Nothing was saved: please try again in a minute."


class SessionMiddleware(QSessionMiddleware):
    """django-qsessions' session middleware, recording the real client address (behind the reverse
    proxy REMOTE_ADDR is the proxy's)."""

    def process_request(self, request):
        request.session = self.SessionStore(
            ip=client_ip(request) or None,
            user_agent=request.headers.get("User-Agent", ""),
            session_key=request.COOKIES.get(settings.SESSION_COOKIE_NAME),
        )


class SessionLifetimeMiddleware:
    """A signed-in session ends SESSION_IDLE_MINUTES after the person last did something, and
    SESSION_MAX_HOURS after sign-in whatever they do (portal.credentials.session_ends_at). Requests a
    page makes by itself (BACKGROUND_HEADER) do not count as activity."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        session = request.session
        if user is not None and user.is_authenticated and session.session_key:
            now = time.time()
            if not session_is_live(session, now):
                logout(request)  # ends the stored session; the request goes on signed out
            elif (
                BACKGROUND_HEADER not in request.headers
                and now - session.get(ACTIVE_AT, 0) >= ACTIVITY_RESOLUTION_SECONDS
            ):
                session[ACTIVE_AT] = now  # saved by the session middleware; pushes expire_date on too
        return self.get_response(request)


class DatabaseUnavailableMiddleware:
    """A database outage (a restart, a failover) answers 503 with Retry-After, not a 500 page.

    Nothing was saved by the failed request, and the client is told to try again shortly; the mobile
    app and the dashboard's upload form can then resend the same photo."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, (OperationalError, InterfaceError)):
            return None
        logger.error("database unavailable during %s %s: %s", request.method, request.path, exception)
        if request.path.startswith("/api/"):
            response = JsonResponse({"detail": MESSAGE}, status=503)
        else:
            response = render(request, "503.html", {"message": MESSAGE}, status=503)
        response["Retry-After"] = "30"
        return response


class LoginRateMiddleware:
    """The dashboard's and the admin's login forms take at most LOGIN_THROTTLE_RATE attempts per client
    address, whatever the usernames, as the token endpoint does (portal/auth.py): one password tried
    against many accounts from one address is slowed to that rate. Answered 429 on the login page."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.method == "POST" and request.path in _login_paths():
            from portal.auth import locked_out
            from portal.throttling import LoginAddressThrottle

            if not LoginAddressThrottle().allow_request(request, None):
                logger.warning("login attempts from %s over the rate", client_ip(request))
                return locked_out(
                    request,
                    message="Too many sign-in attempts from this network address. Wait a minute, then try again.",
                )
        return self.get_response(request)


def _login_paths() -> set[str]:
    from django.urls import reverse

    return {reverse("login"), reverse("admin:login")}
