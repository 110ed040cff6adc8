"""What the integration tests do as clients of a running stack: upload over REST, read frames from a
WebSocket, wait for the database to show something."""

from __future__ import annotations

import asyncio
import json
import time

import requests


def ws_url(stack, token: str, **replay) -> str:
    """The alert socket of a web node, for a token; `after=` / `after_event=` ask for replay."""
    query = "".join(f"&{key}={value}" for key, value in replay.items())
    return f"ws://{stack.host}:{stack.port}/ws/alerts/?token={token}{query}"


def upload(stack, token: str, patient_id: int, data: bytes) -> dict:
    response = requests.post(
        f"{stack.base_url}/api/v1/scans/",
        headers={"Authorization": f"Token {token}"},
        data={"patient": patient_id},
        files={"image": ("face.jpg", data, "image/jpeg")},
        timeout=30,
    )
    assert response.status_code == 202, response.text
    return response.json()


async def frames_until(socket, predicate, timeout: float) -> list[dict]:
    """Collect frames until one satisfies predicate (returned last); fail after timeout."""
    received = []
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"no matching frame within {timeout}s; got {received}")
        frame = json.loads(await asyncio.wait_for(socket.recv(), remaining))
        received.append(frame)
        if predicate(frame):
            return received


def wait_for(predicate, timeout: float, what):
    """The predicate's first true value within ``timeout`` s; ``what`` (a text, or a function giving one
    at the end) names what was awaited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what() if callable(what) else what}")
