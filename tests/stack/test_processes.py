"""The process stack behind make run, the integration tests and the benchmarks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent

CHILD = """
import sys, time
from stack.processes import Stack

class Sleepers(Stack):
    def commands(self):
        return {"a": [sys.executable, "-c", "import time; time.sleep(120)"],
                "b": [sys.executable, "-c", "import time; time.sleep(120)"]}

stack = Sleepers(env={"PATH": "/usr/bin:/bin"}).start()
print(" ".join(str(p.pid) for p in stack.processes.values()), flush=True)
time.sleep(120)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_run_killed_with_sigterm_takes_the_processes_it_started_along():
    """They run in their own sessions (so Ctrl-C reaches them only through stop()); a test run or a
    benchmark killed from outside must not leave them running."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    pids = [int(pid) for pid in child.stdout.readline().split()]
    assert len(pids) == 2 and all(_alive(pid) for pid in pids)
    child.send_signal(signal.SIGTERM)
    assert child.wait(timeout=30) == -signal.SIGTERM  # it still dies of the signal
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in pids)
