"""One place decides where Redis is: a manage.py command run beside `make run` (runportal on its
embedded Redis) reaches that Redis, not whatever listens on 127.0.0.1:6379."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import redis

from stack.embedded import redis_url_for_run

ROOT = Path(__file__).resolve().parents[2]
WRITE_A_KEY = (
    "from django.conf import settings; from django.core.cache import cache; "
    "cache.set('written-by-a-command', 1, 60); print(settings.REDIS_URL)"
)


def manage(var_dir: Path, code: str) -> str:
    env = {key: value for key, value in os.environ.items() if key != "REDIS_URL"}
    env["PORTAL_VAR_DIR"] = str(var_dir)
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1]


def test_a_command_beside_runportal_uses_its_embedded_redis(tmp_path, monkeypatch):
    monkeypatch.delenv("REDIS_URL", raising=False)
    with redis_url_for_run(publish_in=tmp_path) as url:
        assert manage(tmp_path, WRITE_A_KEY) == url
        written = redis.Redis.from_url(url).keys("*written-by-a-command*")
        assert written  # the command's cache write landed in the embedded server
    assert not list(tmp_path.glob("embedded-redis.*"))  # the address goes when the server does
    assert manage(tmp_path, "from django.conf import settings; print(settings.REDIS_URL)") == (
        "redis://127.0.0.1:6379/0"
    )


def test_an_address_left_by_a_runportal_that_died_is_ignored(tmp_path):
    from portal.env import EMBEDDED_REDIS_FILE, embedded_redis_url

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (tmp_path / EMBEDDED_REDIS_FILE).write_text(f"redis://127.0.0.1:1/0 {dead.stdout.strip()}\n")
    assert embedded_redis_url(tmp_path) is None
    (tmp_path / EMBEDDED_REDIS_FILE).write_text("garbage")
    assert embedded_redis_url(tmp_path) is None
    (tmp_path / EMBEDDED_REDIS_FILE).write_text(f"redis://127.0.0.1:7777/0 {os.getpid()}\n")
    assert embedded_redis_url(tmp_path) == "redis://127.0.0.1:7777/0"
