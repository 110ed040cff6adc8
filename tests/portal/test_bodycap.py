"""Request bodies capped at the ASGI layer before Django spools them (portal/bodycap.py): three 700 MB
POSTs once took a web process to 970 MB and 2 GB of temporary disk, answered 400 at the end."""

from __future__ import annotations

import pytest
from asgiref.testing import ApplicationCommunicator

from tests.asgi_http import http_scope, serve

pytestmark = [pytest.mark.django_db(transaction=True)]


def application():
    from portal.asgi import application

    return application


async def test_a_declared_body_past_the_cap_is_refused_before_it_is_read():
    scope = http_scope("/api/v1/auth/token/", method="POST", headers=[(b"content-length", b"734003200")])
    start, body = await serve(application(), scope)
    assert start["status"] == 413 and b"at most 1048576 bytes" in body


async def test_a_streamed_body_is_refused_at_the_chunk_that_crosses_the_cap():
    scope = http_scope("/login/", method="POST", headers=[(b"content-type", b"application/x-www-form-urlencoded")])
    communicator = ApplicationCommunicator(application(), scope)
    chunk = b"a" * (256 * 1024)
    for _ in range(5):  # 1.25 MiB, no Content-Length
        await communicator.send_input({"type": "http.request", "body": chunk, "more_body": True})
    start = await communicator.receive_output(10)
    assert start["status"] == 413
    await communicator.receive_output(10)
    await communicator.wait(10)


async def test_a_photo_upload_keeps_its_own_larger_cap(settings):
    scope = http_scope("/api/v1/scans/", method="POST", headers=[(b"content-length", str(3 * 1024 * 1024).encode())])
    start, _ = await serve(application(), scope, body=b"x" * (3 * 1024 * 1024))
    assert start["status"] == 401  # read in full and answered by the API (no credentials), not 413
    over = settings.SCAN_MAX_UPLOAD_BYTES + 2 * 1024 * 1024
    scope = http_scope("/api/v1/scans/", method="POST", headers=[(b"content-length", str(over).encode())])
    start, _ = await serve(application(), scope)
    assert start["status"] == 413


async def test_a_malformed_length_is_refused():
    scope = http_scope("/api/v1/auth/token/", method="POST", headers=[(b"content-length", b"12abc")])
    start, _ = await serve(application(), scope)
    assert start["status"] == 413
