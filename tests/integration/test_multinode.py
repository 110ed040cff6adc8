"""Several nodes on one PostgreSQL and one Redis, as `runportal --role` starts them in production: two
web nodes, two workers and two beats (one by mistake), all real processes.

PostgreSQL only: SQLite is one file on one machine, not a database that nodes share (CI runs these on
PostgreSQL, .ci/run).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta
from types import SimpleNamespace

import pytest
import websockets
from django.conf import settings
from django.db import connection
from django.utils import timezone

from alerts.models import Alert, AlertEvent
from portal.credentials import issue_token
from scans.models import Scan, ScanResult
from stack.embedded import free_port
from stack.processes import Stack, base_env
from tests.faces import astronaut, drooped_astronaut, jpeg_bytes
from tests.integration.clients import frames_until, upload, wait_for, ws_url
from tests.integration.conftest import database_url

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

WORKER_DELAY_SECONDS = 3  # each analysis pauses this long (tests/integration/slow_worker.py)


@pytest.fixture
def nodes(django_db_setup, media_root, tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("several nodes share a PostgreSQL database; this run uses SQLite (CI runs it on PostgreSQL)")
    run = uuid.uuid4().hex[:8]
    shared = {
        "DATABASE_URL": database_url(connection.settings_dict),
        "REDIS_URL": settings.REDIS_URL,
        "MEDIA_ROOT": str(media_root),
        "CELERY_QUEUE": f"nodes-{run}",
        "CHANNELS_PREFIX": f"nodes-{run}",
        # A worker that dies returns its message after 5 s; a scan claimed 20 s ago (longer than a
        # first analysis with its model load takes, even on a busy CI machine) may be claimed again;
        # both beats sweep every second.
        "CELERY_VISIBILITY_TIMEOUT": "5",
        "SCAN_STALL_SECONDS": "20",
        "SCAN_SWEEP_SECONDS": "1",
        "ALERT_SWEEP_SECONDS": "1",
        "SLOW_WORKER_DELAY_SECONDS": str(WORKER_DELAY_SECONDS),
    }

    def node(name: str, **roles) -> Stack:
        var = tmp_path / name
        var.mkdir()
        return Stack(
            env=base_env(**shared, PORTAL_VAR_DIR=str(var)),
            port=free_port(),
            node=name,
            log_dir=var / "logs",
            worker_module="tests.integration.slow_worker",
            **{"web": False, "worker": False, "beat": False, **roles},
        )

    started = SimpleNamespace(
        web_a=node("web-a", web=True),
        web_b=node("web-b", web=True),
        worker_1=node("worker-1", worker=True),
        worker_2=node("worker-2", worker=True),
        beat_1=node("beat-1", beat=True),
        beat_2=node("beat-2", beat=True),
    )
    every = list(vars(started).values())
    try:
        for stack in every:
            stack.start()
        for stack in every:
            stack.wait_ready(timeout=180)
        yield started
    finally:
        for stack in every:
            stack.stop()


def token_for(user) -> str:
    return issue_token(user)[1]


def log_of(stack: Stack, part: str) -> str:
    return (stack.log_dir / f"{part}.log").read_text(errors="replace")


def test_an_upload_to_one_web_node_reaches_sockets_on_the_other(nodes, people):
    alice, carol = token_for(people.alice), token_for(people.carol)

    async def scenario():
        async with websockets.connect(ws_url(nodes.web_b, alice)) as clinician:
            async with websockets.connect(ws_url(nodes.web_b, carol)) as caregiver:
                scan_id = await asyncio.to_thread(
                    upload, nodes.web_a, carol, people.patient.id, jpeg_bytes(drooped_astronaut())
                )
                scan_id = scan_id["id"]
                alert = (await frames_until(clinician, lambda f: f["type"] == "alert.created", 120))[-1]
                done = await frames_until(
                    caregiver, lambda f: f["type"] == "scan.updated" and f["scan"]["status"] == "done", 60
                )
                return scan_id, alert, done[-1]

    scan_id, alert, done = asyncio.run(scenario())
    assert alert["alert"]["scan"]["id"] == scan_id and alert["alert"]["patient"]["id"] == people.patient.id
    assert done["scan"]["id"] == scan_id


def test_each_scan_is_analysed_exactly_once_across_the_workers(nodes, people):
    carol = token_for(people.carol)
    photos = [drooped_astronaut(), astronaut()] * 3
    scan_ids = [
        upload(web, carol, people.patient.id, jpeg_bytes(photo))["id"]
        for web, photo in zip([nodes.web_a, nodes.web_b] * 3, photos)
    ]
    finished = {Scan.Status.DONE, Scan.Status.REJECTED}
    wait_for(
        lambda: Scan.objects.filter(id__in=scan_ids, status__in=finished).count() == len(scan_ids),
        240,
        "every scan to be analysed",
    )
    time.sleep(2)  # any duplicate delivery would have run by now
    assert (
        ScanResult.objects.filter(scan_id__in=scan_ids).count()
        == Scan.objects.filter(id__in=scan_ids, status=Scan.Status.DONE).count()
    )
    assert sorted(Scan.objects.filter(id__in=scan_ids).values_list("attempts", flat=True)) == [1] * len(scan_ids)
    analysed_by = {
        name: [scan_id for scan_id in scan_ids if f"before decoding scan {scan_id}\n" in log_of(stack, "worker")]
        for name, stack in (("worker-1", nodes.worker_1), ("worker-2", nodes.worker_2))
    }
    assert sorted(analysed_by["worker-1"] + analysed_by["worker-2"]) == sorted(scan_ids)  # each once, in all
    assert analysed_by["worker-1"] and analysed_by["worker-2"]  # and both workers took a share


def test_a_web_node_killed_mid_stream_leaves_its_clients_to_the_other_losing_nothing(nodes, people):
    alice, carol = token_for(people.alice), token_for(people.carol)

    async def scenario():
        async with websockets.connect(ws_url(nodes.web_a, alice)) as socket:
            await asyncio.to_thread(upload, nodes.web_b, carol, people.patient.id, jpeg_bytes(drooped_astronaut()))
            seen = (await frames_until(socket, lambda f: f["type"] == "alert.created", 120))[-1]["alert"]
            nodes.web_a.kill("web")  # SIGKILL: its sockets drop with no goodbye
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(socket.recv(), 10)
        # While the client is away, another positive photo of the patient joins the alert.
        second = (
            await asyncio.to_thread(upload, nodes.web_b, carol, people.patient.id, jpeg_bytes(drooped_astronaut()))
        )["id"]
        await asyncio.to_thread(
            wait_for, lambda: Scan.objects.get(id=second).status == Scan.Status.DONE, 120, "the second scan"
        )
        # The client reconnects to the surviving node, saying the last change it saw.
        async with websockets.connect(ws_url(nodes.web_b, alice, after_event=seen["last_event_id"])) as socket:
            replayed = (await frames_until(socket, lambda f: f.get("replayed"), 30))[-1]
        return seen, second, replayed

    seen, second, replayed = asyncio.run(scenario())
    newest = AlertEvent.objects.filter(alert_id=seen["id"]).order_by("-id").first()
    assert newest.id > seen["last_event_id"]  # something did change while the client was away
    assert replayed["alert"]["id"] == seen["id"]
    assert replayed["alert"]["last_event_id"] == newest.id
    assert replayed["alert"]["latest_scan"]["id"] == second


def test_a_worker_killed_mid_analysis_leaves_the_scan_to_the_other(nodes, people):
    carol = token_for(people.carol)
    scan_id = upload(nodes.web_a, carol, people.patient.id, jpeg_bytes(drooped_astronaut()))["id"]
    marker = f"before decoding scan {scan_id}\n"
    workers = {"worker-1": nodes.worker_1, "worker-2": nodes.worker_2}
    holder = wait_for(
        lambda: next((name for name, stack in workers.items() if marker in log_of(stack, "worker")), None),
        60,
        "a worker to start the analysis",
    )
    workers[holder].kill("worker")  # mid-analysis: inside the pause, before the result
    assert Scan.objects.get(id=scan_id).status == Scan.Status.PROCESSING
    survivor = next(stack for name, stack in workers.items() if name != holder)
    wait_for(lambda: Scan.objects.get(id=scan_id).status == Scan.Status.DONE, 120, "the other worker to finish it")
    time.sleep(2)
    assert marker in log_of(survivor, "worker")
    assert ScanResult.objects.filter(scan_id=scan_id).count() == 1
    assert Alert.objects.filter(scan_id=scan_id).count() == 1


def test_two_beats_escalate_an_overdue_alert_once(nodes, people):
    carol = token_for(people.carol)
    scan_id = upload(nodes.web_a, carol, people.patient.id, jpeg_bytes(drooped_astronaut()))["id"]
    alert = wait_for(lambda: Alert.objects.filter(scan_id=scan_id).first(), 120, "the alert")
    Alert.objects.filter(id=alert.id).update(next_escalation_at=timezone.now() - timedelta(seconds=1))
    wait_for(
        lambda: AlertEvent.objects.filter(alert=alert, kind=AlertEvent.Kind.ESCALATED).exists(),
        30,
        "a beat to escalate it",
    )
    time.sleep(4)  # both beats have swept several times since
    alert.refresh_from_db()
    assert alert.escalation_level == 1
    assert AlertEvent.objects.filter(alert=alert, kind=AlertEvent.Kind.ESCALATED).count() == 1
    for beat in (nodes.beat_1, nodes.beat_2):
        assert "escalate_overdue_alerts" in log_of(beat, "beat")  # both were sending the sweep
