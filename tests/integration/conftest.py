"""The real parts, started for real: daphne, a Celery worker process, Redis and the database.

The stack runs against the test database (committed data: these tests use transactional_db) and
a queue and channel prefix of its own, so a `make run` on the same Redis cannot steal its work.
"""

from __future__ import annotations

import uuid
from types import SimpleNamespace

import pytest
from django.conf import settings

from stack.embedded import free_port
from stack.processes import Stack, base_env
from tests.integration.browsers import launch_browser


def database_url(settings_dict: dict) -> str:
    if settings_dict["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{settings_dict['NAME']}"
    user = settings_dict.get("USER") or ""
    password = f":{settings_dict['PASSWORD']}" if settings_dict.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    host = settings_dict.get("HOST") or "localhost"
    port = f":{settings_dict['PORT']}" if settings_dict.get("PORT") else ""
    return f"postgres://{auth}{host}{port}/{settings_dict['NAME']}"


@pytest.fixture(scope="session")
def notification_sinks():
    """Where the stack's worker sends its calls (alerts/notify.py): a real SMTP server and a Web Push
    service on localhost."""
    from tests.notify_sinks import Mailbox, PushService

    with Mailbox() as mailbox, PushService() as push_service:
        yield SimpleNamespace(mailbox=mailbox, push_service=push_service)


@pytest.fixture(scope="session")
def fhir_server():
    """The hospital's FHIR server, for the stack's worker to push finished results to (scans/fhir_push.py)."""
    from tests.fhir_server import RecordingFhirServer

    with RecordingFhirServer() as server:
        yield server


@pytest.fixture(scope="session")
def live_stack(django_db_setup, django_db_blocker, media_root, tmp_path_factory, notification_sinks, fhir_server):
    from django.db import connection

    run_id = uuid.uuid4().hex[:8]
    var_dir = tmp_path_factory.mktemp("stack-var")
    env = base_env(
        DATABASE_URL=database_url(connection.settings_dict),
        REDIS_URL=settings.REDIS_URL,
        MEDIA_ROOT=str(media_root),
        PORTAL_VAR_DIR=str(var_dir),
        CELERY_QUEUE=f"portal-test-{run_id}",
        CHANNELS_PREFIX=f"portal-test-{run_id}",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=str(notification_sinks.mailbox.port),
        VAPID_PRIVATE_KEY=notification_sinks.push_service.private_key,
        VAPID_PUBLIC_KEY=notification_sinks.push_service.public_key,
        FHIR_ENDPOINT=fhir_server.url,
        # A push endpoint that never answers holds its call this long (test_end_to_end.py's hanging ones).
        NOTIFY_PUSH_TIMEOUT_SECONDS="15",
        NOTIFY_DEADLINE_SECONDS="20",
    )
    stack = Stack(env=env, port=free_port(), worker_concurrency=1, log_dir=var_dir / "logs")
    stack.start()
    try:
        stack.wait_ready(timeout=180)
        yield stack
    finally:
        stack.stop()


@pytest.fixture(autouse=True)
def _worker_idle_before_the_flush(request, transactional_db):
    """After a test that used the stack, wait (up to 30 s) for its worker to finish what the test set
    off (an alert's notifications run after the alert): the database flush that ends the test would
    otherwise race the worker's writes (a PostgreSQL deadlock at teardown)."""
    yield
    if "live_stack" not in request.fixturenames:
        return
    import time

    from portal.celery import app

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            inspector = app.control.inspect(timeout=1)
            busy = [tasks for found in (inspector.active(), inspector.reserved()) for tasks in (found or {}).values()]
        except Exception:  # noqa: BLE001 - a stack already stopped: nothing to wait for
            return
        if not any(busy):
            return
        time.sleep(0.3)


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium, one per test module (skipped, saying so, where Chromium is absent)."""
    yield from launch_browser()
