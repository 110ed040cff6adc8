"""Credentials that end, and the rights they carry.

- API tokens (the mobile app) are django-rest-knox tokens: stored as hashes, expiring
  API_TOKEN_IDLE_HOURS after their last use and API_TOKEN_MAX_DAYS after sign-in at the latest,
  ended by POST /api/v1/auth/logout/ (this token) or /logout-all/ (every token of the user).
- Browser sessions are django-qsessions sessions (each knows its user, address and browser): they end
  SESSION_IDLE_MINUTES after the user last did something and SESSION_MAX_HOURS after sign-in.
- Deactivating an account or changing its password ends all its tokens and sessions. Admins list
  and end them in the admin (tokens, sessions, and a "sign out everywhere" action on users).
- Whatever changes what a user may do (active, staff, password, a token or session ending) sends
  `rights_changed`; open sockets listen for it (alerts/rights.py).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.dispatch import Signal
from knox.models import AuthToken
from qsessions.models import Session

# Sent with user_id=... after the transaction that changed the user's rights commits.
rights_changed = Signal()

SIGNED_IN_AT = "portal_signed_in_at"
ACTIVE_AT = "portal_active_at"
# A background refresh (the dashboard's own polling) does not keep a session alive: only what the
# person did. Pages send this header on the requests they make by themselves.
BACKGROUND_HEADER = "X-Portal-Background"
# Write the "last active" mark at most this often (each write is a database update).
ACTIVITY_RESOLUTION_SECONDS = 60
API_TOKENS_PER_USER = 10


def issue_token(user) -> tuple[AuthToken, str]:
    """A new API token for `user` (the token text is shown once and stored only as a hash). A user
    keeps at most API_TOKENS_PER_USER live tokens: signing in once more ends the oldest."""
    instance, token = AuthToken.objects.create(user=user)
    stale = (
        AuthToken.objects.filter(user=user).order_by("-created").values_list("digest", flat=True)[API_TOKENS_PER_USER:]
    )
    AuthToken.objects.filter(digest__in=list(stale)).delete()
    return instance, token


def revoke_credentials(user_id: int) -> tuple[int, int]:
    """End every API token and browser session of the user. Returns (tokens, sessions) ended."""
    tokens = list(AuthToken.objects.filter(user_id=user_id))
    for token in tokens:
        token.delete()
    sessions = list(Session.objects.filter(user_id=user_id))
    for session in sessions:
        session.delete()  # qsessions deletes the cached copy as well
    return len(tokens), len(sessions)


def session_end(session) -> tuple[float, str] | None:
    """When a signed-in session ends (a Unix time) and why: "idle", SESSION_IDLE_MINUTES after the
    last thing the user did, or "shift", SESSION_MAX_HOURS after sign-in, whichever is first. None:
    not a signed-in session."""
    signed_in_at = session.get(SIGNED_IN_AT)
    if signed_in_at is None:
        return None
    idle_end = session.get(ACTIVE_AT, signed_in_at) + settings.SESSION_IDLE_MINUTES * 60
    shift_end = signed_in_at + settings.SESSION_MAX_HOURS * 3600
    return (idle_end, "idle") if idle_end <= shift_end else (shift_end, "shift")


def session_ends_at(session) -> float | None:
    end = session_end(session)
    return end[0] if end else None


def session_ends_iso(session) -> str:
    """session_ends_at() as an ISO 8601 time for the page's scripts; "" when not signed in."""
    ends_at = session_ends_at(session)
    return datetime.fromtimestamp(ends_at, UTC).isoformat() if ends_at else ""


def session_is_live(session, now: float | None = None) -> bool:
    ends_at = session_ends_at(session)
    return ends_at is not None and (now or time.time()) < ends_at


def token_state(digest: str) -> float | None:
    """When the API token with this digest ends (a Unix time), or None when it has ended already."""
    expiry = AuthToken.objects.filter(digest=digest).values_list("expiry", flat=True).first()
    if expiry is None:
        return None
    return expiry.timestamp() if expiry.timestamp() > time.time() else None


def stored_session_state(session_key: str) -> float | None:
    """When the stored session with this key ends (a Unix time), or None when it has ended."""
    from importlib import import_module

    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key=session_key)
    if not store.exists(session_key):
        return None
    ends_at = session_ends_at(store.load())
    return ends_at if ends_at is not None and ends_at > time.time() else None


def _send_rights_changed(user_id: int) -> None:
    transaction.on_commit(lambda: rights_changed.send(sender=get_user_model(), user_id=user_id))


# Signal receivers (connected in portal/apps.py).


def on_login(sender, request, user, **kwargs) -> None:
    """user_logged_in: the sign-in time that bounds the session's life (web logins only)."""
    from django.contrib.auth import SESSION_KEY

    session = getattr(request, "session", None)
    if session is not None and SESSION_KEY in session:  # an API token login has no session
        now = time.time()
        session[SIGNED_IN_AT] = now
        session[ACTIVE_AT] = now


def remember_rights(sender, instance, **kwargs) -> None:
    """pre_save of a user: what it could do before this save, to compare after it."""
    fields = kwargs.get("update_fields")
    if instance.pk is None or (fields is not None and not {"is_active", "is_staff", "password"} & set(fields)):
        instance._rights_before = None  # a new user, or a save of other fields (last_login)
        return
    instance._rights_before = (
        type(instance).objects.filter(pk=instance.pk).values_list("is_active", "is_staff", "password").first()
    )


def on_user_saved(sender, instance, created, **kwargs) -> None:
    before = getattr(instance, "_rights_before", None)
    if created or before is None:
        return
    was_active, was_staff, old_password = before
    deactivated = was_active and not instance.is_active
    new_password = old_password != instance.password
    if deactivated or new_password:
        # An admin changing their own password stays signed in where they did it: Django's
        # update_session_auth_hash, run after the save, stores that session again under a new key.
        revoke_credentials(instance.pk)
    if deactivated or new_password or was_active != instance.is_active or was_staff != instance.is_staff:
        _send_rights_changed(instance.pk)


def on_user_deleted(sender, instance, **kwargs) -> None:
    _send_rights_changed(instance.pk)


def on_token_deleted(sender, instance, **kwargs) -> None:
    _send_rights_changed(instance.user_id)


def on_session_deleted(sender, instance, **kwargs) -> None:
    if instance.user_id is not None:
        _send_rights_changed(instance.user_id)


def on_membership_changed(sender, instance, **kwargs) -> None:
    """A clinician joined or left a care team: their sockets re-read which teams they hear."""
    from portal.models import Physician

    user_id = Physician.objects.filter(id=instance.physician_id).values_list("user_id", flat=True).first()
    if user_id is not None:
        _send_rights_changed(user_id)


def remember_physician_user(sender, instance, **kwargs) -> None:
    instance._user_id_before = (
        type(instance).objects.filter(id=instance.pk).values_list("user_id", flat=True).first() if instance.pk else None
    )


def on_physician_saved(sender, instance, **kwargs) -> None:
    """A physician's account changed hands: both accounts' sockets re-read their teams."""
    before = getattr(instance, "_user_id_before", None)
    if before != instance.user_id:
        for user_id in {before, instance.user_id} - {None}:
            _send_rights_changed(user_id)
