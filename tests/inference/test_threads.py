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
def quota_file(tmp_path, monkeypatch):
    path = tmp_path / "cpu.max"
    monkeypatch.setattr(threads, "CGROUP_CPU_MAX", path)
    return path


def test_a_container_quota_caps_the_usable_cpus(quota_file, monkeypatch):
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda _pid: set(range(8)))
    quota_file.write_text("max 100000\n")
    assert threads.usable_cpus() == 8
    quota_file.write_text("250000 100000\n")  # cpus: 2.5
    assert threads.usable_cpus() == 3
    quota_file.write_text("50000 100000\n")  # cpus: 0.5: still one
    assert threads.usable_cpus() == 1
    quota_file.unlink()  # no cgroup v2 file: the affinity alone
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


def test_a_worker_process_caps_pytorch_and_opencv_as_it_starts(settings, monkeypatch, restore_thread_pools):
    from celery.signals import worker_process_init

    monkeypatch.setattr(threads, "usable_cpus", lambda: 4)
    settings.WORKER_CONCURRENCY = 2
    settings.INFERENCE_THREADS = 0
    torch.set_num_threads(4)
    worker_process_init.send(sender=None)  # what Celery sends in each new pool process
    assert (torch.get_num_threads(), cv2.getNumThreads()) == (2, 2)
    settings.INFERENCE_THREADS = 1
    worker_process_init.send(sender=None)
    assert (torch.get_num_threads(), cv2.getNumThreads()) == (1, 1)


@pytest.fixture(scope="module")
def module():
    return _features_model(build_resnet50().eval())


def test_onnxruntime_and_openvino_take_the_share(module):
    onnx = build_runtime("onnxruntime", module, 96, threads=1)
    assert onnx.session.get_session_options().intra_op_num_threads == 1
    openvino = build_runtime("openvino", module, 96, threads=1)
    assert int(openvino.compiled.get_property("INFERENCE_NUM_THREADS")) == 1


def test_the_classifier_builds_its_runtime_with_the_share(tmp_path, module):
    path = tmp_path / "model.pt"
    torch.save({"state_dict": build_resnet50().state_dict(), "input_size": 96}, path)
    classifier = ResNetClassifier(path, runtime="onnxruntime", threads=1)
    assert classifier.runtime.name == "onnxruntime"
    assert classifier.runtime.session.get_session_options().intra_op_num_threads == 1
