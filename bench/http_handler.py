"""An HTTP request through Django's ASGIHandler against the portal's (portal/handlers.py), in one process,
taking turns, so that both meet the same machine: how often the request woke the event loop from a
thread (in a web node each wake waits for an event loop that may be sending thousands of frames),
the process's CPU per request and the latency with nothing else running.

    .venv/bin/python -m stack.embedded .venv/bin/python bench/http_handler.py [--requests 200]
        [--database-url postgres://postgres@127.0.0.1:5432/postgres]

The requests are the caregiver's upload (POST /api/v1/scans/, a 512 x 512 JPEG) and the clinician's
alert list (GET /api/v1/alerts/), on a scratch database: a new one on the PostgreSQL server of
--database-url, SQLite without it. What the wakes cost under load, bench/load.py measures. A benchmark:
it prints figures, it never fails.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def setup(database_url: str | None):
    """Settings for a scratch database (a new one on the PostgreSQL server of ``database_url``); its dropper."""
    var_dir = Path(tempfile.mkdtemp(prefix="portal-http-bench-"))
    drop = None
    if database_url:
        from bench.load import scratch_database

        database_url, drop = scratch_database(database_url, f"http_bench_{var_dir.name.replace('-', '_')}")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    os.environ["PORTAL_VAR_DIR"] = str(var_dir)
    os.environ["DATABASE_URL"] = database_url or f"sqlite:///{var_dir / 'bench.sqlite3'}"
    os.environ["DB_POOL"] = "1" if database_url else "0"  # as docker-compose.yml runs it: a pool per process
    os.environ["UPLOAD_THROTTLE_RATE"] = "1000000/hour"
    os.environ["CELERY_QUEUE"] = f"http-bench-{var_dir.name}"  # nobody consumes it: the scans stay queued
    import django

    django.setup(set_prefix=False)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return drop


def people() -> dict:
    from portal.credentials import issue_token
    from tests import factories

    team = factories.CareTeamFactory(name="Stroke Unit")
    patient = factories.PatientFactory(care_team=team)
    caregiver = factories.UserFactory(username="bench-caregiver")
    patient.caregivers.add(factories.CaregiverFactory(user=caregiver))
    clinician = factories.UserFactory(username="bench-clinician")
    factories.add_to_team(factories.PhysicianFactory(user=clinician), team)
    return {
        "patient": patient.id,
        "caregiver": issue_token(caregiver)[1],
        "clinician": issue_token(clinician)[1],
    }


async def measure(handlers: dict, requests: list, rounds: int) -> dict:
    from tests.asgi_http import counting_wakeups, serve

    figures = {name: {"latency": [], "cpu": [], "wakeups": []} for name in handlers}
    for _ in range(rounds):
        for name, app in handlers.items():  # taking turns: both meet the same moment of the machine
            for scope, body in requests:
                with counting_wakeups(asyncio.get_running_loop()) as wakeups:
                    cpu, started = time.process_time(), time.perf_counter()
                    start, _ = await serve(app, scope, body, timeout=30)
                    figures[name]["latency"].append(time.perf_counter() - started)
                    figures[name]["cpu"].append(time.process_time() - cpu)
                figures[name]["wakeups"].append(wakeups.count)
                assert start["status"] in (200, 202), (name, scope["method"], scope["path"], start["status"])
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200, help="of each kind, per handler and loop state")
    parser.add_argument("--database-url")
    args = parser.parse_args()
    drop = setup(args.database_url)
    try:
        run(args)
    finally:
        if drop is not None:
            from django.db import connections

            connections.close_all()
            drop()


def run(args) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.core.handlers.asgi import ASGIHandler
    from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart

    from portal.handlers import SyncChainASGIHandler
    from tests.asgi_http import http_scope, token_header
    from tests.faces import astronaut, jpeg_bytes

    tokens = people()
    photo = SimpleUploadedFile("face.jpg", jpeg_bytes(astronaut()), content_type="image/jpeg")
    body = encode_multipart(BOUNDARY, {"patient": tokens["patient"], "image": photo})
    form = [(b"content-type", MULTIPART_CONTENT.encode()), (b"content-length", str(len(body)).encode())]
    requests = [
        (http_scope("/api/v1/scans/", method="POST", headers=token_header(tokens["caregiver"]) + form), body),
        (http_scope("/api/v1/alerts/", headers=token_header(tokens["clinician"])), b""),
    ]
    handlers = {"Django's ASGIHandler": ASGIHandler(), "one thread per request": SyncChainASGIHandler()}
    asyncio.run(measure(handlers, requests, 5))  # warm: imports, connections, caches
    figures = asyncio.run(measure(handlers, requests, args.requests))
    print(f"{args.requests} uploads and {args.requests} alert lists per handler, taking turns")
    baseline = None
    for name, got in figures.items():
        latency = statistics.median(got["latency"]) * 1000
        cpu = statistics.median(got["cpu"]) * 1000
        wakeups = statistics.median(got["wakeups"])
        ratio = "" if baseline is None else f"; {cpu / baseline:.2f}x the first's CPU"
        baseline = baseline or cpu
        print(
            f"  {name:<24} median {latency:6.2f} ms, CPU {cpu:5.2f} ms per request, "
            f"event loop woken from a thread {wakeups:g} times per request{ratio}"
        )


if __name__ == "__main__":
    main()
