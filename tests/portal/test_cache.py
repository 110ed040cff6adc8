"""portal/cache.py: every cache object of a process shares one Redis client (one connection pool)."""

from __future__ import annotations

import contextvars
import uuid

from django.core.cache import caches


def test_the_cache_of_each_asgi_request_shares_one_client_and_its_pool():
    """Django's cache objects are context-local: each ASGI request gets its own. They must not each
    open a connection to Redis."""
    key = f"test-cache-{uuid.uuid4().hex}"

    def one_request():
        caches["default"].set(key, "seen", 30)
        return caches["default"], caches["default"].get(key)

    # Two fresh contexts, as two requests under daphne are.
    first, seen_first = contextvars.Context().run(one_request)
    second, seen_second = contextvars.Context().run(one_request)
    assert first is not second  # Django's per-request objects, as before
    assert first._cache is second._cache  # one client: one pool of connections
    assert first._cache._get_connection_pool(write=True) is second._cache._get_connection_pool(write=True)
    assert seen_first == seen_second == "seen"
