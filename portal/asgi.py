"""ASGI entry point: HTTP -> Django (portal/handlers.py); WebSocket -> origin check (browsers) -> session/token
auth -> alerts."""

import gc
import os
import sys

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
django.setup(set_prefix=False)

from portal.handlers import SyncChainASGIHandler  # noqa: E402

django_asgi_app = SyncChainASGIHandler()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402
from django.urls import get_resolver  # noqa: E402

from alerts.auth import BrowserOriginGuard, SessionOrTokenAuth  # noqa: E402
from alerts.routing import websocket_urlpatterns  # noqa: E402
from portal.bodycap import BodyCap  # noqa: E402

application = ProtocolTypeRouter(
    {
        # Every body capped before Django spools it (portal/bodycap.py).
        "http": BodyCap(django_asgi_app),
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

# The GIL in a web process: its event loop sends frames in pure Python while a request's thread waits
# on the database, and each time that thread's query returns it waits for the GIL, which a busy thread
# gives up only every switch interval: with Python's 5 ms, an upload (six queries, a Redis publish, a
# file write) could wait for it a dozen times. bench/load.py, 500 sockets on two web nodes, alternating
# runs on a machine whose speed wandered: the 202's median was 74 and 54 ms against 95 and 87 ms with
# 5 ms; in a second set 70 and 87 against 80.
sys.setswitchinterval(settings.WEB_GIL_SWITCH_INTERVAL_US / 1_000_000)
