"""ASGI entry point: HTTP -> Django; WebSocket -> origin check (browsers) -> session/token auth -> alerts."""

import gc
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402
from django.urls import get_resolver  # noqa: E402

from alerts.auth import BrowserOriginGuard, SessionOrTokenAuth  # noqa: E402
from alerts.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": BrowserOriginGuard(SessionOrTokenAuth(URLRouter(websocket_urlpatterns))),
    }
)

# Garbage collection in a web process: every HTTP request leaves reference cycles behind (DRF binds
# each serializer field to its parent, Twisted's request to its channel), tens of thousands of objects
# a second under load, and with Python's defaults they lived long enough to reach the oldest
# generation: a full collection every second or so, each 150-350 ms with every socket of the process
# waiting (bench/load.py, 500 sockets on two web nodes: most of the first-to-last spread of an alert
# was one node in such a pause). What start-up built (the URLconf's views and serializers included,
# which Django would import on the first request) is frozen out of every later collection, and the
# youngest generation is collected after WEB_GC_YOUNG_THRESHOLD new objects instead of Python's 700,
# so a request's cycles die young (the middle generation once per 20 of those, the oldest once per 10
# of the middle's): the same burst saw no pause over 0.2 s. Test processes that import this module
# get the same settings.
get_resolver().url_patterns  # noqa: B018 - imported now, to be frozen with the rest
gc.collect()
gc.freeze()
gc.set_threshold(settings.WEB_GC_YOUNG_THRESHOLD, 20, 10)
