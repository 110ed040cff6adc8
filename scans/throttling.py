"""The per-user upload limit, counted in decoding cost: one count for the API and the New Scan form.

Fails open like the portal's other limits (portal/throttling.py): with Redis down, uploads go on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from rest_framework.throttling import SimpleRateThrottle

from inference.engine.imaging import ImageRejected, UploadHeader
from portal.auth import client_ip

logger = logging.getLogger(__name__)


class UploadLimitReached(Exception):
    def __init__(self, wait: float | None):
        super().__init__(UPLOAD_LIMIT_MESSAGE)
        self.wait = wait


def admit_upload(request, raw: bytes, inspect: Callable[[bytes], UploadHeader]) -> UploadHeader:
    """The header checks and the per-user upload allowance, in one order for the API and the form:
    an upload spends its decoding cost, a refused file one unit (reading it was work too). Raises
    UploadLimitReached, or ImageRejected once the refused file is counted."""
    try:
        header, rejected = inspect(raw), None
    except ImageRejected as exc:
        header, rejected = None, exc
    limit = UploadCost()
    if not limit.charge(request, header.cost if header else 1):
        raise UploadLimitReached(limit.wait())
    if rejected is not None:
        raise rejected
    return header


UPLOAD_LIMIT_MESSAGE = (
    "Too many uploads (or very large ones) in a short time. Wait a few minutes, then try again; "
    "a photo as the camera saved it counts least."
)


class UploadCost(SimpleRateThrottle):
    """The per-user upload limit ("uploads" rate) counts cost, not requests: an upload whose decoding
    is N typical phone photos' work (inference.engine.imaging.UploadHeader.cost) uses N of the rate.
    One count for the API and the dashboard's New Scan form. Fails open, as the others do."""

    scope = "uploads"

    def get_cache_key(self, request, view):
        user = getattr(request, "user", None)
        ident = user.pk if user is not None and user.is_authenticated else client_ip(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}

    def charge(self, request, cost: int) -> bool:
        """Spend `cost` units of the user's allowance; False (nothing spent) when it would run over."""
        try:
            self.key = self.get_cache_key(request, None)
            self.history = self.cache.get(self.key, [])
            self.now = self.timer()
            while self.history and self.history[-1] <= self.now - self.duration:
                self.history.pop()
            if len(self.history) + cost > self.num_requests:
                return False
            self.history[:0] = [self.now] * cost
            self.cache.set(self.key, self.history, self.duration)
            return True
        except Exception:  # noqa: BLE001 - any cache failure: let the upload through, loudly
            logger.exception("rate limit cache unavailable; allowing the upload")
            return True
