"""A web process's HTTP requests (portal/handlers.py): each runs its synchronous work in one call on a
thread, handed over by the event loop once, and answers as Django's own handler would."""

from __future__ import annotations

import asyncio
import threading

import pytest
from asgiref.testing import ApplicationCommunicator
from django.core import signals

from portal.credentials import issue_token
from portal.handlers import SyncChainASGIHandler
from tests import factories
from tests.asgi_http import counting_wakeups, http_scope, serve, token_header
from tests.faces import astronaut, jpeg_bytes

pytestmark = [pytest.mark.django_db(transaction=True)]


async def get(app, path: str, *, token: str | None = None) -> tuple[dict, bytes]:
    return await serve(app, http_scope(path, headers=token_header(token)))


class Seen:
    """Which thread ran each step of a request."""

    def __init__(self) -> None:
        self.threads: dict[str, int] = {}

    def started(self, **_kwargs) -> None:
        self.threads["request_started"] = threading.get_ident()

    def finished(self, **_kwargs) -> None:
        self.threads["request_finished"] = threading.get_ident()


@pytest.fixture
def seen():
    record = Seen()
    signals.request_started.connect(record.started)
    signals.request_finished.connect(record.finished)
    yield record
    signals.request_started.disconnect(record.started)
    signals.request_finished.disconnect(record.finished)


@pytest.fixture
def alice_token(people) -> str:
    return issue_token(people.alice)[1]  # here, on the test's thread: its database connection ends with it


PHOTO = jpeg_bytes(astronaut())


@pytest.fixture
def photo_scan(people):
    from django.core.files.base import ContentFile

    scan = factories.ScanFactory(patient=people.patient, uploaded_by=people.carol)
    scan.image.save("photo.jpg", ContentFile(PHOTO))
    return scan, issue_token(people.carol)[1]


async def test_a_request_crosses_from_the_event_loop_to_a_thread_and_back_once(alice_token, seen):
    """Django's ASGIHandler crossed about eight times (the middleware chain in async mode around
    synchronous middleware and views): in a web node each crossing waits for an event loop that may be
    sending thousands of frames."""
    from django.core.handlers.asgi import ASGIHandler

    token = alice_token
    crossings = {}
    for name, app in (("django", ASGIHandler()), ("ours", SyncChainASGIHandler())):
        await get(app, "/api/v1/alerts/", token=token)  # warm: the first request of a handler builds more
        with counting_wakeups(asyncio.get_running_loop()) as wakeups:
            start, body = await get(app, "/api/v1/alerts/", token=token)
        assert start["status"] == 200 and b'"results"' in body
        crossings[name] = wakeups.count
    assert crossings["ours"] <= 2  # the answer coming back (and the test's own communicator)
    assert crossings["django"] >= 3 * crossings["ours"]
    loop_thread = threading.get_ident()
    assert seen.threads["request_started"] == seen.threads["request_finished"] != loop_thread


async def test_it_answers_a_refusal_with_djangos_status_and_headers(seen):
    app = SyncChainASGIHandler()
    start, body = await get(app, "/api/v1/alerts/")  # no credentials
    assert start["status"] == 401
    assert dict(start["headers"])[b"WWW-Authenticate"] == b"Token"
    assert b"credentials were not provided" in body
    assert "request_finished" in seen.threads  # closed: its database connection went back


async def test_it_sets_cookies_as_djangos_handler_does(seen):
    app = SyncChainASGIHandler()
    start, _ = await get(app, "/login/")
    assert start["status"] == 200
    cookies = [value for name, value in start["headers"] if name.lower() == b"set-cookie"]
    assert any(cookie.startswith(b"csrftoken=") for cookie in cookies)


async def test_it_streams_a_photo_and_closes_it_after_sending(photo_scan, seen):
    """A file response is streamed from the event loop, as Django's handler streams it, and closed
    (request_finished) only once it is sent."""
    scan, token = photo_scan
    app = SyncChainASGIHandler()
    start, body = await get(app, f"/api/v1/scans/{scan.id}/image/", token=token)
    assert start["status"] == 200
    assert dict(start["headers"])[b"Content-Type"] == b"image/jpeg"
    assert body == PHOTO
    assert "request_finished" in seen.threads


async def test_a_photo_whose_client_went_away_is_still_closed(photo_scan, seen):
    """daphne cancels the application when the client disconnects. The thread runs the request to its
    end, and the file response it made, never sent, is closed all the same (its file, and
    request_finished: the database connection goes back to the pool)."""
    import time

    def slow(**_kwargs):
        time.sleep(0.5)

    scan, token = photo_scan
    path = f"/api/v1/scans/{scan.id}/image/"
    signals.request_started.connect(slow)
    try:
        scope = http_scope(path, headers=token_header(token))
        communicator = ApplicationCommunicator(SyncChainASGIHandler(), scope)
        await communicator.send_input({"type": "http.request", "body": b""})
        await asyncio.sleep(0.1)  # the thread is in the request
        communicator.future.cancel()
        for _ in range(50):
            if "request_finished" in seen.threads:
                break
            await asyncio.sleep(0.1)
        assert "request_finished" in seen.threads
    finally:
        signals.request_started.disconnect(slow)
