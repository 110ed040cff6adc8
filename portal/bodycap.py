"""A byte cap on every request body at the ASGI layer, before Django reads it.

Django's ASGI handler spools a whole body (to memory, then a temporary file) before any view or
setting sees it: three anonymous 700 MB POSTs took a web process from 268 MB to 970 MB and 2 GB of
temporary disk, answered 400 only at the end. Here a body is refused with 413 as soon as it is known
to be too large: at once from its Content-Length, or at the chunk that crosses the cap.

The cap: REQUEST_MAX_BYTES (1 MiB: every form and JSON body is far smaller) for every route, except
the photo uploads (SCAN_MAX_UPLOAD_BYTES plus the multipart envelope) and the admin's classifier
upload (MODEL_UPLOAD_MAX_BYTES).
"""

from __future__ import annotations

import json

from django.conf import settings

UPLOAD_PATHS = ("/api/v1/scans/", "/scans/new/")


class _TooLarge(Exception):
    pass


def byte_cap(path: str) -> int:
    if path in UPLOAD_PATHS:
        return settings.DATA_UPLOAD_MAX_MEMORY_SIZE  # the photo cap and its multipart envelope
    if path.startswith("/admin/inference/modelversion/"):
        return settings.MODEL_UPLOAD_MAX_BYTES
    return settings.REQUEST_MAX_BYTES


class BodyCap:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        cap = byte_cap(scope.get("path", ""))
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > cap):
            return await _refuse(send, cap)
        received, started = 0, False

        async def counted_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > cap:
                    raise _TooLarge
            return message

        async def watched_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except _TooLarge:
            if not started:
                await _refuse(send, cap)


async def _refuse(send, cap: int) -> None:
    body = json.dumps({"detail": f"Request body too large: at most {cap} bytes."}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
