"""CPU an upload costs the web process: the header check it does now (inspect_upload) against the full
decode it used to do (decode_upload, now the worker's), on the same files.

    .venv/bin/python bench/upload_cost.py [--repeat 5]

Files, made here from scikit-image's astronaut portrait enlarged to a phone's 4000 x 3000: a baseline
JPEG, a progressive one (what phones and browsers often send), and progressive ones with 500 and
2,000 extra empty scans (the security review's attack used 20,000: about ten times the last row).
A benchmark: it prints figures, it never fails.
"""

from __future__ import annotations

import argparse
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
    args = parser.parse_args()

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
        before, _ = median_ms(lambda raw: decode_upload(raw, **limits), data, args.repeat)
        now, outcome = median_ms(lambda raw: inspect_upload(raw, **limits), data, args.repeat)
        print(
            f"  {name:<24} {len(data) / 1e6:6.2f}MB  {before:13.1f} ms  {now:11.2f} ms  {before / now:7.0f}x  {outcome}"
        )


if __name__ == "__main__":
    main()
