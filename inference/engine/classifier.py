"""ResNet-50 (torchvision) on the aligned face crop, with a Grad-CAM heatmap of what it looked at.

A checkpoint is a torch.save'd dict: {"state_dict", "classes", "input_size", "architecture",
"normalisation", "mirror_average"}. There is deliberately no way to build a classifier without a
checkpoint: random weights never decide.

Mirror-consistent by construction: a checkpoint trained with ``mirror_average`` is scored on the face
and on its mirror image in one batch of two, and P(paralysis) is their mean (the heatmap is the mean of
the face's map and the mirror's map flipped back), so a photo and its mirror get the same answer.

Grad-CAM without a backward pass: ResNet-50 ends in global average pooling and one linear layer, so
the gradient of the paralysis logit with respect to each layer4 activation is that channel's fc weight
divided by the number of positions. Grad-CAM's channel weights are therefore the fc weights, and the
heatmap is ReLU(sum_k w_k A_k), normalised (Zhou et al.'s CAM equals Grad-CAM here). One forward pass
returning the logits and the layer4 features gives both, in any runtime: PyTorch, ONNX Runtime or
OpenVINO. tests/inference/test_classifier.py checks this against autograd Grad-CAM.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

CLASSES = ("no_paralysis", "paralysis")
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
RUNTIME_PREFERENCE = ("openvino", "onnxruntime", "torch")
# A runtime serves only if its probabilities match PyTorch's to this tolerance on the check inputs;
# "auto" then takes the fastest of those, timed on this machine. 0.01 admits OpenVINO's bf16 on CPUs
# that have it (the trained model on 40 real faces: max |dP| 6.6e-3, same labels) and nothing coarser;
# bench/inference.py checks the same tolerance on real faces.
AGREEMENT_TOLERANCE = 1e-2


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


# How a checkpoint expects its input scaled (its payload's "normalisation"): "imagenet" subtracts
# ImageNet's channel means and divides by their deviations; "per_face" standardises each face by its
# own mean and deviation, so a brighter or more contrasted photo of one face is the same input.
NORMALISATIONS = ("imagenet", "per_face")


def preprocess(face_rgb: np.ndarray, normalisation: str = "imagenet") -> np.ndarray:
    """(H, W, 3) uint8 -> (1, 3, H, W) float32."""
    array = face_rgb.astype(np.float32) / 255.0
    if normalisation == "per_face":
        array = (array - array.mean()) / (array.std() + 1e-3)
    elif normalisation == "imagenet":
        array = (array - IMAGENET_MEAN) / IMAGENET_STD
    else:
        raise ValueError(f"unknown normalisation {normalisation!r}; expected one of {NORMALISATIONS}")
    return np.ascontiguousarray(array.transpose(2, 0, 1)[None], dtype=np.float32)


def _features_model(model):
    """The same network, returning (logits, layer4 features)."""
    import torch.nn as nn

    class WithFeatures(nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x):
            net = self.net
            x = net.maxpool(net.relu(net.bn1(net.conv1(x))))
            features = net.layer4(net.layer3(net.layer2(net.layer1(x))))
            logits = net.fc(net.avgpool(features).flatten(1))
            return logits, features

    return WithFeatures(model).eval()


def softmax_paralysis(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp[:, 1] / exp.sum(axis=1)


def class_activation_map(features: np.ndarray, fc_weight: np.ndarray, size: int, class_index: int = 1) -> np.ndarray:
    """Grad-CAM for a GAP + linear head: ReLU(sum_k w_k A_k), upsampled and scaled to 0..1."""
    import cv2

    cam = np.maximum(np.tensordot(fc_weight[class_index], features, axes=(0, 0)), 0).astype(np.float32)
    cam = cv2.resize(cam, (size, size), interpolation=cv2.INTER_LINEAR)
    peak = float(cam.max())
    return cam / peak if peak > 0 else cam


class _TorchRuntime:
    name = "torch"

    def __init__(self, module):
        import torch

        self._torch = torch
        self.module = module

    def __call__(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with self._torch.inference_mode():
            logits, features = self.module(self._torch.from_numpy(batch))
        return logits.numpy(), features.numpy()


class _OnnxRuntime:
    name = "onnxruntime"

    def __init__(self, module, size: int, cache: Path | None, threads: int | None = None):
        import onnxruntime as ort
        import torch

        model_bytes = cache.read_bytes() if cache and cache.exists() else None
        if model_bytes is None:
            import io

            buffer = io.BytesIO()
            torch.onnx.export(
                module,
                (torch.zeros(1, 3, size, size),),
                buffer,
                dynamo=False,
                input_names=["face"],
                output_names=["logits", "features"],
                dynamic_axes={"face": {0: "batch"}, "logits": {0: "batch"}, "features": {0: "batch"}},
            )
            model_bytes = buffer.getvalue()
            if cache:
                cache.write_bytes(model_bytes)
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])

    def __call__(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        logits, features = self.session.run(None, {"face": batch})
        return logits, features


class _OpenVinoRuntime:
    name = "openvino"

    def __init__(
        self, module, size: int, threads: int | None = None, *, bf16: bool = True, calibration: np.ndarray | None = None
    ):
        """``bf16``: in bfloat16 where the CPU has it (else fp32, as with bf16=False). ``calibration``
        (preprocessed aligned faces, N x 3 x S x S): int8 weights and activations instead, by NNCF's
        post-training quantisation calibrated on them; used only where it agrees with fp32."""
        import openvino as ov
        import torch

        converted = ov.convert_model(module, example_input=torch.zeros(1, 3, size, size))
        core = ov.Core()
        config = {"PERFORMANCE_HINT": "LATENCY", **({"INFERENCE_NUM_THREADS": threads} if threads else {})}
        if calibration is not None:
            converted = _quantised(converted, calibration)
            self.name = "openvino-int8"
        elif bf16 and "BF16" in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
            config["INFERENCE_PRECISION_HINT"] = "bf16"
            self.name = "openvino-bf16"
        else:
            config["INFERENCE_PRECISION_HINT"] = "f32"
            self.name = "openvino-fp32"
        self.compiled = core.compile_model(converted, "CPU", config)

    def __call__(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        result = self.compiled(batch)
        return result[0], result[1]


def _quantised(converted, calibration: np.ndarray):
    import nncf

    logging.getLogger("nncf").setLevel(logging.WARNING)
    samples = [np.ascontiguousarray(calibration[i : i + 1]) for i in range(len(calibration))]
    return nncf.quantize(
        converted,
        nncf.Dataset(samples),
        preset=nncf.QuantizationPreset.MIXED,
        subset_size=len(samples),
        fast_bias_correction=True,
    )


def build_runtime(
    name: str,
    module,
    size: int,
    cache_dir: Path | None = None,
    key: str = "",
    threads: int | None = None,
    calibration: np.ndarray | None = None,
):
    """``threads``: the runtime's thread pool (None: one per core; PyTorch's is set for the whole
    process, engine/threads.py). ``calibration``: preprocessed faces for the int8 runtime."""
    if name == "torch":
        return _TorchRuntime(module)
    if name == "onnxruntime":
        cache = (cache_dir / f"{key}-{size}.onnx") if cache_dir and key else None
        return _OnnxRuntime(module, size, cache, threads)
    if name == "openvino":
        return _OpenVinoRuntime(module, size, threads)
    if name == "openvino-fp32":
        return _OpenVinoRuntime(module, size, threads, bf16=False)
    if name == "openvino-int8":
        if calibration is None or not len(calibration):
            raise ValueError("the int8 runtime needs calibration faces")
        return _OpenVinoRuntime(module, size, threads, calibration=calibration)
    raise ValueError(f"unknown runtime {name!r}")


def agreement_inputs(size: int, count: int = 4, normalisation: str = "imagenet") -> np.ndarray:
    rng = np.random.default_rng(1234)
    faces = rng.integers(0, 256, size=(count, size, size, 3), dtype=np.uint8)
    return np.concatenate([preprocess(face, normalisation) for face in faces])


def _median_seconds(runtime, batch: np.ndarray, repeats: int = 5) -> float:
    import time

    runtime(batch)  # first call pays for lazy initialisation
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        runtime(batch)
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def read_checkpoint(path: Path) -> tuple[dict, object]:
    """The checkpoint's payload (the training checkpoint's dict; a plain torchvision ResNet-50
    state_dict is taken as {"state_dict": it}) and the ResNet-50 it fills, in eval mode. Whatever is
    wrong with the file raises CheckpointError with a message a person can act on, never Pillow's,
    pickle's or PyTorch's own exception."""
    import torch

    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path.name} is missing") from None
    except Exception as exc:  # noqa: BLE001 - unpickling, zip and tensor errors alike: not a checkpoint
        raise CheckpointError(
            f"{path.name} is not a PyTorch checkpoint that can be loaded safely ({exc.__class__.__name__})"
        ) from None
    if isinstance(payload, dict) and "state_dict" not in payload and "fc.weight" in payload:
        payload = {"state_dict": payload}  # a plain torchvision state_dict
    if not isinstance(payload, dict) or not isinstance(payload.get("state_dict"), dict):
        raise CheckpointError(f"{path.name} is not a classifier checkpoint (no state_dict)")
    if tuple(payload.get("classes", CLASSES)) != CLASSES:
        raise CheckpointError(f"{path.name} predicts {payload.get('classes')}, expected {CLASSES}")
    if str(payload.get("normalisation", "imagenet")) not in NORMALISATIONS:
        raise CheckpointError(
            f"{path.name} asks for normalisation {payload.get('normalisation')!r}; known: {NORMALISATIONS}"
        )
    model = build_resnet50()
    try:
        model.load_state_dict(payload["state_dict"])
    except (RuntimeError, TypeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[1:2] or [str(exc)[:120]]
        raise CheckpointError(f"{path.name} is not a ResNet-50 with a two-class head: {first[0].strip()}") from None
    model.eval()
    return payload, model


class ResNetClassifier:
    def __init__(
        self,
        checkpoint_path: str | Path,
        *,
        expected_sha256: str | None = None,
        runtime: str = "auto",
        cache_dir: Path | None = None,
        threads: int | None = None,
    ) -> None:
        path = Path(checkpoint_path)
        try:
            sha = file_sha256(path)
        except OSError as exc:
            raise CheckpointError(f"{path.name} cannot be read ({exc.strerror or exc})") from None
        if expected_sha256 and sha != expected_sha256:
            raise CheckpointError(f"{path.name}: sha256 does not match the registry; refusing to load it")
        payload, model = read_checkpoint(path)
        self.input_size = int(payload.get("input_size", 224))
        self.normalisation = str(payload.get("normalisation", "imagenet"))
        self.mirror_average = bool(payload.get("mirror_average", False))
        self.model = model
        self.fc_weight = model.fc.weight.detach().numpy().copy()
        self._module = _features_model(model)
        self.threads = threads
        if threads:
            import torch

            torch.set_num_threads(threads)  # PyTorch's pool is the whole process's
        self.reference = _TorchRuntime(self._module)
        self.runtime, self.agreement = self._choose_runtime(runtime, cache_dir, sha[:16])

    def _choose_runtime(self, requested: str, cache_dir: Path | None, key: str):
        """ "auto": of the runtimes whose probabilities agree with PyTorch, the fastest on this machine
        (timed here, once per process: which one wins depends on the CPU's instruction sets)."""
        candidates = RUNTIME_PREFERENCE if requested == "auto" else (requested,)
        check = agreement_inputs(self.input_size, normalisation=self.normalisation)
        expected = softmax_paralysis(self.reference(check)[0])
        agreeing = []
        for name in candidates:
            try:
                runtime = (
                    self.reference
                    if name == "torch"
                    else build_runtime(name, self._module, self.input_size, cache_dir, key, self.threads)
                )
                difference = float(np.abs(softmax_paralysis(runtime(check)[0]) - expected).max())
            except Exception as exc:  # noqa: BLE001 - a runtime that cannot load is skipped, and logged
                logger.warning("runtime %s unavailable: %s", name, exc)
                continue
            if difference > AGREEMENT_TOLERANCE:
                logger.warning("runtime %s disagrees with PyTorch by %.2g; not used", name, difference)
                continue
            agreeing.append(
                (_median_seconds(runtime, check[:1]) if len(candidates) > 1 else 0.0, name, runtime, difference)
            )
        if not agreeing:
            return self.reference, 0.0
        seconds, name, runtime, difference = min(agreeing, key=lambda entry: entry[0])
        logger.info("classifier runtime %s (%.1f ms, max |dP| vs PyTorch %.1e)", name, seconds * 1000, difference)
        return runtime, difference

    @property
    def runtime_name(self) -> str:
        return self.runtime.name

    def predict(self, face_rgb: np.ndarray, *, with_heatmap: bool = True) -> Prediction:
        batch = preprocess(face_rgb, self.normalisation)
        if self.mirror_average:
            batch = np.concatenate([batch, np.ascontiguousarray(batch[..., ::-1])])
        logits, features = self.runtime(batch)
        probability = float(softmax_paralysis(logits).mean())
        heatmap = None
        if with_heatmap:
            size = face_rgb.shape[0]
            heatmap = class_activation_map(features[0], self.fc_weight, size)
            if self.mirror_average:
                heatmap = (heatmap + class_activation_map(features[1], self.fc_weight, size)[:, ::-1]) / 2
        return Prediction(probability, heatmap)
