"""Fitting ResNet-50 on a prepared set: the one set of defaults, augmentation, the loop, prediction."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from inference.engine.classifier import CLASSES, IMAGENET_MEAN, IMAGENET_STD, build_resnet50
from inference.engine.evaluation import roc_auc
from inference.engine.training.data import PreparedSet


@dataclass(frozen=True)
class Recipe:
    """How a classifier is trained, unless told otherwise: the defaults of train(), of
    `manage.py train_classifier` and of `python -m inference.engine.training`."""

    epochs: int = 60
    batch_size: int = 64
    lr: float = 2e-3
    image_size: int = 224
    weight_decay: float = 0.05
    mixup: float = 0.0  # Beta(a, a) of mixup; 0: off
    erase: float = 0.0  # share of faces given a noise patch
    ema: float = 0.0  # decay of the weights' moving average; 0: off
    normalisation: str = "imagenet"
    pct_start: float = 0.2
    seed: int = 0


RECIPE = Recipe()


def _normalise(x, normalisation: str = "imagenet"):
    """uint8 NHWC tensor -> float NCHW, scaled as serving does (classifier.preprocess, in torch)."""
    return _scaled(x.permute(0, 3, 1, 2).float().div_(255), normalisation)


def _scaled(x, normalisation: str):
    """Float NCHW in 0..1 -> the network's input (see classifier.NORMALISATIONS)."""
    import torch

    if normalisation == "per_face":
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        return (x - mean) / (x.std(dim=(1, 2, 3), keepdim=True, correction=0) + 1e-3)
    if normalisation != "imagenet":
        raise ValueError(f"unknown normalisation {normalisation!r}")
    mean = torch.as_tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.as_tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


def _augment(x, *, erase: float = 0.0, normalisation: str = "imagenet"):
    """Random mirror, rotation, scale, shift, resolution loss and colour, on the batch's device. A
    mirrored face keeps its label; the resolution loss keeps the model from telling the data set's
    sources apart by sharpness."""
    import torch
    import torch.nn.functional as F

    n, device = x.shape[0], x.device
    x = x.permute(0, 3, 1, 2).float().div_(255)

    def uniform(low, high, *shape):
        return torch.rand(n, *shape, device=device) * (high - low) + low

    angle = uniform(-math.radians(10), math.radians(10))
    scale = uniform(0.9, 1.1)
    mirror = torch.where(torch.rand(n, device=device) < 0.5, -1.0, 1.0)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    shift_x, shift_y = uniform(-0.06, 0.06), uniform(-0.06, 0.06)
    theta = torch.stack(
        [torch.stack([cos * mirror, -sin, shift_x], 1), torch.stack([sin * mirror, cos, shift_y], 1)], 1
    )
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)

    factor = float(torch.empty(()).uniform_(0.25, 0.75))
    low = F.interpolate(x, scale_factor=factor, mode="bilinear", antialias=True, align_corners=False)
    low = F.interpolate(low, size=x.shape[-2:], mode="bilinear", align_corners=False)
    x = torch.where((torch.rand(n, device=device) < 0.4).view(n, 1, 1, 1), low, x)

    x = x * uniform(0.7, 1.3, 1, 1, 1)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * uniform(0.7, 1.3, 1, 1, 1) + mean
    grey = (x * torch.tensor([0.299, 0.587, 0.114], device=device).view(1, 3, 1, 1)).sum(1, keepdim=True)
    x = grey + (x - grey) * uniform(0.5, 1.4, 1, 1, 1)
    x = x.clamp_(0, 1)
    if erase:
        size = x.shape[-1]
        side = (uniform(0.12, 0.35) * size).long().view(n, 1, 1)
        top = (torch.rand(n, device=device) * size).long().view(n, 1, 1) - side // 2
        left = (torch.rand(n, device=device) * size).long().view(n, 1, 1) - side // 2
        rows = torch.arange(size, device=device).view(1, size, 1)
        cols = torch.arange(size, device=device).view(1, 1, size)
        patch = (rows >= top) & (rows < top + side) & (cols >= left) & (cols < left + side)
        patch &= (torch.rand(n, device=device) < erase).view(n, 1, 1)
        x = torch.where(patch.unsqueeze(1), torch.rand_like(x), x)
    return _scaled(x, normalisation)


def load_initial_weights(model, path: Path) -> None:
    """ImageNet weights from torchvision's .pth (or a .safetensors with the same layer names); the
    classification layer is left new."""
    import torch

    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or [k for k in missing if not k.startswith("fc.")]:
        raise ValueError(f"{path.name} is not a ResNet-50 state dict")


