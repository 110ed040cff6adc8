"""The classifier's runtimes side by side (fp32, bf16, int8) with their agreement on real faces, each
pipeline stage, and the worker's CPU per phone-sized photo with the classifier on and off.

    .venv/bin/python bench/inference.py [--checkpoint models/....pt] [--images DIR] [--calibration DIR]
        [--count 60] [--threads 1] [--busy-core]

Runtimes: PyTorch eager fp32 (the reference), ONNX Runtime fp32, OpenVINO fp32, OpenVINO bf16 (where
the CPU has it) and OpenVINO int8 (NNCF post-training quantisation calibrated on aligned faces from
--calibration, other people than --images). Each scores the aligned faces of --images (the face and its
mirror image, as serving does) and is compared with PyTorch fp32: the largest difference in
P(paralysis) and the share of labels (at 0.5) that agree. A runtime "agrees" within 0.01 in P.

Then the worker's own work per phone photo (12 megapixels, JPEG): decode, clean, mesh, measure,
align, classify, overlay and heatmap, as process CPU time, with the classifier on (the served runtime)
and off (the asymmetry rule alone), on the same photos, taking turns; the classifier's share is its own
work's CPU time (alignment, network, heatmap) counted where the pipeline calls it, against the photo's
without it. --threads is the runtime's thread
pool (1: a worker node of two CPUs running two processes, compose's default). A benchmark: it prints
figures, it never fails. Without the data sets the faces are synthetic (the test suite's astronaut).
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "datasets"


def photos_in(folder: Path, count: int) -> list[Path]:
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    step = max(1, len(files) // count)
    return files[::step][:count]


def line(name: str, ms: list[float], extra: str = "") -> str:
    median = statistics.median(ms)
    p95 = sorted(ms)[int(0.95 * (len(ms) - 1))]
    return f"  {name:<26} median {median:7.1f} ms   p95 {p95:7.1f} ms{extra}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path)
    parser.add_argument("--images", type=Path, default=SHARED / "palda-dev")
    parser.add_argument("--calibration", type=Path, default=SHARED / "stroke-faces")
    parser.add_argument("--count", type=int, default=60)
    parser.add_argument("--calibration-count", type=int, default=150)
    parser.add_argument("--phone-photos", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--busy-core",
        action="store_true",
        help="keep another core busy through the whole run, as a worker node's second process under load does",
    )
    args = parser.parse_args()

    import torch
    from PIL import Image, ImageOps

    if args.busy_core:  # a spinning process, ended with this one (killed at exit, or its stdin closes)
        import atexit
        import subprocess

        spin = "import os, sys, threading\nthreading.Thread(target=lambda: (sys.stdin.read(), os._exit(0))).start()"
        busy = subprocess.Popen([sys.executable, "-c", spin + "\nwhile True: pass"], stdin=subprocess.PIPE)
        atexit.register(busy.kill)

    from inference.engine.align import aligned_face
    from inference.engine.classifier import (
        AGREEMENT_TOLERANCE,
        ResNetClassifier,
        build_runtime,
        preprocess,
        softmax_paralysis,
    )
    from inference.engine.face import FaceMeshDetector
    from inference.engine.imaging import decode_upload
    from inference.engine.pipeline import Pipeline
    from inference.engine.threads import limit_opencv_threads
    from inference.shipped import SHIPPED_MODEL

    checkpoint = args.checkpoint or SHIPPED_MODEL.path
    torch.set_num_threads(args.threads)
    limit_opencv_threads(args.threads)
    reference = ResNetClassifier(checkpoint, runtime="torch", threads=args.threads)
    size, norm = reference.input_size, reference.normalisation
    detector = FaceMeshDetector()

    def load(folder: Path, count: int) -> tuple[list[Image.Image], str]:
        if folder.is_dir():
            images = [ImageOps.exif_transpose(Image.open(p)).convert("RGB") for p in photos_in(folder, count)]
            return images, f"{len(images)} photos from {folder}"
        from tests.faces import drooped_astronaut

        images = [Image.fromarray(drooped_astronaut(pixels=4 + i % 10)) for i in range(count)]
        return images, f"{len(images)} synthetic faces (no folder at {folder})"

    def faces_of(images: list[Image.Image]) -> list[np.ndarray]:
        faces = []
        for image in images:
            rgb = np.asarray(image)
            search = detector.find(rgb)
            if len(search.faces) == 1:
                faces.append(aligned_face(rgb, search.faces[0], size=size))
        return faces

    photos, source = load(args.images, args.count)
    calibration_photos, calibration_source = load(args.calibration, args.calibration_count)
    faces = faces_of(photos)
    calibration = np.concatenate([preprocess(face, norm) for face in faces_of(calibration_photos)])
    print(
        f"{checkpoint.name}: ResNet-50 at {size} px, {norm} normalisation, mirror-averaged "
        f"{reference.mirror_average}; {args.threads} thread(s)"
    )
    print(f"scored: {source}, {len(faces)} faces; int8 calibrated on {calibration_source}, {len(calibration)} faces")

    def batch_of(face: np.ndarray) -> np.ndarray:
        one = preprocess(face, norm)
        return np.concatenate([one, one[..., ::-1]]) if reference.mirror_average else one

    batches = [np.ascontiguousarray(batch_of(face)) for face in faces]

    def probabilities(runtime) -> np.ndarray:
        return np.array([softmax_paralysis(runtime(b)[0]).mean() for b in batches])

    module = reference._module
    runtimes = {"PyTorch eager fp32": reference.reference}
    for label, name in (
        ("ONNX Runtime fp32", "onnxruntime"),
        ("OpenVINO fp32", "openvino-fp32"),
        ("OpenVINO bf16", "openvino"),
        ("OpenVINO int8 (NNCF)", "openvino-int8"),
    ):
        try:
            runtime = build_runtime(name, module, size, threads=args.threads, calibration=calibration)
        except Exception as exc:  # noqa: BLE001 - report and go on
            print(f"  {label}: unavailable ({exc.__class__.__name__}: {exc})")
            continue
        if name == "openvino" and not runtime.name.endswith("bf16"):
            print("  OpenVINO bf16: this CPU has no bf16")
            continue
        runtimes[label] = runtime

    expected = probabilities(reference.reference)
    print("\nClassifier runtimes, one face (+ its mirror) at a time, logits and layer4 features for Grad-CAM:")
    medians, agreeing = {}, []
    for label, runtime in runtimes.items():
        runtime(batches[0])
        ms = []
        for b in batches:
            started = time.perf_counter()
            runtime(b)
            ms.append((time.perf_counter() - started) * 1000)
        p = probabilities(runtime)
        difference = float(np.abs(p - expected).max())
        same = float(np.mean((p >= 0.5) == (expected >= 0.5)))
        medians[label] = statistics.median(ms)
        ok = difference <= AGREEMENT_TOLERANCE
        if ok:
            agreeing.append(label)
        ratio = medians["PyTorch eager fp32"] / medians[label]
        print(
            line(
                label,
                ms,
                f"   {ratio:4.2f}x eager   max |dP| {difference:.4f}, same label {same:.1%}: "
                + ("agrees" if ok else f"DISAGREES (> {AGREEMENT_TOLERANCE})"),
            )
        )
    fastest = min(agreeing, key=medians.get)
    print(f"  fastest that agrees within {AGREEMENT_TOLERANCE}: {fastest}")

    served = ResNetClassifier(checkpoint, runtime="auto", threads=args.threads)
    print(f"  served by 'auto' here: {served.runtime_name} (agreement on its check inputs {served.agreement:.1e})")

    # Phones send 12-megapixel photos: the same faces at 3024 x 4032, JPEG quality 90, as the worker
    # receives them. Process CPU time of the worker's steps, classifier on and off, taking turns.
    phones = []
    for photo in photos[: args.phone_photos]:
        large = photo.resize((3024, 4032), Image.Resampling.BICUBIC)
        buffer = io.BytesIO()
        large.save(buffer, format="JPEG", quality=90)
        phones.append(buffer.getvalue())
    # The classifier's own work in the worker (the face aligned for it, the network with Grad-CAM,
    # the heatmap's JPEG), in process CPU time, counted where the pipeline calls it: the direct figure.
    # The photo's whole CPU time with and without the classifier is printed too, but it is not the
    # measure: the mesh's part of it moves between runs far more than the classifier costs (without the
    # classifier, 154 ms per photo in one run with the other core busy, 297 ms in the next with it idle;
    # MediaPipe's thread pool is multi-threaded), which made the difference of the medians +15.5% once
    # and -18.7% the next time.
    import inference.engine.pipeline as pipeline_module

    own_cpu = [0.0]

    def counted(function):
        def call(*args, **kwargs):
            started = time.process_time()
            try:
                return function(*args, **kwargs)
            finally:
                own_cpu[0] += time.process_time() - started

        return call

    pipeline_module.aligned_face = counted(pipeline_module.aligned_face)
    pipeline_module._heatmap_jpeg = counted(pipeline_module._heatmap_jpeg)
    served.predict = counted(served.predict)
    on = Pipeline(detector=detector, classifier=served, classifier_name="bench")
    off = Pipeline(detector=detector)

    def cpu_ms(pipeline: Pipeline, raw: bytes) -> tuple[float, object]:
        started = time.process_time()
        clean = decode_upload(raw, max_bytes=10**9, max_pixels=10**9)
        analysis = pipeline.analyze_bytes(clean.data)
        return (time.process_time() - started) * 1000, analysis

    cpu_ms(on, phones[0]), cpu_ms(off, phones[0])
    with_classifier, without, own, stages = [], [], [], {}
    for raw in phones:
        own_cpu[0] = 0.0
        ms_on, analysis = cpu_ms(on, raw)
        classifier_ms = own_cpu[0] * 1000
        ms_off, _ = cpu_ms(off, raw)
        if analysis.status != "done":
            continue
        with_classifier.append(ms_on)
        without.append(ms_off)
        own.append(classifier_ms)
        for stage, ms in analysis.timings_ms.items():
            stages.setdefault(stage, []).append(ms)
    print(f"\nWorker, per phone photo (3024 x 4032 JPEG, {len(with_classifier)} analysed), process CPU time:")
    print(line("classifier off", without))
    print(line(f"classifier on ({served.runtime_name})", with_classifier))
    print(line("the classifier's own work", own, " (alignment, network with Grad-CAM, heatmap JPEG)"))
    direct = statistics.median(own) / statistics.median(without)
    print(f"  the classifier adds {direct:+.1%} to the worker's CPU per photo (its own work against the photo's)")
    added = statistics.median(with_classifier) / statistics.median(without) - 1
    print(f"  (median with it against median without it: {added:+.1%}, MediaPipe's thread pool's noise included)")
    print("  stages with the classifier on (wall time):")
    for stage, ms in stages.items():
        print("  " + line(stage, ms))


if __name__ == "__main__":
    main()
