"""WebSocket authentication: the browser's session, or the mobile app's ?token=."""

from __future__ import annotations

from urllib.parse import parse_qs

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.security.websocket import OriginValidator, WebsocketDenier
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.http.request import split_domain_port, validate_host
from rest_framework.authtoken.models import Token


def query_param(scope, name: str) -> str | None:
    """The first value of `name` in the WebSocket URL's query string."""
    values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get(name)
    return values[0] if values else None


@database_sync_to_async
def _user_for_token(key: str):
    token = Token.objects.select_related("user").filter(key=key).first()
    if token is None or not token.user.is_active:
        return AnonymousUser()
    return token.user


class TokenAuthMiddleware:
    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        token = query_param(scope, "token")
        if token:
            scope = dict(scope, user=await _user_for_token(token))
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
    same_origin = [f"http://{host}", f"https://{host}"] if domain and validate_host(domain, settings.ALLOWED_HOSTS) else []
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
