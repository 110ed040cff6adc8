"""Open sockets bound to their user's current rights, without a database read per frame.

- Whatever changes what a user may do (portal.credentials.rights_changed: deactivation, the staff
  flag, a new password, a token or session ended) bumps the user's rights version in the shared
  cache and pushes a `rights.changed` event to the user's sockets.
- Each socket keeps the verdict it last read from the database (active, staff, and until when its
  session or token lasts). Before it sends a frame, or acts on one, it checks that verdict in memory.
  It reads the verdict again when a rights.changed event arrives (in order with the frames, so
  nothing queued after the change is sent), when the process's watch sees the cached version move
  (every SOCKET_RIGHTS_CHECK_SECONDS, one Redis round trip for all the sockets of the process, for
  an event that was lost), when its credential's end time passes, and every
  SOCKET_RIGHTS_RECHECK_SECONDS in any case (a change made behind Django's back, in SQL).
- At most SOCKETS_PER_USER open sockets per user, counted across every web process in Redis; an
  entry not refreshed by the watch for three intervals (a crashed process) stops counting.
"""

from __future__ import annotations

import logging
import time
from functools import lru_cache

import redis
from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache import cache

from alerts.events import publish_now, user_group

logger = logging.getLogger(__name__)


def _version_key(user_id: int) -> str:
    return f"rights-version:{user_id}"


def rights_version(user_id: int) -> int | None:
    try:
        return cache.get(_version_key(user_id))
    except Exception:  # noqa: BLE001 - Redis down: report "unknown", which makes sockets re-read
        logger.warning("rights version unavailable for user %s", user_id)
        return -1


def on_rights_changed(sender, user_id: int, **kwargs) -> None:
    """portal.credentials.rights_changed (after commit): bump the version, tell the user's sockets."""
    try:
        cache.add(_version_key(user_id), 0, timeout=None)
        cache.incr(_version_key(user_id))
    except Exception:  # noqa: BLE001 - the sockets' periodic re-read still catches the change
        logger.exception("could not bump the rights version of user %s", user_id)
    try:
        publish_now([user_group(user_id)], {"type": "rights.changed"})
    except Exception:  # noqa: BLE001
        logger.exception("could not tell the sockets of user %s that their rights changed", user_id)


@lru_cache(maxsize=1)
def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)


def _sockets_key(user_id: int) -> str:
    return f"{settings.CACHES['default']['KEY_PREFIX']}:open-sockets:{user_id}"


def _stale_after() -> float:
    return 3 * settings.SOCKET_RIGHTS_CHECK_SECONDS


@sync_to_async(thread_sensitive=False)
def register_socket(user_id: int, channel_name: str) -> bool:
    """Count this socket against the user's cap; False (and not counted) when the cap is reached."""
    key, now = _sockets_key(user_id), time.time()
    try:
        pipe = _redis().pipeline()
        pipe.zremrangebyscore(key, 0, now - _stale_after())
        pipe.zadd(key, {channel_name: now})
        pipe.zcard(key)
        pipe.expire(key, int(_stale_after()) + 60)
        open_now = pipe.execute()[2]
        if open_now > settings.SOCKETS_PER_USER:
            _redis().zrem(key, channel_name)
            return False
    except redis.RedisError:
        logger.warning("socket count unavailable (Redis); allowing the socket of user %s", user_id)
    return True


@sync_to_async(thread_sensitive=False)
def refresh_sockets(sockets: list[tuple[int, str]]) -> dict[int, int | None]:
    """Every open socket of a process, at each watch tick: keep each one counted against its user's
    cap, and read the rights version of each user (as rights_version: -1 when Redis is down)."""
    now, users = time.time(), sorted({user_id for user_id, _ in sockets})
    try:
        pipe = _redis().pipeline(transaction=False)
        for user_id, channel_name in sockets:
            pipe.zadd(_sockets_key(user_id), {channel_name: now})
        for user_id in users:
            pipe.expire(_sockets_key(user_id), int(_stale_after()) + 60)
        pipe.execute()
    except redis.RedisError:
        pass
    try:
        found = cache.get_many([_version_key(user_id) for user_id in users])
    except Exception:  # noqa: BLE001 - as rights_version: "unknown" makes the sockets re-read
        logger.warning("rights versions unavailable for %d users", len(users))
        return dict.fromkeys(users, -1)
    return {user_id: found.get(_version_key(user_id)) for user_id in users}


@sync_to_async(thread_sensitive=False)
def unregister_socket(user_id: int, channel_name: str) -> None:
    try:
        _redis().zrem(_sockets_key(user_id), channel_name)
    except redis.RedisError:
        pass
