"""WebSocket authentication: the browser's session, or the mobile app's ?token=."""

from __future__ import annotations

from types import SimpleNamespace
from urllib.parse import parse_qs

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.security.websocket import OriginValidator, WebsocketDenier
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.http.request import split_domain_port, validate_host
from knox.auth import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed

from portal.auth import client_ip


def query_param(scope, name: str) -> str | None:
    """The first value of `name` in the WebSocket URL's query string."""
    values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get(name)
    return values[0] if values else None


def scope_client_ip(scope) -> str:
    """The socket's real client address, by the same rule as HTTP requests (portal.auth.client_ip)."""
    headers = dict(scope.get("headers", []))
    meta = {
        "REMOTE_ADDR": (scope.get("client") or [""])[0] or "",
        "HTTP_X_FORWARDED_FOR": headers.get(b"x-forwarded-for", b"").decode("latin-1"),
    }
    return client_ip(SimpleNamespace(META=meta))


@database_sync_to_async
def _authenticate_token(key: str):
    """(user, knox AuthToken) for a live token of an active user, else (AnonymousUser, None). Knox
    checks the hash and the expiry, and extends the expiry as any API use does."""
    try:
        return TokenAuthentication().authenticate_credentials(key.encode())
    except (AuthenticationFailed, UnicodeError):
        return AnonymousUser(), None


class TokenAuthMiddleware:
    """?token= (the mobile app): scope["user"], and scope["auth_token"] naming the token by its
    digest, which the consumer re-checks while the socket is open."""

    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        token = query_param(scope, "token")
        if token:
            user, auth_token = await _authenticate_token(token)
            scope = dict(scope, user=user, auth_token=auth_token.digest if auth_token is not None else None)
        return await self.inner(scope, receive, send)


def SessionOrTokenAuth(inner):
    # Session first (sets scope["user"]); a token, when given, takes precedence.
    return AuthMiddlewareStack(TokenAuthMiddleware(inner))


def allowed_origins(scope) -> list[str]:
    """The origins a browser socket may come from: the page's own (the socket's Host, when it is one
    of ALLOWED_HOSTS, over http or https) and CSRF_TRUSTED_ORIGINS. Scheme, host and port must all
    match (channels' OriginValidator compares the three): ALLOWED_HOSTS alone has no ports, and
    checking against it let a page on another port of the same host open sockets."""
    host = next((value.decode("latin-1") for name, value in scope.get("headers", []) if name == b"host"), "")
    domain, _ = split_domain_port(host)
    same_origin = (
        [f"http://{host}", f"https://{host}"] if domain and validate_host(domain, settings.ALLOWED_HOSTS) else []
    )
    return [*same_origin, *settings.CSRF_TRUSTED_ORIGINS]


class BrowserOriginGuard:
    """Browsers always send Origin: it must be the page's own (cross-site WebSocket hijacking rides
    on the session cookie). The mobile app sends no Origin; it must then use ?token=, and any cookie
    is ignored."""

    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        headers = scope.get("headers", [])
        if any(name == b"origin" for name, _ in headers):
            return await OriginValidator(self.inner, allowed_origins(scope))(scope, receive, send)
        if not query_param(scope, "token"):
            return await WebsocketDenier()(scope, receive, send)
        scope = dict(scope, headers=[(name, value) for name, value in headers if name != b"cookie"])
        return await self.inner(scope, receive, send)
