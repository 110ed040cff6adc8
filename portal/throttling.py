"""Rate limits that fail open: with the cache (Redis) down, people can still log in and upload.

A limit exists to slow abuse; refusing every login while Redis restarts would lock clinicians out of
alerts that are, by then, the only record of who needs help.
"""

from __future__ import annotations

import logging

from drf_spectacular.contrib.knox_auth_token import KnoxTokenScheme
from knox.auth import TokenAuthentication
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed, Throttled
from rest_framework.throttling import AnonRateThrottle, ScopedRateThrottle

from portal.auth import client_ip

logger = logging.getLogger(__name__)


class FailOpen:
    """Counts by the real client address, and lets the request through when the cache is down."""

    def get_ident(self, request):
        # DRF would believe any X-Forwarded-For; portal.auth.client_ip believes only trusted proxies.
        return client_ip(request)

    def allow_request(self, request, view):
        try:
            return super().allow_request(request, view)
        except Exception:  # noqa: BLE001 - any cache failure: let the request through, loudly
            logger.exception("rate limit cache unavailable; allowing the request")
            return True


class FailOpenScopedRateThrottle(FailOpen, ScopedRateThrottle):
    """The view's own scope (``throttle_scope``)."""


class AnonymousThrottle(FailOpen, AnonRateThrottle):
    """Every API request without credentials, per address (the "anon" rate): probing costs time."""

    def get_cache_key(self, request, view):
        # Used only once every authenticator has failed (below): asking request.user here would
        # start authentication again.
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class LoginAddressThrottle(AnonymousThrottle):
    """Login attempts per client address on the dashboard's and the admin's login forms, whatever the
    usernames (portal.middleware.LoginRateMiddleware): the same counter and rate (LOGIN_THROTTLE_RATE)
    as the token endpoint's "login" scope."""

    scope = "login"


class AnonymousThrottleAuthentication(BaseAuthentication):
    """The last authenticator: reached only by a request no other one recognised, it counts that
    request against the anonymous rate. DRF checks permissions before throttles, so a throttle class
    would never see an anonymous request to a view that needs a login; authentication comes first."""

    def authenticate(self, request):
        throttle = AnonymousThrottle()
        if not throttle.allow_request(request, None):
            raise Throttled(wait=throttle.wait())
        return None


class CountedTokenAuthentication(TokenAuthentication):
    """knox's token authentication, with a token that fails (made up, expired, malformed) counted
    against the anonymous rate: the failure ends DRF's authenticator chain before the anonymous
    throttle above is reached, so without this any `Authorization: Token <anything>` probed unlimited."""

    def authenticate(self, request):
        try:
            return super().authenticate(request)
        except AuthenticationFailed:
            AnonymousThrottleAuthentication().authenticate(request)  # Throttled (429) once over the rate
            raise


class CountedTokenScheme(KnoxTokenScheme):
    """The OpenAPI schema's security scheme for it: knox's own (drf-spectacular's contrib)."""

    target_class = CountedTokenAuthentication
