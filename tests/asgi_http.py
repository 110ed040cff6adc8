"""An HTTP request straight into an ASGI application, and a count of the event-loop wakes it caused:
for the handler tests (tests/portal/test_handlers.py) and bench/http_handler.py."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

from asgiref.testing import ApplicationCommunicator


def http_scope(path: str, *, method: str = "GET", headers: list | None = None, query: bytes = b"") -> dict:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": [(b"host", b"testserver"), *(headers or [])],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }


def token_header(token: str | None) -> list:
    return [(b"authorization", f"Token {token}".encode())] if token else []


async def serve(app, scope: dict, body: bytes = b"", timeout: float = 10) -> tuple[dict, bytes]:
    """The response's start message and its whole body."""
    communicator = ApplicationCommunicator(app, scope)
    await communicator.send_input({"type": "http.request", "body": body})
    start = await communicator.receive_output(timeout)
    chunks = []
    while True:
        message = await communicator.receive_output(timeout)
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    await communicator.wait(timeout)
    return start, b"".join(chunks)


@dataclass
class Wakeups:
    count: int = 0


@contextlib.contextmanager
def counting_wakeups(loop: asyncio.AbstractEventLoop) -> Iterator[Wakeups]:
    """How often a thread woke the event loop (call_soon_threadsafe: a crossing back from a thread)."""
    wakeups, wake = Wakeups(), loop.call_soon_threadsafe

    def counted(*args, **kwargs):
        wakeups.count += 1
        return wake(*args, **kwargs)

    loop.call_soon_threadsafe = counted
    try:
        yield wakeups
    finally:
        del loop.call_soon_threadsafe
