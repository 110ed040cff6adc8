"""A database outage (a restart, a failover) answers 503 with Retry-After, not a 500 page.

Nothing was saved by the failed request, and the client is told to try again shortly; the mobile app
and the dashboard's upload form can then resend the same photo.
"""

from __future__ import annotations

import logging

from django.db import InterfaceError, OperationalError
from django.http import JsonResponse
from django.shortcuts import render

logger = logging.getLogger(__name__)

MESSAGE = "The service is briefly unavailable (database). Nothing was saved: please try again in a minute."


class DatabaseUnavailableMiddleware:
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
