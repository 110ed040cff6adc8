"""Starting the portal's processes together: daphne (HTTP + WebSocket), the Celery worker pools
(analyses, calls, FHIR sends, the clock's sweeps: portal/queues.py), Celery beat.

Used by `manage.py runportal` (make run), the integration tests and the benchmarks, so all three run
the same real processes the same way.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from portal.queues import ANALYSIS, CLOCK, FHIR, NOTIFY, SIDE_POOLS, WORKER_NAMES, queue_names


@dataclass
class Stack:
    env: dict[str, str]
    host: str = "127.0.0.1"
    port: int = 8000
    worker_concurrency: int = 1
    notify_concurrency: int = 2  # processes of the pool that makes the calls (pushes, e-mails)
    beat: bool = False
    # The roles this stack runs: web and worker by default (and beat when asked); a node of a larger
    # deployment runs one (manage.py runportal --role).
    web: bool = True
    worker: bool = True
    node: str = ""  # names the worker (celery --hostname); default: the port
    log_dir: Path | None = None  # None: processes write to this terminal
    # What runs `celery worker`: a test may name a module that wraps it (tests/integration/slow_worker.py).
    worker_module: str = "celery"
    # Analysis is batch work: where roles share a machine, the worker yields the CPU to the web node's
    # answers and live alerts (bench/load.py: all roles on one 2-core machine). 0 leaves it as is.
    worker_nice: int = 10
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    _logs: list[IO] = field(default_factory=list)
    _sigterm_handler: Callable | None = field(default=None, repr=False)  # set by start(), see below

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def commands(self) -> dict[str, list[str]]:
        python = sys.executable
        commands = {}
        if self.web:
            # A socket has 20 s (daphne's default: 5) to be accepted: when a web node goes away, hundreds
            # of clients reconnect to the others at once, and each waits its turn for the database.
            # stack/web.py: daphne, with Twisted's second parse of every upload's body turned off.
            commands["web"] = [
                python,
                "-m",
                "stack.web",
                "--websocket_connect_timeout",
                "20",
                "-b",
                self.host,
                "-p",
                str(self.port),
                "portal.asgi:application",
            ]
        if self.worker:
            # A pool per queue: the analyses' (CPU work); two that wait on other servers, calls and
            # FHIR sends, whose hanging peers then hold up nothing else; and the clock's sweeps, which
            # no upload burst may delay (portal/queues.py).
            queues = queue_names(self.env.get("CELERY_QUEUE", "portal"))
            pools = {
                ANALYSIS: (self.worker_module, self.worker_concurrency, self.worker_nice),
                NOTIFY: ("celery", self.notify_concurrency, 0),
                FHIR: ("celery", 1, 0),
                CLOCK: ("celery", 1, 0),
            }
            for pool, (module, concurrency, nice) in pools.items():
                name = WORKER_NAMES[pool]
                commands[name] = [
                    *(["nice", "-n", str(nice)] if nice else []),
                    python,
                    "-m",
                    module,
                    "-A",
                    "portal",
                    "worker",
                    "--loglevel",
                    "INFO",
                    "--queues",
                    queues[pool],
                    "--concurrency",
                    str(concurrency),
                    "--hostname",
                    f"{name}-{self.node or self.port}@%h",
                    "--without-gossip",
                    "--without-mingle",
                ]
        if self.beat:
            schedule = Path(self.env.get("PORTAL_VAR_DIR", "var")) / "celerybeat-schedule"
            commands["beat"] = [
                python,
                "-m",
                "celery",
                "-A",
                "portal",
                "beat",
                "--loglevel",
                "INFO",
                "--schedule",
                str(schedule),
            ]
        return commands

    def start(self) -> Stack:
        self._take_along_on_sigterm()
        root = Path(__file__).resolve().parent.parent
        for name, command in self.commands().items():
            output = None
            if self.log_dir is not None:
                self.log_dir.mkdir(parents=True, exist_ok=True)
                output = open(self.log_dir / f"{name}.log", "ab")
                self._logs.append(output)
            self._spawn(name, command, root, output)
        return self

    def _spawn(self, name: str, command: list[str], root: Path, output) -> None:
        # Each in its own process group, so one part (a worker and its pool children) can be killed
        # alone, and Ctrl-C reaches them only through stop().
        # The worker's processes share the node's CPUs among themselves (inference/runtime.py).
        env = {**self.env, "WORKER_CONCURRENCY": str(self.worker_concurrency)} if name == "worker" else self.env
        self.processes[name] = subprocess.Popen(
            command,
            cwd=root,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT if output else None,
            start_new_session=True,
        )

    def restart(self, name: str) -> None:
        output = None
        if self.log_dir is not None:
            output = open(self.log_dir / f"{name}.log", "ab")
            self._logs.append(output)
        self._spawn(name, self.commands()[name], Path(__file__).resolve().parent.parent, output)

    def wait_ready(self, timeout: float = 120.0) -> None:
        """With a web role: wait until /healthz reports the database, Redis and a worker all answering
        (and, when this stack runs the workers, its pools for calls, FHIR sends and the clock too).
        Without one (a worker or beat node): wait until its processes have stayed up for 3 s."""
        deadline = time.monotonic() + timeout
        steady_since = time.monotonic()
        last_error = ""
        while time.monotonic() < deadline:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited with code {process.returncode}{self._tail(name)}")
            if not self.web:
                if time.monotonic() - steady_since >= 3:
                    return
                time.sleep(0.5)
                continue
            try:
                with urllib.request.urlopen(f"{self.base_url}/healthz", timeout=5) as response:
                    checks = json.loads(response.read()).get("checks", {})
                    pools = [checks.get(WORKER_NAMES[pool], "ok") for pool in SIDE_POOLS] if self.worker else []
                    if response.status == 200 and all(state.startswith("ok") for state in pools):
                        return
                    last_error = json.dumps(checks)
            except urllib.error.HTTPError as exc:
                last_error = exc.read().decode(errors="replace")
            except OSError as exc:
                last_error = str(exc)
            time.sleep(0.5)
        raise TimeoutError(f"the portal did not become healthy in {timeout:.0f}s: {last_error}")

    def _take_along_on_sigterm(self) -> None:
        """Where nothing else handles SIGTERM (a test run, a benchmark), stop these processes before
        dying of it: they run in their own sessions and would otherwise outlive whoever started them.
        `manage.py runportal` handles SIGTERM itself and is left alone."""
        if threading.current_thread() is not threading.main_thread():
            return
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return

        def stop_then_die(signum, _frame):
            self.stop(timeout=5)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

        signal.signal(signal.SIGTERM, stop_then_die)
        self._sigterm_handler = stop_then_die

    def stop(self, timeout: float = 20.0) -> None:
        handler, self._sigterm_handler = self._sigterm_handler, None
        if handler is not None and signal.getsignal(signal.SIGTERM) is handler:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in self.processes.values():
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            # Whatever the part left behind in its group (pool children) goes with it.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
        for handle in self._logs:
            handle.close()
        self._logs.clear()

    def kill(self, name: str) -> None:
        """SIGKILL a part with all its children (fault injection: a crashed machine, an OOM kill)."""
        process = self.processes[name]
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()

    def _tail(self, name: str) -> str:
        if self.log_dir is None:
            return ""
        text = (self.log_dir / f"{name}.log").read_text(errors="replace")
        return "\n" + text[-3000:]

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


def base_env(**overrides: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(overrides)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env
