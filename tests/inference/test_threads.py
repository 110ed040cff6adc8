"""Each analysis process of a worker node takes its share of the node's CPUs (inference/engine/threads.py):
left alone, every process's classifier runtime started a thread per core, and two processes on two
cores analysed half as fast as one (bench/load.py --classifier --concurrency 1 2)."""

from __future__ import annotations

import cv2
import pytest
import torch

from inference.engine import threads
from inference.engine.classifier import ResNetClassifier, _features_model, build_resnet50, build_runtime


@pytest.fixture
def cgroups(tmp_path, monkeypatch):
    """A cgroup tree of our own: the process's cgroup v2 is /portal/worker-1."""
    root = tmp_path / "cgroup"
    (root / "portal" / "worker-1").mkdir(parents=True)
    own = tmp_path / "self-cgroup"
    own.write_text("4:memory:/whatever\n0::/portal/worker-1\n")
    monkeypatch.setattr(threads, "CGROUP_ROOT", root)
    monkeypatch.setattr(threads, "PROC_SELF_CGROUP", own)
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda _pid: set(range(8)), raising=False)
    return root


def test_no_quota_leaves_the_cpus_the_process_may_run_on(cgroups):
    (cgroups / "cpu.max").write_text("max 100000\n")
    assert threads.usable_cpus() == 8


def test_a_container_or_unit_quota_caps_them(cgroups):
    (cgroups / "portal" / "worker-1" / "cpu.max").write_text("250000 100000\n")  # cpus: 2.5
    assert threads.usable_cpus() == 3
    (cgroups / "portal" / "cpu.max").write_text("100000 100000\n")  # a parent's quota binds too
    assert threads.usable_cpus() == 1


def test_a_fraction_of_a_cpu_still_leaves_one(cgroups):
    (cgroups / "portal" / "worker-1" / "cpu.max").write_text("50000 100000\n")
    assert threads.usable_cpus() == 1


def test_a_cgroup_v1_quota_counts(cgroups):
    (cgroups / "cpu").mkdir()
    (cgroups / "cpu" / "cpu.cfs_quota_us").write_text("200000\n")
    (cgroups / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert threads.usable_cpus() == 2
    (cgroups / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")  # unlimited
    assert threads.usable_cpus() == 8


def test_a_node_shares_its_cpus_among_its_processes(monkeypatch):
    monkeypatch.setattr(threads, "usable_cpus", lambda: 8)
    assert threads.threads_per_process(1) == 8
    assert threads.threads_per_process(2) == 4
    assert threads.threads_per_process(3) == 2
    assert threads.threads_per_process(16) == 1  # more processes than CPUs: one each, never none
    assert threads.threads_per_process(2, requested=3) == 3  # INFERENCE_THREADS wins


@pytest.fixture
def restore_thread_pools():
    before = torch.get_num_threads(), cv2.getNumThreads()
    yield
    torch.set_num_threads(before[0])
    cv2.setNumThreads(before[1])


def test_a_worker_process_caps_opencv_as_it_starts(settings, monkeypatch, restore_thread_pools):
    from celery.signals import worker_process_init

    monkeypatch.setattr(threads, "usable_cpus", lambda: 4)
    settings.WORKER_CONCURRENCY = 2
    settings.INFERENCE_THREADS = 0
    worker_process_init.send(sender=None)  # what Celery sends in each new pool process
    assert cv2.getNumThreads() == 2
    settings.INFERENCE_THREADS = 1
    worker_process_init.send(sender=None)
    assert cv2.getNumThreads() == 1


@pytest.fixture(scope="module")
def module():
    return _features_model(build_resnet50().eval())


def test_onnxruntime_and_openvino_take_the_share(module):
    onnx = build_runtime("onnxruntime", module, 96, threads=1)
    assert onnx.session.get_session_options().intra_op_num_threads == 1
    openvino = build_runtime("openvino", module, 96, threads=1)
    assert int(openvino.compiled.get_property("INFERENCE_NUM_THREADS")) == 1


def test_the_classifier_takes_the_share_for_pytorch_and_its_runtime(tmp_path, restore_thread_pools):
    path = tmp_path / "model.pt"
    torch.save({"state_dict": build_resnet50().state_dict(), "input_size": 96}, path)
    torch.set_num_threads(2)
    classifier = ResNetClassifier(path, runtime="onnxruntime", threads=1)
    assert torch.get_num_threads() == 1
    assert classifier.runtime.name == "onnxruntime"
    assert classifier.runtime.session.get_session_options().intra_op_num_threads == 1
