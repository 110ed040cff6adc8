"""Per-image time of each classifier runtime, of each pipeline stage and of the whole pipeline.

    .venv/bin/python bench/inference.py [--checkpoint FILE] [--images DIR] [--count 40]

Runtimes: PyTorch eager (the reference), ONNX Runtime and OpenVINO, on the same aligned faces, with
their agreement with PyTorch (largest probability difference, label agreement). Without a checkpoint
the ResNet-50 weights are random: fine for timing and agreement, meaningless as a classifier.
Then the whole pipeline per stage on the photos as they are, and on the same faces enlarged to a
phone's 4000 px (JPEG bytes in, decoding included). A benchmark: it prints figures, it never fails.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_IMAGES = ROOT.parent / "shared" / "datasets" / "stroke-faces" / "paralysis"


def timed(function, items, repeat: int = 1) -> list[float]:
    times = []
    for item in items:
        for _ in range(repeat):
            started = time.perf_counter()
            function(item)
            times.append((time.perf_counter() - started) * 1000)
    return times


def line(name: str, ms: list[float], baseline: float | None = None) -> str:
    median = statistics.median(ms)
    ratio = f"   {median / baseline:5.2f}x the fastest classifier" if baseline else ""
    return f"  {name:<28} median {median:7.1f} ms   p95 {sorted(ms)[int(0.95 * (len(ms) - 1))]:7.1f} ms{ratio}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path)
    parser.add_argument("--images", type=Path, default=DEFAULT_IMAGES)
    parser.add_argument("--count", type=int, default=40)
    args = parser.parse_args()

    import torch
    from PIL import Image, ImageOps

    from inference.engine.align import aligned_face
    from inference.engine.classifier import (
        AGREEMENT_TOLERANCE,
        CLASSES,
        ResNetClassifier,
        _features_model,
        build_resnet50,
        build_runtime,
        preprocess,
        softmax_paralysis,
    )
    from inference.engine.face import FaceMeshDetector
    from inference.engine.imaging import ANALYSIS_MAX_SIDE
    from inference.engine.pipeline import Pipeline

    checkpoint = args.checkpoint
    if checkpoint is None:
        checkpoint = Path("/tmp/bench-resnet50-random.pt")
        torch.manual_seed(0)
        torch.save(
            {"state_dict": build_resnet50().state_dict(), "classes": list(CLASSES), "input_size": 224}, checkpoint
        )
        print("(no --checkpoint: random ResNet-50 weights, for timing and agreement only)")

    if args.images.is_dir():
        files = sorted(p for p in args.images.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
        step = max(1, len(files) // args.count)
        photos = [ImageOps.exif_transpose(Image.open(p)).convert("RGB") for p in files[::step][: args.count]]
        source = f"{len(photos)} photos from {args.images}"
    else:
        from tests.faces import drooped_astronaut

        photos = [Image.fromarray(drooped_astronaut(pixels=4 + i % 10)) for i in range(args.count)]
        source = f"{len(photos)} synthetic faces (no folder at {args.images})"

    detector = FaceMeshDetector()
    faces = []
    for photo in photos:
        rgb = np.asarray(photo)
        search = detector.find(rgb)
        if len(search.faces) == 1:
            faces.append(aligned_face(rgb, search.faces[0], size=224))
    print(f"{source}; {len(faces)} with one face; torch threads {torch.get_num_threads()}")

    reference = ResNetClassifier(checkpoint, runtime="torch")
    module = _features_model(reference.model)
    batches = [preprocess(face) for face in faces]
    runtimes = {"torch (eager fp32)": reference.reference}
    for name in ("onnxruntime", "openvino"):
        try:
            runtime = build_runtime(name, module, 224)
            runtimes[f"{name} ({runtime.name})"] = runtime
        except Exception as exc:  # noqa: BLE001 - report and go on
            print(f"  {name}: unavailable ({exc})")

    expected = np.array([softmax_paralysis(reference.reference(batch)[0])[0] for batch in batches])
    results, agreeing = {}, set()
    print("\nClassifier runtimes (one aligned face at a time, logits + layer4 features for Grad-CAM):")
    for name, runtime in runtimes.items():
        runtime(batches[0])  # warm up
        ms = timed(runtime, batches)
        probabilities = np.array([softmax_paralysis(runtime(batch)[0])[0] for batch in batches])
        difference = float(np.abs(probabilities - expected).max())
        same_label = float(np.mean((probabilities >= 0.5) == (expected >= 0.5)))
        results[name] = statistics.median(ms)
        if difference <= AGREEMENT_TOLERANCE and same_label == 1.0:
            agreeing.add(name)
        verdict = "agrees" if name in agreeing else f"DISAGREES (tolerance {AGREEMENT_TOLERANCE})"
        print(line(name, ms) + f"   max |dP| vs torch {difference:.1e}, same label {same_label:.0%}: {verdict}")
    fastest_name = min(agreeing, key=results.get)
    fastest = results[fastest_name]
    print(f"  fastest that agrees: {fastest_name}, {results['torch (eager fp32)'] / fastest:.2f}x faster than eager")

    classifier = ResNetClassifier(checkpoint, runtime="auto")
    pipeline = Pipeline(detector=detector, classifier=classifier, classifier_name="bench")
    pipeline.analyze(photos[0])
    stage_times: dict[str, list[float]] = {}
    whole = []
    for photo in photos:
        started = time.perf_counter()
        analysis = pipeline.analyze(photo)
        whole.append((time.perf_counter() - started) * 1000)
        for stage, ms in analysis.timings_ms.items():
            stage_times.setdefault(stage, []).append(ms)
    # The mirror-consistent mesh fits every photo twice: its cost against one fit, same photos.
    arrays = [np.asarray(photo) for photo in photos]
    one_way = timed(detector.find_one_way, arrays)
    both_ways = timed(detector.find, arrays)
    print("\nFace mesh (MediaPipe), one fit against the mirror-consistent fit (photo and mirror image):")
    print(line("one way", one_way))
    print(
        line("photo + mirror, averaged", both_ways)
        + f"   {statistics.median(both_ways) / statistics.median(one_way):.2f}x one way"
    )
    print(f"\nWhole pipeline with the served runtime ({classifier.runtime_name}):")
    for stage, ms in stage_times.items():
        print(line(f"stage {stage}", ms))
    print(line("whole pipeline", whole, baseline=fastest))

    # Phones send 12-megapixel photos: the same faces at 4000 px wide, as JPEG, decoding included.
    import io

    phone_stages: dict[str, list[float]] = {}
    phone_whole, refused = [], 0
    for photo in photos:
        large = photo.resize((4000, round(4000 * photo.height / photo.width)), Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        large.save(buffer, format="JPEG", quality=90)
        started = time.perf_counter()
        analysis = pipeline.analyze_bytes(buffer.getvalue())
        elapsed = (time.perf_counter() - started) * 1000
        if analysis.status != "done":  # an enlarged small photo can be too blurred: its time says little
            refused += 1
            continue
        phone_whole.append(elapsed)
        for stage, ms in analysis.timings_ms.items():
            phone_stages.setdefault(stage, []).append(ms)
    print(
        f"\nThe same faces enlarged to 4000 px wide (JPEG decoded at reduced scale, analysed at "
        f"{ANALYSIS_MAX_SIDE} px; {len(phone_whole)} analysed, {refused} refused by the quality gate):"
    )
    if phone_whole:
        for stage, ms in phone_stages.items():
            print(line(f"stage {stage}", ms))
        print(line("decode + whole pipeline", phone_whole, baseline=fastest))


if __name__ == "__main__":
    main()
