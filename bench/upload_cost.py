"""CPU an upload costs the web process: the header check it does now (inspect_upload) against the full
decode it used to do (decode_upload, now the worker's), on the same files.

    .venv/bin/python bench/upload_cost.py [--repeat 5]

Files, made here from scikit-image's astronaut portrait enlarged to a phone's 4000 x 3000: a baseline
JPEG, a progressive one (what phones and browsers often send), and progressive ones with 500 and
2,000 extra empty scans (the security review's attack used 20,000: about ten times the last row).
Then the container walk (inference/engine/containers.py) on the security review's hostile files and
one of each other kind (tests/hostile_files.py): the header check as it is now against the same check
without the walk (Pillow alone, as before issue 27), CPU and peak memory (tracemalloc, a second run).
A "before" that runs past --before-limit seconds is stopped and shown as more than that. Last, what the
walk costs on real photos (a 12-megapixel JPEG, PNG and TIFF), as a share of the header check.
A benchmark: it prints figures, it never fails.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def median_ms(function, data: bytes, repeat: int) -> tuple[float, str]:
    from inference.engine.imaging import ImageRejected

    times, outcome = [], "accepted"
    for _ in range(repeat):
        started = time.perf_counter()
        try:
            function(data)
        except ImageRejected as exc:
            outcome = "refused: " + str(exc)[:48]
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--before-limit", type=float, default=30.0, help="seconds for one run without the walk")
    args = parser.parse_args()
    decode_table(args)
    hostile_table(args)
    walk_share_table(args)


def decode_table(args) -> None:
    import cv2

    from inference.engine.imaging import decode_upload, inspect_upload
    from tests.faces import astronaut, jpeg_bytes, jpeg_with_empty_scans

    phone = cv2.resize(astronaut(), (4000, 3000), interpolation=cv2.INTER_CUBIC)
    files = {
        "baseline JPEG 12 MP": jpeg_bytes(phone),
        "progressive JPEG 12 MP": jpeg_bytes(phone, progressive=True),
        "+500 empty scans": jpeg_with_empty_scans(phone, 500),
        "+2,000 empty scans": jpeg_with_empty_scans(phone, 2000),
    }
    limits = {"max_bytes": 50_000_000, "max_pixels": 40_000_000}
    print(f"web-process CPU per upload, median of {args.repeat} (this machine)")
    print(f"  {'file':<24} {'size':>8}  {'decode (before)':>16}  {'headers (now)':>14}  {'ratio':>8}  now")
    for name, data in files.items():
        with without_walk():  # the old decode: no container walk (it refuses the extra scans since issue 27)
            before, _ = median_ms(lambda raw: decode_upload(raw, **limits), data, args.repeat)
        now, outcome = median_ms(lambda raw: inspect_upload(raw, **limits), data, args.repeat)
        print(
            f"  {name:<24} {len(data) / 1e6:6.2f}MB  {before:13.1f} ms  {now:11.2f} ms  {before / now:7.0f}x  {outcome}"
        )


@contextlib.contextmanager
def without_walk():
    """The header check and the decode as they were before issue 27: Pillow alone."""
    from inference.engine import imaging

    walk = imaging.check_structure
    imaging.check_structure = lambda raw: None
    try:
        yield
    finally:
        imaging.check_structure = walk


class Overran(Exception):
    pass


def cpu_and_peak(function, data: bytes, limit: float) -> tuple[float, float, str]:
    """CPU milliseconds of one run (stopped after `limit` seconds: inf), then the peak MB it allocates."""
    import signal
    import tracemalloc

    from inference.engine.imaging import ImageRejected

    def overran(*_):
        raise Overran

    previous = signal.signal(signal.SIGALRM, overran)
    outcome = "accepted"
    try:
        signal.setitimer(signal.ITIMER_REAL, limit)
        started = time.process_time()
        try:
            function(data)
        except ImageRejected as exc:
            outcome = "refused: " + str(exc)[:40]
        except Overran:
            return float("inf"), float("nan"), "stopped"
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        cpu = (time.process_time() - started) * 1000
    finally:
        signal.signal(signal.SIGALRM, previous)
    tracemalloc.start()
    try:
        function(data)
    except ImageRejected:
        pass
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return cpu, peak, outcome


def hostile_table(args) -> None:
    from inference.engine import imaging
    from tests.hostile_files import HOSTILE

    limits = {"max_bytes": 15 * 2**20, "max_pixels": 40_000_000}

    def check(raw: bytes) -> None:
        imaging.inspect_upload(raw, **limits)

    print("\nhostile files: the web's header check now (with the walk) and without it (Pillow alone)")
    print(f"  {'file':<38} {'size':>8}  {'without: CPU':>13} {'peak':>8}  {'now: CPU':>9} {'peak':>7}  now")
    for name, build in HOSTILE.items():
        data = build()
        now_cpu, now_peak, outcome = cpu_and_peak(check, data, args.before_limit)
        with without_walk():
            before_cpu, before_peak, before = cpu_and_peak(check, data, args.before_limit)
        before_text = f"> {args.before_limit:.0f} s" if before == "stopped" else f"{before_cpu:10.1f} ms"
        print(
            f"  {name:<38} {len(data) / 1e6:6.2f}MB  {before_text:>13} {before_peak:6.1f}MB"
            f"  {now_cpu:6.2f} ms {now_peak:5.2f}MB  {outcome}"
        )


def walk_share_table(args) -> None:
    import io

    import cv2
    from PIL import Image

    from inference.engine.containers import check_structure
    from inference.engine.imaging import inspect_upload
    from tests.faces import astronaut, jpeg_bytes

    phone = cv2.resize(astronaut(), (4000, 3000), interpolation=cv2.INTER_CUBIC)

    def encoded(fmt: str, **options) -> bytes:
        buffer = io.BytesIO()
        Image.fromarray(phone).save(buffer, format=fmt, **options)
        return buffer.getvalue()

    files = {
        "JPEG 12 MP": jpeg_bytes(phone),
        "PNG 12 MP": encoded("PNG", compress_level=1),
        "TIFF 12 MP (strips)": encoded("TIFF", compression="raw", strip_size=4000 * 3),
    }
    limits = {"max_bytes": 60_000_000, "max_pixels": 40_000_000}
    print(f"\nthe walk on real photos, median of {args.repeat}")
    print(f"  {'file':<24} {'size':>8}  {'walk':>9}  {'header check':>13}  share")
    for name, data in files.items():
        walk, _ = median_ms(check_structure, data, args.repeat)
        whole, _ = median_ms(lambda raw: inspect_upload(raw, **limits), data, args.repeat)
        print(f"  {name:<24} {len(data) / 1e6:6.2f}MB  {walk:6.2f} ms  {whole:10.2f} ms  {walk / whole:5.0%}")


if __name__ == "__main__":
    main()
