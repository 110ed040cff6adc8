"""Who is asking, and how often they may guess: one login policy for the token endpoint, the
dashboard and the admin (django-axes), keyed on the normalised account and the real client address.

- The client address is the TCP peer, unless that peer is one of TRUSTED_PROXIES: then it is the
  address the proxy appended to X-Forwarded-For (the right-most entry). A client that sends its own
  X-Forwarded-For straight to the portal changes nothing, so a throttle cannot be dodged by
  inventing addresses.
- The account is the username as Django compares it (NFKC) and case-folded, so "ａlice" and
  "ALICE" count against alice.
- A lock must stop guessing without letting anyone lock a clinician out from anywhere: an account is
  locked *at one address* after LOGIN_FAILURES_PER_ADDRESS failures there, and everywhere only after
  LOGIN_FAILURES_PER_ACCOUNT failures from all addresses together (a sustained attack, which also
  alerts the admins). Both locks lift after LOGIN_LOCKOUT_MINUTES.
"""

from __future__ import annotations

import ipaddress
import logging
import unicodedata

from axes.handlers.database import AxesDatabaseHandler
from django.conf import settings
from django.core.mail import mail_admins
from django.db.models import Sum
from django.http import JsonResponse
from django.shortcuts import render

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


class AccountAndAddressHandler(AxesDatabaseHandler):
    """Axes counts failures per (account, address) and per account (AXES_LOCKOUT_PARAMETERS, in that
    order) and locks when one count reaches its failure limit. Each count gets its own limit here by
    putting the account-wide count on the per-address scale: floor(account * L / A) >= L exactly when
    account >= A."""

    def get_failures(self, request, credentials=None) -> int:
        per_address, per_account = (
            attempts.aggregate(total=Sum("failures_since_start"))["total"] or 0
            for attempts in self.get_user_attempts(request, credentials)
        )
        limit = settings.LOGIN_FAILURES_PER_ADDRESS
        return max(per_address, per_account * limit // settings.LOGIN_FAILURES_PER_ACCOUNT)


def on_lockout(sender, request, username, ip_address, **kwargs) -> None:
    """axes' user_locked_out signal: a lock of the whole account means a sustained attack. The admins
    hear of it once, at the failure that crosses the account-wide limit, not at every refused try."""
    handler = AccountAndAddressHandler()
    _, per_account = handler.get_user_attempts(request, getattr(request, "axes_credentials", None))
    failures = per_account.aggregate(total=Sum("failures_since_start"))["total"] or 0
    if failures == settings.LOGIN_FAILURES_PER_ACCOUNT:
        logger.error(
            "sustained password guessing: account %r locked after %d failures (last from %s)",
            username,
            failures,
            ip_address,
        )
        mail_admins(
            "Sustained password guessing",
            f"The account {username!r} was locked after {failures} failed "
            f"logins from several addresses (the last from {ip_address}). It unlocks by itself after "
            f"{settings.LOGIN_LOCKOUT_MINUTES} minutes; an admin can unlock it sooner in Axes' access attempts.",
            fail_silently=True,
        )
    elif failures < settings.LOGIN_FAILURES_PER_ACCOUNT:
        logger.warning("login locked for %r at %s", username, ip_address)


def locked_out(request, credentials=None, *args, **kwargs):
    """AXES_LOCKOUT_CALLABLE: 429, as JSON for the API and as the login page for people."""
    message = (
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
