"""stack/web.py: a web node's daphne leaves an upload's body to Django, unparsed by Twisted."""

from __future__ import annotations

import sys
from io import BytesIO
from types import SimpleNamespace

from daphne import http_protocol
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart
from twisted.web.test.requesthelper import DummyChannel

from stack.processes import Stack
from stack.web import WebRequest


class Photo(BytesIO):
    name = "face.jpg"


def received(request_class, body: bytes):
    """A POST whose whole body has arrived, as daphne's channel hands it over; returns the request as
    it reached process(), which would pass it to the ASGI application."""
    channel = DummyChannel()
    channel.factory = SimpleNamespace(server=SimpleNamespace(protocol_connected=lambda request: None))
    processed = []

    class Probe(request_class):
        def process(self):
            processed.append(self)

    request = Probe(channel)
    request.requestHeaders.setRawHeaders(b"content-type", [MULTIPART_CONTENT.encode()])
    request.gotLength(len(body))
    request.handleContentChunk(body)
    request.requestReceived(b"POST", b"/api/v1/scans/", b"HTTP/1.1")
    assert processed == [request]
    return request


def upload_body() -> bytes:
    return encode_multipart(BOUNDARY, {"patient": "7", "image": Photo(b"\xff\xd8 not parsed twice " * 5000)})


def test_daphne_alone_parses_the_upload_into_args_on_the_event_loop():
    # What stack/web.py turns off: without it, Twisted had read the photo into request.args.
    request = received(http_protocol.WebRequest, upload_body())
    assert request.args[b"image"][0].startswith(b"\xff\xd8 not parsed twice")


def test_a_web_node_hands_the_body_on_untouched_and_parses_nothing():
    body = upload_body()
    request = received(WebRequest, body)
    assert request.args == {}
    assert request.content.read() == body  # what daphne streams to the application


def test_every_web_node_runs_through_it():
    command = Stack(env={}, worker=False).commands()["web"]
    assert command[:3] == [sys.executable, "-m", "stack.web"]
    assert command[-1] == "portal.asgi:application"
