"""Fitting ResNet-50 on a prepared set: the one set of defaults, augmentation, the loop, prediction."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from inference.engine.classifier import CLASSES, IMAGENET_MEAN, IMAGENET_STD, build_resnet50
from inference.engine.evaluation import roc_auc
from inference.engine.training.data import PreparedSet
from inference.engine.training.synthetic import droop_batch, paired_batch


@dataclass(frozen=True)
class Recipe:
    """How a classifier is trained, unless told otherwise: the defaults of train(), of
    `manage.py train_classifier` and of `python -m inference.engine.training`."""

    epochs: int = 30
    batch_size: int = 32
    lr: float = 2e-3
    # 128 px keeps what the classifier needs of an aligned face and trains 3.7x faster on a CPU than 224.
    image_size: int = 128
    weight_decay: float = 0.05
    mixup: float = 0.0  # Beta(a, a) of mixup; 0: off
    erase: float = 0.0  # share of faces given a noise patch
    ema: float = 0.99  # decay of the weights' moving average per step (a horizon of ~2 epochs here); 0: off
    # Per-face standardisation: a brighter or darker photo of one face is the same input.
    normalisation: str = "per_face"
    pct_start: float = 0.2
    seed: int = 0
    # Share of the healthy training faces given a synthetic one-sided droop each epoch (synthetic.py),
    # as positives beside themselves undrooped; 0: off (needs the pack's landmarks).
    synthetic: float = 0.5
    # Real paralysis photos drawn per epoch, per healthy face: fewer of them than of the drooped faces,
    # so that their sources (patient close-ups against press photos) do not become the signal.
    real_positives: float = 0.25
    grey: float = 0.25  # share of faces turned to greyscale (clinical photos are often black and white)
    # Brightness and contrast are each scaled by a factor drawn from 1 ± this (then clipped, as a
    # brightened photo's highlights are).
    brightness: float = 0.3
    # Weight of the relighting consistency term: each step also scores ``relit`` faces of the batch
    # (every clinical photo first) brightened or darkened by 15-45% and clipped, as an over- or
    # under-exposed photo is, and the squared gap between each copy's logit and its original's is
    # added to the loss, so that a face's P(paralysis) does not move with the light; 0: off.
    consistency: float = 0.0
    relit: int = 8
    # With synthetic droops: each batch is half healthy faces, half the same faces drooped, augmented
    # alike, and no real paralysis photo (their sources were what an unpaired run learned instead).
    paired: bool = True
    # Which epoch's weights are kept: "last" (the end of the one-cycle schedule: no choice made on any
    # data) or "best" (the best validation ROC AUC). The validation split holds real paralysis photos,
    # whose sources the paired recipe does not train on: their ROC AUC peaked early while clinical photos
    # kept improving (docs/model-card.md), so the default takes the last.
    keep: str = "last"
    # Arithmetic of the forward and backward passes: "auto" is bf16 autocast on a GPU and fp32 on a
    # CPU; "bf16" autocasts on a CPU too (1.7x faster than fp32 on this project's AVX-512 CPU, torch
    # 2.14, channels_last: 1.9 s against 3.2 s a step of 32 faces at 128 px, one thread each, two runs
    # side by side); "fp32" everywhere.
    precision: str = "auto"
    # When the validation split is scored: "every" epoch, or only after the "last" (with keep="last"
    # nothing is chosen on it, so the weights are the same, and a CPU run spends about 15% less).
    validate: str = "every"


RECIPE = Recipe()


PRECISIONS = ("auto", "bf16", "fp32")  # Recipe.precision's values, the --precision of both training commands
PRECISION_HELP = "auto: bf16 autocast on a GPU, fp32 on a CPU; bf16 on this project's CPU trains 1.7x faster"


def uses_bf16(precision: str, device: str) -> bool:
    """Whether a run with this ``precision`` (Recipe.precision) autocasts to bf16 on ``device``."""
    return precision == "bf16" or (precision == "auto" and device.startswith("cuda"))


def arithmetic(precision: str, device: str) -> str:
    """What a run with this ``precision`` computes in on ``device``, as checkpoints record it: bf16 or fp32."""
    return "bf16" if uses_bf16(precision, device) else "fp32"


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


def _augment(
    x,
    *,
    erase: float = 0.0,
    normalisation: str = "imagenet",
    grey: float = 0.0,
    paired: bool = False,
    brightness: float = RECIPE.brightness,
    scaled: bool = True,
):
    """Random mirror, rotation, scale, shift, resolution loss and colour, on the batch's device. A
    mirrored face keeps its label; the resolution loss keeps the model from telling the data set's
    sources apart by sharpness. ``paired``: the batch is two halves of the same faces (undrooped, then
    drooped), and face i and face i + n/2 get the same changes, so the droop is all that differs."""
    import torch
    import torch.nn.functional as F

    n, device = x.shape[0], x.device
    x = x.permute(0, 3, 1, 2).float().div_(255)

    def rand(*shape):
        if paired:
            half = torch.rand(n // 2, *shape, device=device)
            return torch.cat([half, half])
        return torch.rand(n, *shape, device=device)

    def uniform(low, high, *shape):
        return rand(*shape) * (high - low) + low

    angle = uniform(-math.radians(10), math.radians(10))
    scale = uniform(0.9, 1.1)
    mirror = torch.where(rand() < 0.5, -1.0, 1.0)
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
    x = torch.where((rand() < 0.4).view(n, 1, 1, 1), low, x)

    x = x * uniform(1 - brightness, 1 + brightness, 1, 1, 1)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * uniform(1 - brightness, 1 + brightness, 1, 1, 1) + mean
    grey_level = (x * torch.tensor([0.299, 0.587, 0.114], device=device).view(1, 3, 1, 1)).sum(1, keepdim=True)
    saturation = uniform(0.5, 1.4, 1, 1, 1)
    if grey:
        saturation = torch.where((rand() < grey).view(n, 1, 1, 1), 0.0, saturation)
    x = grey_level + (x - grey_level) * saturation
    x = x.clamp_(0, 1)
    if erase:
        size = x.shape[-1]
        side = (uniform(0.12, 0.35) * size).long().view(n, 1, 1)
        top = (rand() * size).long().view(n, 1, 1) - side // 2
        left = (rand() * size).long().view(n, 1, 1) - side // 2
        rows = torch.arange(size, device=device).view(1, size, 1)
        cols = torch.arange(size, device=device).view(1, 1, size)
        patch = (rows >= top) & (rows < top + side) & (cols >= left) & (cols < left + side)
        patch &= (rand() < erase).view(n, 1, 1)
        x = torch.where(patch.unsqueeze(1), torch.rand_like(x), x)
    return _scaled(x, normalisation) if scaled else x


def _relit(x, count: int, *, first=()):
    """Indices of ``count`` faces of a float NCHW batch in 0..1 (``first`` before any drawn at random)
    and their copies, each brightened by 15-45% or darkened as much and clipped: the copies an
    over- or under-exposed photo of the same face would give."""
    import torch

    first = torch.as_tensor(list(first), dtype=torch.long, device=x.device)[:count]
    rest = torch.ones(len(x), dtype=torch.bool, device=x.device)
    rest[first] = False
    others = torch.nonzero(rest).flatten()
    index = torch.cat([first, others[torch.randperm(len(others), device=x.device)[: count - len(first)]]])
    step = torch.empty(len(index), 1, 1, 1, device=x.device).uniform_(0.15, 0.45)
    factor = torch.where(torch.rand(len(index), 1, 1, 1, device=x.device) < 0.5, 1 + step, 1 - step)
    return index, (x[index] * factor).clamp_(0, 1)


def _relighting_gap(outputs, originals):
    """Mean squared gap between the paralysis logit margins of the batch's last ``len(originals)``
    rows (relit copies) and of the rows they copy."""
    margin = (outputs[:, 1] - outputs[:, 0]).float()
    return (margin[-len(originals) :] - margin[originals]).pow(2).mean()


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
    synthetic: float = RECIPE.synthetic,
    real_positives: float = RECIPE.real_positives,
    grey: float = RECIPE.grey,
    brightness: float = RECIPE.brightness,
    paired: bool = RECIPE.paired,
    keep: str = RECIPE.keep,
    clinical: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    clinical_per_step: int = 2,
    consistency: float = RECIPE.consistency,
    relit: int = RECIPE.relit,
    precision: str = RECIPE.precision,
    validate: str = RECIPE.validate,
    state_dir: Path | None = None,
    on_epoch=None,
    progress=lambda it, **kw: it,
    log=print,
):
    """Train ResNet-50 on the train split (augmented on the device; bf16 on a GPU); keep the last
    epoch's weights, or with ``keep="best"`` those of the epoch with the best validation ROC AUC (ties:
    lower validation loss).

    Against memorising a small set of faces: ``mixup`` (Beta(a, a) blends of two faces and their
    labels, on half the batches), ``erase`` (that share of faces gets a random patch of noise) and
    ``ema`` (validate and keep an exponential moving average of the weights with this decay).

    Against learning the data set's sources instead of the face: with ``synthetic`` > 0 each epoch
    shows every healthy training face, that share of them with a one-sided droop drawn at its
    landmarks (labelled paralysis, synthetic.py), and ``real_positives`` real paralysis photos per
    healthy face; the validation split gets the same treatment once, with a fixed seed.

    ``clinical``: real photos of the kind the portal will see (faces, labels, landmarks: palda-dev's
    training people) learnt from beside the pairs: each step adds ``clinical_per_step`` healthy and as
    many palsy ones, drawn at random, so the two classes weigh alike whatever their counts.

    ``consistency``: each step adds ``relit`` brightened or darkened copies of the batch's faces
    (the clinical photos first), labelled as their originals, and this weight times the mean squared
    gap between a copy's logit and its original's (both ways) to the loss (not with mixup).

    ``precision``: "auto" (bf16 autocast on a GPU, fp32 on a CPU), "bf16" or "fp32"; ``validate``:
    score the validation split after "every" epoch or only the "last" (needs ``keep="last"``).

    ``state_dir``: the whole state (weights, optimiser, schedule, averages, history) is written there
    after every epoch, and a run started again with the same arguments resumes from it.
    ``on_epoch(epoch, model)`` is called with the kept (averaged) weights after each epoch."""
    import time

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
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
    if validate not in ("every", "last"):
        raise ValueError(f"validate must be 'every' or 'last', not {validate!r}")
    if validate == "last" and keep != "last":
        raise ValueError("keep='best' chooses an epoch on the validation split: it needs validate='every'")
    bf16 = uses_bf16(precision, device)
    model.to(device, memory_format=torch.channels_last)
    chosen = np.array([s == "train" for s in (splits or prepared.splits)])
    train_x, train_y = prepared.faces[chosen], prepared.labels[chosen]
    val_x, val_y, _ = prepared.subset("val", splits)
    if synthetic:
        if prepared.landmarks is None:
            raise ValueError("synthetic droops need the faces' landmarks: prepare the pack again")
        train_points = prepared.landmarks[chosen]
        val_mask = np.array([s == "val" for s in (splits or prepared.splits)])
        val_x, val_y = _synthetic_validation(
            prepared.faces[val_mask], prepared.labels[val_mask], prepared.landmarks[val_mask], synthetic, seed
        )
    healthy = np.flatnonzero(train_y == 0)
    sick = np.flatnonzero(train_y == 1)
    if clinical is not None:
        clinical_faces, clinical_labels, clinical_points = clinical
        clinical_classes = [np.flatnonzero(clinical_labels == c) for c in (0, 1)]
        if min(len(c) for c in clinical_classes) == 0:
            raise ValueError("the clinical photos need both healthy and palsy ones")
    paired = bool(synthetic and paired)
    if consistency and mixup:
        raise ValueError("the relighting consistency term and mixup do not go together")
    # Per epoch: real paralysis photos drawn, faces shown, and the expected count of each class.
    if paired:
        per_epoch_real, epoch_faces = 0, 2 * len(healthy)
        counts = np.array([1.0, 1.0], dtype=np.float32)
    elif synthetic:
        per_epoch_real = min(len(sick), round(real_positives * len(healthy)))
        epoch_faces = len(healthy) + per_epoch_real
        drooped = synthetic * len(healthy)
        counts = np.array([len(healthy) - drooped, drooped + per_epoch_real], dtype=np.float32)
    else:
        per_epoch_real, epoch_faces = len(sick), len(train_x)
        counts = np.bincount(train_y, minlength=len(CLASSES)).astype(np.float32)
    weights = torch.tensor(counts.sum() / np.maximum(counts, 1) / len(CLASSES), device=device)
    criterion = torch.nn.CrossEntropyLoss(weight=weights, label_smoothing=0.1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    averaged = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(ema), use_buffers=True) if ema else None
    kept = averaged.module if averaged is not None else model
    per_epoch = max(1, epoch_faces // batch_size)  # the remainder waits for another epoch's shuffle
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=lr, total_steps=epochs * per_epoch, pct_start=pct_start
    )
    best_key, best_state, best_epoch, history, first_epoch = None, None, 0, [], 1
    state_file = Path(state_dir) / "last.pt" if state_dir else None
    run_key = repr(
        (
            len(train_x),
            epochs,
            batch_size,
            lr,
            seed,
            weight_decay,
            mixup,
            erase,
            ema,
            normalisation,
            synthetic,
            real_positives,
            grey,
            pct_start,
            paired,
            brightness,
            0 if clinical is None else len(clinical[1]),
            clinical_per_step,
            *((consistency, relit) if consistency else ()),
            *((precision,) if precision != "auto" else ()),
        )
    )
    if state_file is not None and state_file.exists():
        saved = torch.load(state_file, map_location="cpu", weights_only=False)
        if saved.get("run_key") == run_key:
            model.load_state_dict(saved["model"])
            optimizer.load_state_dict(saved["optimizer"])
            scheduler.load_state_dict(saved["scheduler"])
            if averaged is not None:
                averaged.load_state_dict(saved["averaged"])
            best_key, best_state, best_epoch = saved["best_key"], saved["best_state"], saved["best_epoch"]
            history, first_epoch = saved["history"], saved["epoch"] + 1
            torch.set_rng_state(saved["torch_rng"])
            log(f"resuming after epoch {saved['epoch']} from {state_file}")
        else:
            log(f"{state_file} is of another run: starting afresh")
    started, faces_seen = time.monotonic(), 0
    for epoch in range(first_epoch, epochs + 1):
        model.train()
        losses = []
        rng = np.random.default_rng([seed, epoch])
        if paired:
            order = healthy
        elif synthetic:
            order = np.concatenate([healthy, rng.choice(sick, per_epoch_real, replace=False)])
        else:
            order = np.arange(len(train_x))
        order = rng.permutation(order)
        bar = progress(range(per_epoch), total=per_epoch, desc=f"epoch {epoch}/{epochs}")
        # A paired batch is batch_size / 2 faces, each shown twice; batch norm needs two faces in all.
        take, least = (max(1, batch_size // 2), 1) if paired else (batch_size, 2)
        for step in bar:
            index = order[step * take : (step + 1) * take]
            if len(index) < least:
                index = order[:least]
            if paired:
                batch_np, batch_y = paired_batch(train_x[index], train_points[index], rng)
            elif synthetic:
                batch_np, batch_y = droop_batch(train_x[index], train_y[index], train_points[index], synthetic, rng)
            else:
                batch_np, batch_y = train_x[index], train_y[index].astype(np.int64)
            batch, targets = torch.from_numpy(batch_np).to(device), torch.from_numpy(batch_y).to(device)
            inputs = _augment(
                batch,
                erase=erase,
                normalisation=normalisation,
                grey=grey,
                paired=paired,
                brightness=brightness,
                scaled=False,
            )
            if clinical is not None:
                chosen_real = np.concatenate([rng.choice(c, clinical_per_step) for c in clinical_classes])
                real_np, real_y = droop_batch(
                    clinical_faces[chosen_real],
                    clinical_labels[chosen_real],
                    clinical_points[chosen_real],
                    0.0,  # no droop drawn: the same symmetric resampling as every other face
                    rng,
                )
                real = _augment(
                    torch.from_numpy(real_np).to(device),
                    erase=erase,
                    normalisation=normalisation,
                    grey=grey,
                    brightness=brightness,
                    scaled=False,
                )
                inputs = torch.cat([real, inputs])  # the clinical photos first: they are relit first
                targets = torch.cat([torch.from_numpy(real_y).to(device), targets])
            originals = None
            if consistency:
                first = range(len(real_y)) if clinical is not None else ()
                originals, copies = _relit(inputs, min(relit, len(inputs)), first=first)
                inputs = torch.cat([inputs, copies])
                targets = torch.cat([targets, targets[originals]])
            inputs = _scaled(inputs, normalisation)
            share, partner = 1.0, None
            if mixup and torch.rand(()) < 0.5:
                share = float(torch.distributions.Beta(mixup, mixup).sample())
                partner = torch.randperm(len(inputs), device=device)
                inputs = share * inputs + (1 - share) * inputs[partner]
            inputs = inputs.contiguous(memory_format=torch.channels_last)
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast("cuda" if cuda else "cpu", dtype=torch.bfloat16, enabled=bf16):
                outputs = model(inputs)
                loss = criterion(outputs, targets)
                if partner is not None:
                    loss = share * loss + (1 - share) * criterion(outputs, targets[partner])
                if originals is not None:
                    loss = loss + consistency * _relighting_gap(outputs, originals)
            loss.backward()
            optimizer.step()
            scheduler.step()
            if averaged is not None:
                averaged.update_parameters(model)
            losses.append(loss.detach())
            faces_seen += len(targets)
            if hasattr(bar, "set_postfix"):
                rate = faces_seen / max(time.monotonic() - started, 1e-6)
                left = ((epochs - epoch + 1) * per_epoch - step - 1) * batch_size / rate
                bar.set_postfix(loss=f"{float(loss.detach()):.3f}", faces_s=f"{rate:.1f}", left=f"{left / 60:.0f} min")
        train_loss = float(torch.stack(losses).mean())
        val_auc = val_loss = float("nan")
        if len(val_x) and (validate == "every" or epoch == epochs):
            val_prob = predict(kept, val_x, batch_size=max(batch_size, 64), device=device, normalisation=normalisation)
            val_auc, val_loss = roc_auc(val_y, val_prob), _log_loss(val_y, val_prob)
        history.append({"epoch": epoch, "loss": train_loss, "val_auc": val_auc, "val_loss": val_loss})
        log(
            f"epoch {epoch}: loss {train_loss:.4f}, validation ROC AUC {val_auc:.4f}, log loss {val_loss:.4f}, "
            f"{time.monotonic() - started:.0f} s"
        )
        key = (-1.0 if math.isnan(val_auc) else val_auc, -val_loss if not math.isnan(val_loss) else 0.0)
        if best_key is None or key > best_key:
            best_key, best_epoch = key, epoch
            best_state = {k: v.detach().to("cpu", copy=True) for k, v in kept.state_dict().items()}
        if on_epoch is not None:
            on_epoch(epoch, kept)
        if state_file is not None:
            state_file.parent.mkdir(parents=True, exist_ok=True)
            torch.save(
                {
                    "run_key": run_key,
                    "epoch": epoch,
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "averaged": averaged.state_dict() if averaged is not None else None,
                    "best_key": best_key,
                    "best_state": best_state,
                    "best_epoch": best_epoch,
                    "history": history,
                    "torch_rng": torch.get_rng_state(),
                },
                state_file.with_suffix(".tmp"),
            )
            state_file.with_suffix(".tmp").replace(state_file)
    if keep == "last":
        best_state, best_epoch = {k: v.detach().to("cpu", copy=True) for k, v in kept.state_dict().items()}, epochs
    elif keep != "best":
        raise ValueError(f"keep must be 'last' or 'best', not {keep!r}")
    model.load_state_dict(best_state)
    model.to("cpu", memory_format=torch.contiguous_format).eval()
    history.append({"best_epoch": best_epoch, "kept": keep})
    return model, history


def _synthetic_validation(faces, labels, points, share, seed):
    """The validation split as training sees it: real photos, and droops drawn on ``share`` of the
    healthy ones (fixed seed, so every epoch is judged on the same faces)."""
    rng = np.random.default_rng([seed, 10**6])
    return droop_batch(faces, labels, points, share, rng)


def _log_loss(labels: np.ndarray, prob: np.ndarray) -> float:
    if len(labels) == 0:
        return float("nan")
    p = np.clip(prob, 1e-6, 1 - 1e-6)
    return float(-np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p)))


def predict(
    model,
    faces: np.ndarray,
    *,
    batch_size: int = 32,
    device: str = "cpu",
    normalisation: str = "imagenet",
    mirror: bool = True,
) -> np.ndarray:
    """P(paralysis) per face, in float32 with the serving preprocessing; with ``mirror``, the mean of
    the face's and its mirror image's (as serving does: a face and its mirror score the same)."""
    import torch

    was_training = model.training
    model.eval()
    out = []
    with torch.inference_mode():
        for start in range(0, len(faces), batch_size):
            batch = _normalise(torch.from_numpy(faces[start : start + batch_size]).to(device), normalisation)
            p = torch.softmax(model(batch).float(), dim=1)[:, 1]
            if mirror:
                p = (p + torch.softmax(model(batch.flip(3)).float(), dim=1)[:, 1]) / 2
            out.append(p.cpu().numpy())
    model.train(was_training)
    return np.concatenate(out) if out else np.array([])


def checkpoint_payload(
    model, *, input_size: int, training: dict, normalisation: str = "imagenet", mirror_average: bool = True
) -> dict:
    """``mirror_average``: serving averages the face's and its mirror image's P(paralysis)."""
    return {
        "state_dict": model.state_dict(),
        "classes": list(CLASSES),
        "input_size": input_size,
        "architecture": "resnet50",
        "normalisation": normalisation,
        "mirror_average": mirror_average,
        "training": training,
    }
