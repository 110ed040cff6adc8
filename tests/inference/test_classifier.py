"""Serving runtimes agree with PyTorch, and the one-pass Grad-CAM equals autograd Grad-CAM."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from inference.engine.classifier import (
    AGREEMENT_TOLERANCE,
    CLASSES,
    ResNetClassifier,
    _features_model,
    build_resnet50,
    build_runtime,
    class_activation_map,
    preprocess,
    softmax_paralysis,
)
from tests.faces import astronaut


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(3)
    model = build_resnet50()
    path = tmp_path_factory.mktemp("ckpt") / "model.pt"
    torch.save({"state_dict": model.state_dict(), "classes": list(CLASSES), "input_size": 96}, path)
    return path


def autograd_grad_cam(model, batch: torch.Tensor) -> np.ndarray:
    captured = {}

    def hook(_module, _inputs, output):
        captured["a"] = output
        output.register_hook(lambda grad: captured.__setitem__("g", grad))

    handle = model.layer4.register_forward_hook(hook)
    logits = model(batch)
    model.zero_grad()
    logits[0, 1].backward()
    handle.remove()
    weights = captured["g"][0].mean(dim=(1, 2))
    cam = torch.relu((weights[:, None, None] * captured["a"][0]).sum(0)).detach().numpy()
    return cam / cam.max()


def test_the_one_pass_heatmap_equals_autograd_grad_cam(checkpoint):
    classifier = ResNetClassifier(checkpoint, runtime="torch")
    face = np.asarray(
        torch.nn.functional.interpolate(
            torch.from_numpy(astronaut()[40:260, 120:340].copy()).permute(2, 0, 1)[None].float(), size=(96, 96)
        )[0]
        .permute(1, 2, 0)
        .byte()
    )
    batch = torch.from_numpy(preprocess(face))
    reference = autograd_grad_cam(classifier.model, batch)
    _, features = classifier.runtime(preprocess(face))
    low_res = class_activation_map(features[0], classifier.fc_weight, size=reference.shape[0])
    assert np.allclose(low_res, reference, atol=1e-4)
    prediction = classifier.predict(face)
    assert prediction.heatmap.shape == (96, 96)
    assert 0 <= prediction.probability <= 1


@pytest.mark.parametrize("name", ["onnxruntime", "openvino"])
def test_each_fast_runtime_agrees_with_pytorch(checkpoint, name):
    classifier = ResNetClassifier(checkpoint, runtime="torch")
    runtime = build_runtime(name, _features_model(classifier.model), 96)
    batch = np.concatenate(
        [preprocess(np.random.default_rng(i).integers(0, 255, (96, 96, 3), dtype=np.uint8)) for i in range(3)]
    )
    logits, features = runtime(batch)
    ref_logits, ref_features = classifier.reference(batch)
    assert np.abs(softmax_paralysis(logits) - softmax_paralysis(ref_logits)).max() <= AGREEMENT_TOLERANCE
    if runtime.name.endswith("bf16"):  # 8-bit mantissas: compare what the features are for, the heatmap
        fc = classifier.fc_weight
        for got, want in zip(features, ref_features):
            assert np.abs(class_activation_map(got, fc, 96) - class_activation_map(want, fc, 96)).max() < 0.05
    else:
        assert np.abs(features - ref_features).max() < 1e-2 * np.abs(ref_features).max()


def test_auto_serves_a_runtime_that_agrees_and_records_it(checkpoint):
    classifier = ResNetClassifier(checkpoint, runtime="auto")
    assert classifier.runtime_name in {"torch", "onnxruntime", "openvino-fp32", "openvino-bf16"}
    assert classifier.agreement <= AGREEMENT_TOLERANCE
    reference = ResNetClassifier(checkpoint, runtime="torch")
    face = astronaut()[100:196, 200:296].copy()
    assert abs(classifier.predict(face).probability - reference.predict(face).probability) <= AGREEMENT_TOLERANCE
