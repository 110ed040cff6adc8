"""How many threads each analysis process gives its classifier runtime and OpenCV.

PyTorch, ONNX Runtime and OpenVINO each start one thread per core of the machine unless told
otherwise, so a worker node of two processes on two cores ran four classifier threads that took the
cores from one another: bench/load.py --classifier measured two processes slower than one (see
README, Deploying at scale). Each process of a node takes its share of the CPUs it may use.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

# cgroup v2: a container's CPU limit (docker compose `cpus:`), "max" when there is none.
CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity), capped by its cgroup's CPU quota."""
    try:
        count = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        count = os.cpu_count() or 1
    try:
        quota, period = CGROUP_CPU_MAX.read_text().split()[:2]
        if quota != "max":
            count = min(count, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):
        pass
    return max(1, count)


def threads_per_process(processes: int, requested: int = 0) -> int:
    """``requested`` when set (> 0), else an equal share of the usable CPUs among the node's
    ``processes``, at least one."""
    if requested > 0:
        return requested
    return max(1, usable_cpus() // max(1, processes))


def limit_threads(threads: int) -> None:
    """Cap PyTorch's and OpenCV's thread pools in this process (ONNX Runtime and OpenVINO take theirs
    when the classifier builds them: classifier.build_runtime)."""
    import cv2
    import torch

    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)
