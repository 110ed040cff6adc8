"""Outbound requests only where they belong: no request to the portal's own machine or network.

A push subscription's endpoint is chosen by whoever registers a device, so without a check any
clinician could make the worker POST to internal services (loopback, the cloud's metadata address,
the hospital LAN). Two guards:

- when a subscription is saved, `push_endpoint_problem` refuses what is not an https URL of a host
  in PUSH_ALLOWED_HOSTS (the browsers' push services by default), an address written as an IP in any
  form (decimal, octal, hex, IPv6-mapped), user info in the URL, or a name that resolves to a
  private, loopback, link-local, multicast or reserved address (one that does not resolve now is
  let through to the next guard);
- when it is sent (and for every FHIR send), `guarded_session` connects only to the address it has
  just checked (requests-hardened: a name that resolves elsewhere since, DNS rebinding, is refused)
  and follows no redirect.

OUTBOUND_ALLOW_LOOPBACK (tests only: their sinks listen on 127.0.0.1) lets loopback through, never
private networks. A hospital's FHIR server on its own network needs FHIR_ALLOW_PRIVATE_NETWORK.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

import requests
from django.conf import settings
from requests_hardened import Config, HTTPSession


def _loopback_allowed(host: str) -> bool:
    if not settings.OUTBOUND_ALLOW_LOOPBACK:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _ip_literal(host: str) -> bool:
    """Whether ``host`` is an address rather than a name, in any spelling a resolver accepts
    (2130706433, 0177.0.0.1, 0x7f.1, ::ffff:127.0.0.1...)."""
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    try:
        socket.inet_aton(host)  # the legacy forms: fewer parts, decimal, octal, hex
        return True
    except OSError:
        return False


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def _host_allowed(host: str) -> bool:
    for pattern in settings.PUSH_ALLOWED_HOSTS:
        pattern = pattern.lower().rstrip(".")
        if pattern == "*" or host == pattern or (pattern.startswith("*.") and host.endswith(pattern[1:])):
            return True
    return False


def push_endpoint_problem(url: str) -> str | None:
    """Why this push endpoint is refused, or None when it may be used."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "Not a valid URL."
    host = (parts.hostname or "").lower().rstrip(".")
    if not host:
        return "The endpoint has no host."
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        return "The endpoint may not carry a user name or password."
    if _loopback_allowed(host):
        return None if parts.scheme in {"http", "https"} else "The endpoint must be an https URL."
    if parts.scheme != "https":
        return "The endpoint must be an https URL."
    if _ip_literal(host):
        return "The endpoint must name a push service, not an IP address."
    if not _host_allowed(host):
        return f"{host} is not a push service this portal sends to (PUSH_ALLOWED_HOSTS)."
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, port or 443, type=socket.SOCK_STREAM)}
    except OSError:
        # Not known now (the resolver is down, or the name is new): a phone's registration is not
        # refused for it; each send checks the address it connects to (guarded_session).
        return None
    if not all(_public(address) for address in addresses):
        return f"{host} resolves to an address that is not public."
    return None


def guarded_session(*, allow_private: bool = False) -> requests.Session:
    """A requests session that connects only to public addresses (loopback too where
    OUTBOUND_ALLOW_LOOPBACK is set; any address with ``allow_private``), checked as it connects, and
    never follows a redirect."""
    return HTTPSession(
        Config(
            ip_filter_enable=not allow_private,
            ip_filter_allow_loopback_ips=settings.OUTBOUND_ALLOW_LOOPBACK,
            never_redirect=True,
            default_timeout=None,
        )
    )
