"""Rate limits that fail open: with the cache (Redis) down, people can still log in and upload.

A limit exists to slow abuse; refusing every login while Redis restarts would lock clinicians out of
alerts that are, by then, the only record of who needs help.
"""

from __future__ import annotations

import logging

from rest_framework.throttling import ScopedRateThrottle

from portal.auth import client_ip

logger = logging.getLogger(__name__)


class FailOpenScopedRateThrottle(ScopedRateThrottle):
    def get_ident(self, request):
        # DRF would believe any X-Forwarded-For; portal.auth.client_ip believes only trusted proxies.
        return client_ip(request)

    def allow_request(self, request, view):
        try:
            return super().allow_request(request, view)
        except Exception:  # noqa: BLE001 - any cache failure: let the request through, loudly
            logger.exception("rate limit cache unavailable; allowing the request")
            return True


class UploadThrottle(FailOpenScopedRateThrottle):
    """The view's scoped rate, for POST only: uploading is limited, reading scans is not."""

    def allow_request(self, request, view):
        return request.method != "POST" or super().allow_request(request, view)


class _Uploads:
    throttle_scope = "uploads"


def upload_allowed(request) -> bool:
    """The API's per-user upload limit, for the dashboard's New Scan form too (one shared count)."""
    return FailOpenScopedRateThrottle().allow_request(request, _Uploads())
