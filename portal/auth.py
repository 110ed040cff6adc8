"""Who is asking, and how often they may guess: one login policy for the token endpoint, the
dashboard and the admin (django-axes), keyed on the normalised account and the real client address.

- The client address is the TCP peer, unless that peer is one of TRUSTED_PROXIES: then it is the
  address the proxy appended to X-Forwarded-For (the right-most entry). A client that sends its own
  X-Forwarded-For straight to the portal changes nothing, so a throttle cannot be dodged by
  inventing addresses.
- The account is the username as Django compares it (NFKC) and case-folded, so "ａlice" and
  "ALICE" count against alice.
- Guessing is slowed without handing an attacker a lock on a clinician's account:
  - an account is locked *at one address* after LOGIN_FAILURES_PER_ADDRESS failures there (lifted
    after LOGIN_LOCKOUT_MINUTES); the same account from another address (the ward) is not locked;
  - every login form (the token endpoint, /login/, /admin/login/) takes at most LOGIN_THROTTLE_RATE
    attempts per address, whatever the usernames (one password tried on many accounts);
  - an account failed LOGIN_SLOWDOWN_AFTER times from all addresses together (in the lockout window)
    answers every further attempt more slowly, doubling from 0.25 s up to LOGIN_SLOWDOWN_MAX_SECONDS:
    many addresses guess slowly, and the clinician still signs in with the right password. At
    LOGIN_FAILURES_PER_ACCOUNT failures the admins are mailed (a sustained attack); nothing locks.
"""

from __future__ import annotations

import ipaddress
import logging
import time
import unicodedata
from datetime import timedelta

from axes.models import AccessAttempt
from django.conf import settings
from django.core.mail import mail_admins
from django.db.models import Sum
from django.http import JsonResponse
from django.shortcuts import render
from django.utils import timezone

logger = logging.getLogger(__name__)


def client_ip(request) -> str:
    """The real client address (see the module docstring); "" when there is none."""
    meta = getattr(request, "META", {})
    peer = meta.get("REMOTE_ADDR", "") or ""
    if not _is_trusted_proxy(peer):
        return peer
    forwarded = [part.strip() for part in (meta.get("HTTP_X_FORWARDED_FOR") or "").split(",") if part.strip()]
    # Walk back from the right past our own proxies: the first other address is the one they saw.
    for candidate in reversed(forwarded):
        if not _valid_ip(candidate):
            return peer  # a proxy we trust would not write garbage: fall back on the peer
        if not _is_trusted_proxy(candidate):
            return candidate
    return peer


def _valid_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _is_trusted_proxy(address: str) -> bool:
    if not address or not _valid_ip(address):
        return False
    ip = ipaddress.ip_address(address)
    return any(ip in network for network in settings.TRUSTED_PROXY_NETWORKS)


def normalised_username(request, credentials: dict | None) -> str | None:
    """AXES_USERNAME_CALLABLE: the account a login attempt is against, however it was typed."""
    field = str(settings.AXES_USERNAME_FORM_FIELD)
    raw = (credentials or {}).get(field) or (credentials or {}).get("username")
    if raw is None:
        raw = getattr(request, "POST", {}).get(field) or getattr(request, "data", {}).get(field)
    if raw is None:
        return None
    return unicodedata.normalize("NFKC", str(raw)).casefold().strip()[:150]


def failures_per_address(request, credentials) -> int:
    """AXES_FAILURE_LIMIT, read when used (so that it follows the settings)."""
    return settings.LOGIN_FAILURES_PER_ADDRESS


def account_failures(username: str) -> int:
    """Failed logins of this account from every address within the lockout window."""
    since = timezone.now() - timedelta(minutes=settings.LOGIN_LOCKOUT_MINUTES)
    attempts = AccessAttempt.objects.filter(username=username, attempt_time__gte=since)
    return attempts.aggregate(total=Sum("failures_since_start"))["total"] or 0


def slowdown_seconds(failures: int) -> float:
    """How long an attempt on an account with ``failures`` waits before its password is checked."""
    beyond = failures - settings.LOGIN_SLOWDOWN_AFTER
    if beyond < 0:
        return 0.0
    return min(settings.LOGIN_SLOWDOWN_MAX_SECONDS, 0.25 * 2 ** min(beyond, 16))


class SlowdownBackend:
    """The first authentication backend: authenticates nobody, and makes an attempt on an account under
    attack wait (see the module docstring) before axes and the password check see it."""

    def authenticate(self, request, username=None, **kwargs):
        account = normalised_username(request, {"username": username})
        if not account:
            return None
        failures = account_failures(account)
        if failures == settings.LOGIN_FAILURES_PER_ACCOUNT:
            _sustained_attack(account, failures, client_ip(request) if request is not None else "")
        pause = slowdown_seconds(failures)
        if pause:
            logger.warning("login for %r slowed by %.2f s: %d recent failures", account, pause, failures)
            time.sleep(pause)
        return None

    # No get_user: it never signs anyone in, so no session names it (and force_login skips it).


def _sustained_attack(account: str, failures: int, ip_address: str) -> None:
    """The admins hear of a sustained attack on an account once, when its failures reach the limit."""
    logger.error("sustained password guessing: %d failures for %r (the last from %s)", failures, account, ip_address)
    mail_admins(
        "Sustained password guessing",
        f"The account {account!r} had {failures} failed logins within {settings.LOGIN_LOCKOUT_MINUTES} "
        f"minutes from several addresses (the last from {ip_address}). Its logins are slowed, not locked: "
        "its owner can still sign in. Each address that failed 5 times is locked for that account; see "
        "Axes' access attempts.",
        fail_silently=True,
    )


def on_lockout(sender, request, username, ip_address, **kwargs) -> None:
    """axes' user_locked_out signal: an account locked at one address."""
    logger.warning("login locked for %r at %s", username, ip_address)


def locked_out(request, credentials=None, *args, message: str | None = None, **kwargs):
    """AXES_LOCKOUT_CALLABLE: 429, as JSON for the API and as the login page for people."""
    message = message or (
        f"Too many failed attempts. Wait {settings.LOGIN_LOCKOUT_MINUTES} minutes, then try again, "
        "or ask an administrator to unlock the account."
    )
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": message}, status=429)
    from django.contrib.auth.forms import AuthenticationForm

    return render(
        request,
        "registration/login.html",
        {"form": AuthenticationForm(request), "locked_out": True, "locked_out_message": message},
        status=429,
    )
