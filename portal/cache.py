"""Django's Redis cache, with one client (and so one connection pool) per process.

Django makes a new cache object for every ASGI request (its cache connections are context-local),
and its Redis client keeps its connection pool on that object: under daphne every request opened a
TCP connection to Redis and dropped it (py-spy, bench/load.py: most of an upload's rate-limit check
was spent connecting). Every cache object of a process now shares one client per configuration.
"""

from __future__ import annotations

import threading

from django.core.cache.backends.redis import RedisCache
from django.utils.functional import cached_property

_clients: dict[tuple, object] = {}
_lock = threading.Lock()


class SharedRedisCache(RedisCache):
    @cached_property
    def _cache(self):
        key = (tuple(self._servers), tuple(sorted((name, repr(value)) for name, value in self._options.items())))
        with _lock:
            client = _clients.get(key)
            if client is None:
                # redis-py's pools are thread-safe and start over in a forked child (Celery's workers).
                client = _clients[key] = self._class(self._servers, **self._options)
            return client
