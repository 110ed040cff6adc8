"""ASGI entry point: HTTP -> Django; WebSocket -> origin check (browsers) -> session/token auth -> alerts."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from alerts.auth import BrowserOriginGuard, SessionOrTokenAuth  # noqa: E402
from alerts.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": BrowserOriginGuard(SessionOrTokenAuth(URLRouter(websocket_urlpatterns))),
    }
)