def train(
    prepared: PreparedSet,
    *,
    device: str,
    initial_weights: Path | None,
    epochs: int = RECIPE.epochs,
    batch_size: int = RECIPE.batch_size,
    lr: float = RECIPE.lr,
    seed: int = RECIPE.seed,
    splits: list[str] | None = None,
    weight_decay: float = RECIPE.weight_decay,
    mixup: float = RECIPE.mixup,
    erase: float = RECIPE.erase,
    ema: float = RECIPE.ema,
    normalisation: str = RECIPE.normalisation,
    start_from: dict | None = None,
    pct_start: float = RECIPE.pct_start,
    progress=lambda it, **kw: it,
    log=print,
):
    """Train ResNet-50 on the train split (augmented on the device; bf16 on a GPU); keep the weights
    of the epoch with the best validation ROC AUC (ties: lower validation loss).

    Against memorising a small set of faces: ``mixup`` (Beta(a, a) blends of two faces and their
    labels, on half the batches), ``erase`` (that share of faces gets a random patch of noise) and
    ``ema`` (validate and keep an exponential moving average of the weights with this decay)."""
    import torch
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    torch.manual_seed(seed)
    model = build_resnet50()
    if start_from is not None:
        model.load_state_dict(start_from)
        log("initial weights: a trained classifier (fine-tuning)")
    elif initial_weights is not None:
        load_initial_weights(model, initial_weights)
        log(f"initial weights: ImageNet ({initial_weights.name})")
    else:
        log("initial weights: none found, training from scratch (expect weaker results than from ImageNet)")
    cuda = device.startswith("cuda")
    model.to(device, memory_format=torch.channels_last)
    train_x, train_y, _ = prepared.subset("train", splits)
    val_x, val_y, _ = prepared.subset("val", splits)
    faces = torch.from_numpy(train_x).to(device)
    targets_all = torch.from_numpy(train_y).long().to(device)
    counts = np.bincount(train_y, minlength=len(CLASSES)).astype(np.float32)
    weights = torch.tensor(counts.sum() / np.maximum(counts, 1) / len(CLASSES), device=device)
    criterion = torch.nn.CrossEntropyLoss(weight=weights, label_smoothing=0.1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    averaged = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(ema), use_buffers=True) if ema else None
    kept = averaged.module if averaged is not None else model
    per_epoch = max(1, len(train_x) // batch_size)  # the remainder waits for another epoch's shuffle
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=lr, total_steps=epochs * per_epoch, pct_start=pct_start
    )
    best_key, best_state, best_epoch, history = None, None, 0, []
    for epoch in range(1, epochs + 1):
        model.train()
        losses = []
        order = torch.randperm(len(train_x), device=device)
        for step in progress(range(per_epoch), total=per_epoch, desc=f"epoch {epoch}/{epochs}"):
            index = order[step * batch_size : (step + 1) * batch_size]
            if len(index) < 2:  # batch norm needs two
                index = order[:2]
            inputs, targets = _augment(faces[index], erase=erase, normalisation=normalisation), targets_all[index]
            share, partner = 1.0, None
            if mixup and torch.rand(()) < 0.5:
                share = float(torch.distributions.Beta(mixup, mixup).sample())
                partner = torch.randperm(len(index), device=device)
                inputs = share * inputs + (1 - share) * inputs[partner]
            inputs = inputs.contiguous(memory_format=torch.channels_last)
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
                outputs = model(inputs)
                loss = criterion(outputs, targets)
                if partner is not None:
                    loss = share * loss + (1 - share) * criterion(outputs, targets[partner])
            loss.backward()
            optimizer.step()
            scheduler.step()
            if averaged is not None:
                averaged.update_parameters(model)
            losses.append(loss.detach())
        train_loss = float(torch.stack(losses).mean())
        val_prob = (
            predict(kept, val_x, batch_size=max(batch_size, 64), device=device, normalisation=normalisation)
            if len(val_x)
            else np.array([])
        )
        val_auc = roc_auc(val_y, val_prob)
        val_loss = _log_loss(val_y, val_prob)
        history.append({"epoch": epoch, "loss": train_loss, "val_auc": val_auc, "val_loss": val_loss})
        log(f"epoch {epoch}: loss {train_loss:.4f}, validation ROC AUC {val_auc:.4f}, log loss {val_loss:.4f}")
        key = (-1.0 if math.isnan(val_auc) else val_auc, -val_loss if not math.isnan(val_loss) else 0.0)
        if best_key is None or key > best_key:
            best_key, best_epoch = key, epoch
            best_state = {k: v.detach().to("cpu", copy=True) for k, v in kept.state_dict().items()}
    model.load_state_dict(best_state)
    model.to("cpu", memory_format=torch.contiguous_format).eval()
    history.append({"best_epoch": best_epoch})
    return model, history


def _log_loss(labels: np.ndarray, prob: np.ndarray) -> float:
    if len(labels) == 0:
        return float("nan")
    p = np.clip(prob, 1e-6, 1 - 1e-6)
    return float(-np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p)))


def predict(
    model, faces: np.ndarray, *, batch_size: int = 32, device: str = "cpu", normalisation: str = "imagenet"
) -> np.ndarray:
    """P(paralysis) per face, in float32 with the serving preprocessing."""
    import torch

    model.eval()
    out = []
    with torch.inference_mode():
        for start in range(0, len(faces), batch_size):
            batch = _normalise(torch.from_numpy(faces[start : start + batch_size]).to(device), normalisation)
            out.append(torch.softmax(model(batch).float(), dim=1)[:, 1].cpu().numpy())
    return np.concatenate(out) if out else np.array([])


def checkpoint_payload(model, *, input_size: int, training: dict, normalisation: str = "imagenet") -> dict:
    return {
        "state_dict": model.state_dict(),
        "classes": list(CLASSES),
        "input_size": input_size,
        "architecture": "resnet50",
        "normalisation": normalisation,
        "training": training,
    }
