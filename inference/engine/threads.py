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

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_SELF_CGROUP = Path("/proc/self/cgroup")


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity), capped by its cgroups' CPU quota."""
    try:
        count = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        count = os.cpu_count() or 1
    quota = cgroup_cpu_quota()
    if quota is not None:
        count = min(count, math.ceil(quota))
    return max(1, count)


def cgroup_cpu_quota() -> float | None:
    """The CPUs this process's cgroup allows (a container's `cpus:`, a systemd unit's CPUQuota=): the
    smallest quota of its cgroup v2 and its ancestors (cpu.max), or of cgroup v1 (cpu.cfs_quota_us);
    None when there is none."""
    quotas = [_v2_quota(directory / "cpu.max") for directory in _own_cgroup_and_ancestors()]
    quotas.append(_v1_quota(CGROUP_ROOT / "cpu"))
    found = [quota for quota in quotas if quota is not None]
    return min(found) if found else None


def _own_cgroup_and_ancestors() -> list[Path]:
    own = "/"
    try:
        for line in PROC_SELF_CGROUP.read_text().splitlines():
            if line.startswith("0::"):
                own = line[3:] or "/"
    except OSError:
        pass
    directory = CGROUP_ROOT / own.strip("/")
    return [directory, *[parent for parent in directory.parents if parent.is_relative_to(CGROUP_ROOT)]]


def _v2_quota(path: Path) -> float | None:
    try:
        quota, period = path.read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        return None


def _v1_quota(directory: Path) -> float | None:
    try:
        quota = int((directory / "cpu.cfs_quota_us").read_text())
        period = int((directory / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota / period if quota > 0 and period > 0 else None


def threads_per_process(processes: int, requested: int = 0) -> int:
    """``requested`` when set (> 0), else an equal share of the usable CPUs among the node's
    ``processes``, at least one."""
    if requested > 0:
        return requested
    return max(1, usable_cpus() // max(1, processes))


def limit_opencv_threads(threads: int) -> None:
    """OpenCV's pool (the face alignment, the overlays). The classifier's runtime takes its share when
    it is built (classifier.ResNetClassifier ``threads``): importing PyTorch here would cost every new
    worker process seconds, classifier or not."""
    import cv2

    cv2.setNumThreads(threads)
