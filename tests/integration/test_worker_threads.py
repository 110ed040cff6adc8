"""A worker node started by runportal's Stack tells its processes how many they are, and each sizes
its classifier's and OpenCV's threads from that (inference/runtime.py share_the_cpus)."""

from __future__ import annotations

import os

import pytest

from inference.engine.threads import threads_per_process, usable_cpus
from tests.integration.clients import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_the_worker_process_takes_its_share_of_the_cpus(live_stack):
    # The test stack's worker runs one process (worker_concurrency=1; the setting's default is 2).
    share = threads_per_process(1, int(os.environ.get("INFERENCE_THREADS") or 0))
    expected = f"analysis threads: {share} (usable CPUs {usable_cpus()}, worker processes on this node 1)"
    log = live_stack.log_dir / "worker.log"
    wait_for(lambda: expected in log.read_text(errors="replace"), 30, f"{expected!r} in the worker's log")
