"""The database restarted under load: uploads during the outage are refused clearly (503, nothing
saved) or accepted, and every accepted scan is analysed exactly once afterwards.

Runs a private PostgreSQL server (Debian's binaries, its own data folder and port), so restarting
it touches nothing else; skipped where PostgreSQL's server binaries are not installed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests
from django.conf import settings

from stack.embedded import free_port
from stack.processes import Stack, base_env
from tests.faces import astronaut, drooped_astronaut, jpeg_bytes

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PG_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)), None)


class PrivatePostgres:
    def __init__(self, directory: Path):
        self.port = free_port()
        self.data = directory / "pgdata"
        self.sockets = directory / "pgsock"

    def _as_postgres(self, *command: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["runuser", "-u", "postgres", "--", *command], check=True, capture_output=True, text=True, timeout=120
        )

    def initialise(self) -> PrivatePostgres:
        for folder in (self.data, self.sockets):
            folder.mkdir(parents=True)
            shutil.chown(folder, "postgres", "postgres")
        shutil.chown(self.data.parent, "postgres", "postgres")
        self._as_postgres(str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres")
        self.ctl("start")
        subprocess.run(
            ["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-c", "CREATE DATABASE portal"],
            check=True,
            capture_output=True,
        )
        return self

    def ctl_command(self, action: str) -> list[str]:
        # -l: the server logs to a file; it must not hold our pipes open after pg_ctl returns.
        options = f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1"
        return [
            "runuser",
            "-u",
            "postgres",
            "--",
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.data.parent / "postgres.log"),
            "-o",
            options,
            "-m",
            "fast",
            "-w",
            action,
        ]

    def ctl(self, action: str) -> None:
        subprocess.run(
            self.ctl_command(action), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120
        )

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/portal"

    def query(self, sql: str) -> str:
        return subprocess.run(
            ["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", "portal", "-At", "-c", sql],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()


@pytest.fixture
def private_postgres(tmp_path):
    if PG_BIN is None or os.geteuid() != 0 or shutil.which("runuser") is None:
        pytest.skip("needs PostgreSQL's server binaries and root (to run them as the postgres user)")
    folder = Path(f"/tmp/portal-pg-{uuid.uuid4().hex[:8]}")
    folder.mkdir()
    server = PrivatePostgres(folder).initialise()
    try:
        yield server
    finally:
        subprocess.run(
            [
                "runuser",
                "-u",
                "postgres",
                "--",
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(server.data),
                "-m",
                "immediate",
                "stop",
            ],
            capture_output=True,
        )
        shutil.rmtree(folder, ignore_errors=True)


def test_a_database_restart_loses_and_doubles_nothing(private_postgres, tmp_path):
    run = uuid.uuid4().hex[:8]
    env = base_env(
        DATABASE_URL=private_postgres.url,
        REDIS_URL=settings.REDIS_URL,
        PORTAL_VAR_DIR=str(tmp_path),
        MEDIA_ROOT=str(tmp_path / "media"),
        CELERY_QUEUE=f"dbrestart-{run}",
        CHANNELS_PREFIX=f"dbrestart-{run}",
        SCAN_STALL_SECONDS="5",
        SCAN_SWEEP_SECONDS="1",
        UPLOAD_THROTTLE_RATE="100000/hour",
    )
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "--noinput"], env=env, check=True, capture_output=True)
    subprocess.run([*manage, "seed_demo", "--quiet"], env=env, check=True, capture_output=True)
    found = subprocess.run(
        [
            *manage,
            "shell",
            "--no-imports",
            "-c",
            "import json; from django.contrib.auth import get_user_model; "
            "from portal.credentials import issue_token; from portal.models import Patient; "
            "print(json.dumps([issue_token(get_user_model().objects.get(username='carol'))[1], "
            "Patient.objects.get(mrn='MRN-1001').id]))",
        ],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    token, patient_id = json.loads(found.stdout.strip().splitlines()[-1])
    photos = [jpeg_bytes(drooped_astronaut()), jpeg_bytes(astronaut())]

    retry_after = []

    def upload(index: int) -> int:
        try:
            response = requests.post(
                f"{stack.base_url}/api/v1/scans/",
                headers={"Authorization": f"Token {token}"},
                data={"patient": patient_id},
                files={"image": ("face.jpg", photos[index % 2], "image/jpeg")},
                timeout=30,
            )
        except requests.ConnectionError:
            return 0
        if response.status_code == 503:
            retry_after.append(response.headers.get("Retry-After"))
        return response.status_code

    stack = Stack(env=env, port=free_port(), worker_concurrency=1, beat=True, log_dir=tmp_path / "logs")
    with stack:
        stack.wait_ready(timeout=180)
        answers = [upload(i) for i in range(4)]
        # The restart in two steps, so that uploads surely meet the outage (a quick restart can fall
        # between two of them): stopped, several uploads, started again while uploads go on.
        private_postgres.ctl("stop")
        while_down = [upload(len(answers) + i) for i in range(3)]
        assert while_down == [503, 503, 503], while_down  # the outage was met, and answered clearly
        answers += while_down
        start = subprocess.Popen(
            private_postgres.ctl_command("start"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        during = []
        while start.poll() is None:
            during.append(upload(len(answers) + len(during)))
        answers += during
        answers += [upload(i) for i in range(4)]
        assert len(retry_after) >= 3 and set(retry_after) == {"30"}, retry_after

        assert 500 not in answers, answers
        assert set(answers) <= {202, 503}, answers
        accepted = answers.count(202)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if (
                private_postgres.query("SELECT count(*) FROM scans_scan WHERE status IN ('queued', 'processing')")
                == "0"
            ):
                break
            time.sleep(1)

    scans = int(private_postgres.query("SELECT count(*) FROM scans_scan"))
    finished = int(private_postgres.query("SELECT count(*) FROM scans_scan WHERE status IN ('done', 'rejected')"))
    results = int(private_postgres.query("SELECT count(*) FROM scans_scanresult"))
    done = int(private_postgres.query("SELECT count(*) FROM scans_scan WHERE status = 'done'"))
    print(
        f"uploads {len(answers)}: accepted {accepted}, refused with 503 during the restart "
        f"{answers.count(503)}; scans {scans}, finished {finished}, results {results}"
    )
    assert scans == accepted  # a refused upload left no row behind
    assert finished == accepted  # and every accepted one was analysed
    assert results == done  # exactly one result per analysed scan
    assert private_postgres.query("SELECT count(*) FROM alerts_alert") == private_postgres.query(
        "SELECT count(DISTINCT episode_alert_id) FROM scans_scan WHERE episode_alert_id IS NOT NULL"
    )
