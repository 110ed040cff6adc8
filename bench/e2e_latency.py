"""Upload-to-alert latency through the real stack, beside the bare pipeline time on the same images.

    .venv/bin/python -m stack.embedded .venv/bin/python bench/e2e_latency.py [--images DIR] [--scans 30]

Starts daphne and a Celery worker on a scratch SQLite database (never your own data), uploads each
photo over REST as a caregiver while a clinician listens on /ws/alerts/, and times upload -> the
caregiver's scan.updated (result) and upload -> the clinician's alert.created (positives only).
Then runs the bare pipeline in this process on the same photos. A benchmark: it prints, never fails.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

DEFAULT_IMAGES = ROOT.parent / "shared" / "datasets" / "stroke-faces" / "paralysis"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary(name: str, seconds: list[float], *, width: int = 34) -> str:
    if not seconds:
        return f"{name:<{width}} n=0"
    ms = [s * 1000 for s in seconds]
    return (
        f"{name:<{width}} n={len(ms):<4} median {statistics.median(ms):8.1f} ms   p95 {percentile(ms, 95):8.1f} ms"
        f"   min {min(ms):8.1f} ms   max {max(ms):8.1f} ms"
    )


def load_images(directory: Path | None, count: int) -> list[tuple[str, bytes]]:
    if directory is not None and directory.is_dir():
        files = sorted(p for p in directory.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
        step = max(1, len(files) // count)
        return [(p.name, p.read_bytes()) for p in files[::step][:count]]
    # No data set here: warped copies of the face that scikit-image ships, drooped by varying amounts.
    from tests.faces import drooped_astronaut, jpeg_bytes

    print(f"(no image folder at {directory}; using {count} synthetic drooped faces)")
    return [
        (f"synthetic-{i}", jpeg_bytes(drooped_astronaut(side="left" if i % 2 else "right", pixels=12 + i % 8)))
        for i in range(count)
    ]


async def run_uploads(
    base_url: str,
    ws_base: str,
    caregiver_token: str,
    clinician_token: str,
    patient_id: int,
    images: list[tuple[str, bytes]],
) -> tuple[list[float], list[float], dict[str, int]]:
    import requests
    import websockets

    to_result, to_alert = [], []
    outcomes: dict[str, int] = {}
    async with (
        websockets.connect(f"{ws_base}/ws/alerts/?token={caregiver_token}") as caregiver,
        websockets.connect(f"{ws_base}/ws/alerts/?token={clinician_token}") as clinician,
    ):
        for _name, data in images:
            started = time.perf_counter()
            response = await asyncio.to_thread(
                requests.post,
                f"{base_url}/api/v1/scans/",
                headers={"Authorization": f"Token {caregiver_token}"},
                data={"patient": patient_id},
                files={"image": ("face.jpg", data, "image/jpeg")},
                timeout=60,
            )
            if response.status_code != 202:
                outcomes["upload refused"] = outcomes.get("upload refused", 0) + 1
                continue
            scan_id = response.json()["id"]
            status = None
            while status not in {"done", "rejected", "failed"}:
                frame = json.loads(await asyncio.wait_for(caregiver.recv(), 120))
                if frame["type"] == "scan.updated" and frame["scan"]["id"] == scan_id:
                    status = frame["scan"]["status"]
                    label = (frame["scan"].get("result") or {}).get("label", status)
            to_result.append(time.perf_counter() - started)
            outcomes[label] = outcomes.get(label, 0) + 1
            if label == "paralysis":
                while True:
                    frame = json.loads(await asyncio.wait_for(clinician.recv(), 60))
                    if frame["type"] == "alert.created" and frame["alert"]["scan"]["id"] == scan_id:
                        to_alert.append(time.perf_counter() - started)
                        break
    return to_result, to_alert, outcomes


def bare_pipeline_times(images: list[tuple[str, bytes]]) -> list[float]:
    from inference.engine.imaging import decode_upload
    from inference.engine.pipeline import Pipeline

    pipeline = Pipeline()
    cleaned = [decode_upload(data, max_bytes=50_000_000, max_pixels=40_000_000).data for _, data in images]
    pipeline.analyze_bytes(cleaned[0])  # load the graph, as the worker's first scan does
    times = []
    for data in cleaned:
        started = time.perf_counter()
        pipeline.analyze_bytes(data)
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=Path, default=DEFAULT_IMAGES)
    parser.add_argument("--scans", type=int, default=30)
    args = parser.parse_args()
    if "REDIS_URL" not in os.environ:
        sys.exit("REDIS_URL is not set: run through `python -m stack.embedded` (make bench does).")

    from stack.embedded import free_port
    from stack.processes import Stack, base_env

    images = load_images(args.images, args.scans)
    var_dir = Path(tempfile.mkdtemp(prefix="portal-bench-"))
    # ALERT_EPISODE_HOURS=0: every positive raises its own alert (no episode grouping), so each
    # upload is timed to the alert.created frame a clinician would see first.
    env = base_env(
        PORTAL_VAR_DIR=str(var_dir),
        DATABASE_URL=f"sqlite:///{var_dir / 'bench.sqlite3'}",
        ALERT_EPISODE_HOURS="0",
        CELERY_QUEUE=f"bench-{var_dir.name}",
        CHANNELS_PREFIX=f"bench-{var_dir.name}",
    )
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "--noinput"], env=env, check=True, capture_output=True)
    subprocess.run([*manage, "seed_demo", "--quiet"], env=env, check=True, capture_output=True)
    tokens = subprocess.run(
        [
            *manage,
            "shell",
            "--no-imports",
            "-c",
            "from django.contrib.auth import get_user_model as U; from portal.credentials import issue_token as t;"
            " from portal.models import Patient as P;"
            "print(t(U().objects.get(username='carol'))[1], t(U().objects.get(username='dr.alice'))[1],"
            " P.objects.get(mrn='MRN-1001').id)",
        ],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    caregiver_token, clinician_token, patient_id = tokens[0], tokens[1], int(tokens[2])

    stack = Stack(env=env, port=free_port(), worker_concurrency=1, log_dir=var_dir / "logs")
    with stack:
        stack.wait_ready(timeout=180)
        # One warm-up scan so the worker has loaded MediaPipe, as a running portal has.
        asyncio.run(
            run_uploads(
                stack.base_url,
                f"ws://{stack.host}:{stack.port}",
                caregiver_token,
                clinician_token,
                patient_id,
                images[:1],
            )
        )
        to_result, to_alert, outcomes = asyncio.run(
            run_uploads(
                stack.base_url, f"ws://{stack.host}:{stack.port}", caregiver_token, clinician_token, patient_id, images
            )
        )
    bare = bare_pipeline_times(images)

    print(f"\n{len(images)} scans, one at a time, worker concurrency 1, {os.cpu_count()} CPUs; outcomes {outcomes}")
    print(summary("bare pipeline (in process)", bare))
    print(summary("upload -> result (scan.updated)", to_result))
    print(summary("upload -> alert (alert.created)", to_alert))
    if bare and to_result:
        overhead = statistics.median(to_result) - statistics.median(bare)
        print(
            f"portal overhead over the bare pipeline (median): {overhead * 1000:.1f} ms "
            f"({statistics.median(to_result) / statistics.median(bare):.2f}x)"
        )


if __name__ == "__main__":
    main()
