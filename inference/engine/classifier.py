"""ResNet-50 (torchvision) on the aligned face crop, with a Grad-CAM heatmap of what it looked at.

A checkpoint is a torch.save'd dict: {"state_dict", "classes", "input_size", "architecture"}. There
is deliberately no way to build a classifier without a checkpoint: random weights never decide.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CLASSES = ("no_paralysis", "paralysis")
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


class CheckpointError(RuntimeError):
    pass


@dataclass(frozen=True)
class Prediction:
    probability: float  # P(paralysis)
    heatmap: np.ndarray | None  # (H, W) in 0..1 over the aligned crop


def build_resnet50(num_classes: int = len(CLASSES)):
    import torch.nn as nn
    from torchvision.models import resnet50

    model = resnet50(weights=None)
    model.fc = nn.Linear(model.fc.in_features, num_classes)
    return model


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def to_tensor(face_rgb: np.ndarray):
    import torch

    array = (face_rgb.astype(np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
    return torch.from_numpy(array.transpose(2, 0, 1)).unsqueeze(0)


class ResNetClassifier:
    def __init__(self, checkpoint_path: str | Path, *, expected_sha256: str | None = None) -> None:
        import torch

        path = Path(checkpoint_path)
        if expected_sha256 and file_sha256(path) != expected_sha256:
            raise CheckpointError(f"{path.name}: sha256 does not match the registry; refusing to load it")
        payload = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(payload, dict) or "state_dict" not in payload:
            raise CheckpointError(f"{path.name} is not a classifier checkpoint (no state_dict)")
        if tuple(payload.get("classes", CLASSES)) != CLASSES:
            raise CheckpointError(f"{path.name} predicts {payload.get('classes')}, expected {CLASSES}")
        self.input_size = int(payload.get("input_size", 224))
        self.model = build_resnet50()
        self.model.load_state_dict(payload["state_dict"])
        self.model.eval()
        self._torch = torch

    def predict(self, face_rgb: np.ndarray, *, with_heatmap: bool = True) -> Prediction:
        torch = self._torch
        batch = to_tensor(face_rgb)
        if not with_heatmap:
            with torch.inference_mode():
                logits = self.model(batch)
            return Prediction(float(torch.softmax(logits, dim=1)[0, 1]), None)
        return self._predict_with_gradcam(batch)

    def _predict_with_gradcam(self, batch) -> Prediction:
        """Grad-CAM (Selvaraju et al. 2017) on layer4: gradient-weighted activations of the last block."""
        torch = self._torch
        captured: dict[str, object] = {}

        def keep_activation(_module, _inputs, output):
            captured["activation"] = output
            output.register_hook(lambda grad: captured.__setitem__("gradient", grad))

        handle = self.model.layer4.register_forward_hook(keep_activation)
        try:
            with torch.enable_grad():
                logits = self.model(batch)
                probability = float(torch.softmax(logits.detach(), dim=1)[0, 1])
                self.model.zero_grad(set_to_none=True)
                logits[0, 1].backward()
        finally:
            handle.remove()
        activation = captured["activation"].detach()[0]
        gradient = captured["gradient"].detach()[0]
        weights = gradient.mean(dim=(1, 2))
        cam = torch.relu((weights[:, None, None] * activation).sum(dim=0))
        cam = torch.nn.functional.interpolate(cam[None, None], size=batch.shape[-2:], mode="bilinear",
                                              align_corners=False)[0, 0]
        peak = float(cam.max())
        heatmap = (cam / peak).numpy() if peak > 0 else cam.numpy()
        return Prediction(probability, heatmap)
