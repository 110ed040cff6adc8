"""Load: concurrent uploads while many clinicians' sockets listen; counts in against counts out.

    .venv/bin/python -m stack.embedded .venv/bin/python bench/load.py [--scans 200] [--clients 4] [--sockets 50]
        [--web-nodes 1 2] [--layer queues pubsub] [--database-url postgres://postgres@127.0.0.1:5432/postgres]
        [--phone-photos]

For each channel layer, number of web nodes and number of worker nodes asked (--web-nodes 1 2: two
runs, the first the baseline of the second; --layer queues pubsub: channels_redis's queue per process
against Redis pub/sub, settings.CHANNEL_LAYER),
starts that many daphne processes (runportal --role web), worker nodes of --concurrency processes
(--concurrency 1 2: a run for each; each process takes its share of the CPUs) and beat
on a scratch database (SQLite in a temporary folder, or a fresh PostgreSQL database created on the
server of --database-url and dropped afterwards), registers --sockets clinicians on the patient's
care team, connects one WebSocket each (spread over the web nodes), then uploads --scans photos from
--clients concurrent clients (spread too), each a caregiver of the patient with a socket of their
own. Prints upload throughput, latency percentiles (upload answer, upload -> result, upload -> alert
at every socket, first to last socket per alert), the counts (scans in, results out, alerts raised,
alert frames per socket), how late escalations fire during the burst (--overdue alerts of another
patient whose deadlines fall while the uploads queue: each one's escalation against its deadline) and,
with several runs, the ratios against the first. The photos are the
data set's (face crops of about 10 KB), or with --phone-photos 12-megapixel photos of 2-3 MB.
A benchmark: it prints, it never fails.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

from bench.e2e_latency import DEFAULT_IMAGES, load_images, percentile, summary  # noqa: E402

# --classifier: the cost of a ResNet-50 in every analysis. No trained weights ship with this checkout,
# so the scratch database (dropped after the run) gets a randomly initialised network, registered
# with a made-up evaluation so that the worker loads it. Timing only: its labels mean nothing, and it
# never exists outside that database.
MAKE_TIMING_CLASSIFIER = """
import tempfile
from pathlib import Path
import torch
from inference.engine.classifier import build_resnet50
from inference.engine.training.fitting import checkpoint_payload
from inference.services import model_activate, model_register
path = Path(tempfile.mkdtemp()) / "timing-only.pt"
torch.save(checkpoint_payload(build_resnet50(), input_size=224, training={{}}), path)
thresholds = {{"fused_negative_below": 0.3, "fused_positive_at": 0.6, "classifier_weight": 0.5}}
metrics = {{"evaluation": {{"source": "none: random weights for timing", "classifier": {{"roc_auc": 0.99}}}}}}
version = model_register(checkpoint=path, name="timing-only-random-weights", thresholds=thresholds, metrics=metrics,
                         notes="bench/load.py --classifier: random weights, timing only")
model_activate(version=version)
"""

# The clinicians on the patient's care team, and one caregiver per concurrent upload client (each
# client is someone's phone: its uploads, and the scan updates its socket hears, are its own).
MAKE_CLINICIANS = """
from django.contrib.auth import get_user_model
from portal.credentials import issue_token
from portal.models import CareTeam, CareTeamMembership, Caregiver, Patient, Physician
team = CareTeam.objects.get(name="Stroke Unit")
patient = Patient.objects.get(mrn="MRN-1001")
tokens = []
for i in range({count}):
    user, _ = get_user_model().objects.get_or_create(username=f"load-clinician-{{i}}")
    physician, _ = Physician.objects.get_or_create(user=user, defaults={{"full_name": f"Dr Load {{i}}"}})
    CareTeamMembership.objects.get_or_create(care_team=team, physician=physician)
    tokens.append(issue_token(user)[1])
uploaders = []
for i in range({uploaders}):
    user, _ = get_user_model().objects.get_or_create(username=f"load-caregiver-{{i}}")
    caregiver, _ = Caregiver.objects.get_or_create(user=user)
    patient.caregivers.add(caregiver)
    uploaders.append(issue_token(user)[1])
print(json.dumps({{"clinicians": tokens, "uploaders": uploaders,
                  "carol": issue_token(get_user_model().objects.get(username="carol"))[1], "patient": patient.id}}))
"""


# Alerts of another patient (Li Wei, another team), waiting far in the future until the burst starts;
# run() then gives them deadlines spread over the burst and reads when each escalated.
MAKE_WAITING_ALERTS = """
from datetime import timedelta
from django.utils import timezone
from alerts.models import Alert
from portal.models import Patient
from scans.models import Scan
patient = Patient.objects.get(mrn="MRN-2001")
ids = []
for i in range({count}):
    scan = Scan.objects.create(patient=patient, image_width=1, image_height=1, status="done")
    team = {{"called_team_id": patient.care_team_id}} if hasattr(Alert, "called_team") else {{}}  # older code: none
    alert = Alert.objects.create(scan=scan, latest_scan=scan, patient=patient, severity="severe", score=0.9,
                                 next_escalation_at=timezone.now() + timedelta(days=365), **team)
    ids.append(alert.id)
print(json.dumps(ids))
"""


def sql(database_url: str, query: str, params: tuple = ()) -> list[tuple]:
    """One statement on the run's database, from this process (no load on the web nodes)."""
    if database_url.startswith("postgres"):
        import psycopg

        with psycopg.connect(database_url) as connection:
            cursor = connection.execute(query, params)
            return cursor.fetchall() if cursor.description else []
    import sqlite3

    with contextlib.closing(sqlite3.connect(database_url.removeprefix("sqlite:///"))) as connection:
        cursor = connection.execute(query.replace("%s", "?"), params)
        rows = cursor.fetchall()
        connection.commit()
        return rows


def set_deadlines(database_url: str, alert_ids: list[int], span: float) -> dict[int, float]:
    """Give the waiting alerts deadlines spread over the next ``span`` seconds (from 2 s on); returns each
    one's deadline as a Unix time."""
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    deadlines = {}
    for index, alert_id in enumerate(alert_ids):
        due = now + timedelta(seconds=2 + span * index / max(len(alert_ids) - 1, 1))
        value = due if database_url.startswith("postgres") else due.strftime("%Y-%m-%d %H:%M:%S.%f")
        sql(database_url, "UPDATE alerts_alert SET next_escalation_at = %s WHERE id = %s", (value, alert_id))
        deadlines[alert_id] = due.timestamp()
    return deadlines


def escalated_at(database_url: str, alert_ids: list[int]) -> dict[int, float]:
    """When each alert first escalated (Unix time), for those that did."""
    from datetime import UTC, datetime

    if not alert_ids:
        return {}
    marks = ",".join(str(int(alert_id)) for alert_id in alert_ids)
    rows = sql(
        database_url,
        f"SELECT alert_id, MIN(at) FROM alerts_alertevent WHERE kind = 'escalated' AND alert_id IN ({marks}) "
        "GROUP BY alert_id",
    )
    times = {}
    for alert_id, at in rows:
        if isinstance(at, str):
            at = datetime.fromisoformat(at)
        times[alert_id] = (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()
    return times


def phone_sized(images: list[tuple[str, bytes]], count: int = 8) -> list[tuple[str, bytes]]:
    """`count` of the photos as a phone camera saves them: 12 megapixels (3024 x 4032), JPEG quality 90,
    with a sensor's grain, so that an upload weighs what a caregiver's does (2-3 MB; the data
    set's face crops weigh about 10 KB, and the web nodes' cost grows with the bytes)."""
    import io

    import numpy as np
    from PIL import Image

    noise = np.random.default_rng(0)
    photos = []
    for name, data in images[:count]:
        pixels = np.asarray(Image.open(io.BytesIO(data)).convert("RGB").resize((3024, 4032)), dtype=np.int16)
        grainy = np.clip(pixels + noise.normal(0, 6, pixels.shape).astype(np.int16), 0, 255).astype(np.uint8)
        out = io.BytesIO()
        Image.fromarray(grainy).save(out, "JPEG", quality=90)
        photos.append((f"phone-{name}", out.getvalue()))
    return photos


def unfinished_scans(database_url: str) -> int:
    """Scans still queued or being analysed, read from the database itself: the record, and no load on
    the web nodes under test (a list request per second took a fifth of a web node's time)."""
    return sql(database_url, "SELECT count(*) FROM scans_scan WHERE status IN ('queued', 'processing')")[0][0]


# The upload clients are processes of their own, as phones are: in the process that holds the
# clinicians' 500 sockets, their requests waited for its event loop, and the 202 times measured that.
_uploader: dict = {}


def _uploader_init(base_urls: list[str], tokens: list[str], patient: int, images: list[tuple[str, bytes]]) -> None:
    _uploader.update(base_urls=base_urls, tokens=tokens, patient=patient, images=images)


def _warm(_index: int) -> None:
    import requests  # noqa: F401


def _upload(index: int) -> tuple[int, float, float, int | None]:
    """One photo, as caregiver ``index`` (mod the caregivers) to web node ``index`` (mod the nodes):
    the status, when it was sent and how long the answer took (perf_counter is the machine's
    monotonic clock, the same in every process), and the new scan's id."""
    import requests

    _name, data = _uploader["images"][index % len(_uploader["images"])]
    started = time.perf_counter()
    response = requests.post(
        f"{_uploader['base_urls'][index % len(_uploader['base_urls'])]}/api/v1/scans/",
        headers={"Authorization": f"Token {_uploader['tokens'][index % len(_uploader['tokens'])]}"},
        data={"patient": _uploader["patient"]},
        files={"image": ("face.jpg", data, "image/jpeg")},
        timeout=120,
    )
    elapsed = time.perf_counter() - started
    return response.status_code, started, elapsed, response.json()["id"] if response.status_code == 202 else None


def cpu_seconds(stacks: list) -> float:
    """CPU seconds (user + system) used so far by these stacks' processes and their children (the
    worker's pool processes)."""
    import psutil

    total = 0.0
    for stack in stacks:
        for process in stack.processes.values():
            try:
                family = [psutil.Process(process.pid)]
                family += family[0].children(recursive=True)
            except psutil.NoSuchProcess:
                continue
            for each in family:
                try:
                    times = each.cpu_times()
                except psutil.NoSuchProcess:  # a pool process that ended meanwhile
                    continue
                total += times.user + times.system
    return total


def machine_busy_seconds() -> float:
    import psutil

    times = psutil.cpu_times()
    # guest time is inside user already; steal is the hypervisor's, not this machine's work
    return sum(getattr(times, name, 0.0) for name in ("user", "nice", "system", "irq", "softirq"))


async def run(
    nodes: list,
    workers: list,
    tokens: dict,
    images: list[tuple[str, bytes]],
    scans: int,
    clients: int,
    database_url: str,
    waiting_alerts: list[int],
    overdue_span: float,
):
    import multiprocessing

    import requests
    import websockets

    uploads: dict[int, float] = {}
    answer_times, refused = [], Counter()
    finished: dict[int, tuple[str, float]] = {}
    alert_seen: dict[int, list[float]] = {}
    seen_by_node: dict[tuple[int, int], list[float]] = {}  # (scan, web node) -> arrival times
    per_socket = Counter()
    last_frame = [0.0]  # when the last frame of any socket arrived

    base_url = nodes[0].base_url  # reads (the database is shared): any node answers the same

    async def frames(token: str, ready: asyncio.Event, node=nodes[0]):
        """One socket's frames until the task is cancelled; ``ready`` once it is connected."""
        url = f"ws://{node.host}:{node.port}/ws/alerts/?token={token}"
        async with websockets.connect(url, max_queue=None, open_timeout=60) as socket:
            ready.set()
            async for message in socket:
                last_frame[0] = time.perf_counter()
                yield json.loads(message)

    async def listen(index: int, token: str, ready: asyncio.Event):
        async for frame in frames(token, ready, nodes[index % len(nodes)]):
            if frame["type"] == "alert.created":
                scan_id = frame["alert"]["scan"]["id"]
                now = time.perf_counter()
                alert_seen.setdefault(scan_id, []).append(now)
                seen_by_node.setdefault((scan_id, index % len(nodes)), []).append(now)
                per_socket[index] += 1

    async def caregiver(token: str, ready: asyncio.Event, node):
        async for frame in frames(token, ready, node):
            if frame["type"] == "scan.updated" and frame["scan"]["status"] in {"done", "rejected", "failed"}:
                label = (frame["scan"].get("result") or {}).get("label") or frame["scan"]["status"]
                finished.setdefault(frame["scan"]["id"], (label, time.perf_counter()))

    def cpu_now() -> tuple[float, float, float]:
        return cpu_seconds(nodes), cpu_seconds(workers), machine_busy_seconds()

    uploaders = multiprocessing.get_context("spawn").Pool(
        clients,
        initializer=_uploader_init,
        initargs=([node.base_url for node in nodes], tokens["uploaders"], tokens["patient"], images),
    )
    readies = [asyncio.Event() for _ in tokens["clinicians"]]
    listeners = [asyncio.create_task(listen(i, token, readies[i])) for i, token in enumerate(tokens["clinicians"])]
    # Each uploader's own socket, for scan.updated (on the node its uploads go to).
    watchers = []
    for index, token in enumerate(tokens["uploaders"]):
        readies.append(asyncio.Event())
        watchers.append(asyncio.create_task(caregiver(token, readies[-1], nodes[index % len(nodes)])))
    await asyncio.wait_for(asyncio.gather(*(ready.wait() for ready in readies)), 60)

    with uploaders:
        await asyncio.to_thread(uploaders.map, _warm, range(clients))  # started and imported, not measured
        cpu_before = cpu_now()
        deadlines = await asyncio.to_thread(set_deadlines, database_url, waiting_alerts, overdue_span)
        started = time.perf_counter()
        answers = await asyncio.to_thread(uploaders.map, _upload, range(scans), 1)
        upload_seconds = time.perf_counter() - started
    for status, sent, elapsed, scan_id in answers:
        answer_times.append(elapsed)
        if scan_id is not None:
            uploads[scan_id] = sent
        else:
            refused[status] += 1

    deadline = time.monotonic() + 600
    queued_until = [time.time()]  # the last moment an upload was still waiting (Unix time)
    while await asyncio.to_thread(unfinished_scans, database_url) and time.monotonic() < deadline:
        queued_until[0] = time.time()
        await asyncio.sleep(0.2)
    all_done = time.perf_counter() - started
    web_cpu, worker_cpu, busy = (after - before for after, before in zip(cpu_now(), cpu_before))
    # Frames still queued in the web process arrive late, not never: wait until none has come for 5 s.
    last_frame[0] = time.perf_counter()
    while time.perf_counter() - last_frame[0] < 5 and time.perf_counter() - started < all_done + 120:
        await asyncio.sleep(0.5)
    drained = last_frame[0] - started - all_done
    for task in (*listeners, *watchers):
        task.cancel()
    await asyncio.gather(*listeners, *watchers, return_exceptions=True)

    # Every waiting alert's deadline has passed: wait (at most two minutes) for the sweeps to reach it.
    deadline = time.monotonic() + 120 + max(0.0, max(deadlines.values(), default=0) - time.time())
    while len(await asyncio.to_thread(escalated_at, database_url, waiting_alerts)) < len(waiting_alerts):
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    escalations = await asyncio.to_thread(escalated_at, database_url, waiting_alerts)

    def recorded() -> dict:
        carol = {"Authorization": f"Token {tokens['carol']}"}
        by_status = {
            status: requests.get(f"{base_url}/api/v1/scans/?status={status}", headers=carol, timeout=30).json()["count"]
            for status in ("queued", "processing", "done", "rejected", "failed")
        }
        positives = requests.get(f"{base_url}/api/v1/scans/?label=paralysis", headers=carol, timeout=30).json()["count"]

        # What a clinician who missed frames gets back by asking for everything after the last id seen.
        def count_for(index: int) -> int:
            url = f"{nodes[index % len(nodes)].base_url}/api/v1/alerts/?after=0"
            headers = {"Authorization": f"Token {tokens['clinicians'][index]}"}
            return requests.get(url, headers=headers, timeout=60).json()["count"]

        with ThreadPoolExecutor(4) as pool:
            caught_up = list(pool.map(count_for, range(len(tokens["clinicians"]))))
        # Alerts in the database (the caregiver sees every alert of her patient): one per positive scan,
        # as ALERT_EPISODE_HOURS=0 here gives every positive an episode of its own.
        alerts = requests.get(f"{base_url}/api/v1/alerts/?after=0", headers=carol, timeout=30).json()["count"]
        return {"by_status": by_status, "positives": positives, "alerts": alerts, "caught_up": caught_up}

    return {
        "uploads": uploads,
        "answer_times": answer_times,
        "refused": refused,
        "finished": finished,
        "alert_seen": alert_seen,
        "seen_by_node": seen_by_node,
        "per_socket": per_socket,
        "upload_seconds": upload_seconds,
        "all_done": all_done,
        "drained": drained,
        "cpu": {"web": web_cpu, "worker": worker_cpu, "machine": busy, "seconds": all_done},
        "sockets": len(listeners),
        "photo_bytes": statistics.median(len(data) for _name, data in images),
        "db": await asyncio.to_thread(recorded),
        # (deadline, escalated or None) of each waiting alert; and until when uploads were still waiting.
        "escalations": [(deadlines[a], escalations.get(a)) for a in waiting_alerts],
        "queued_until": queued_until[0],
    }


def scratch_database(server_url: str, name: str) -> tuple[str, callable]:
    """A new empty PostgreSQL database on the server of ``server_url``; returns its URL and a dropper."""
    from urllib.parse import urlsplit, urlunsplit

    import psycopg

    parts = urlsplit(server_url)
    with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return urlunsplit(parts._replace(path=f"/{name}")), drop


def one_run(args, layer: str, web_nodes: int, worker_nodes: int, concurrency: int, images) -> dict:
    from stack.embedded import free_port
    from stack.processes import Stack, base_env

    var_dir = Path(tempfile.mkdtemp(prefix="portal-load-"))
    drop = None
    if args.database_url:
        database_url, drop = scratch_database(args.database_url, f"load_{var_dir.name.replace('-', '_')}")
    else:
        database_url = f"sqlite:///{var_dir / 'load.sqlite3'}"
    env = base_env(
        PORTAL_VAR_DIR=str(var_dir),
        DATABASE_URL=database_url,
        CELERY_QUEUE=f"load-{var_dir.name}",
        CHANNELS_PREFIX=f"load-{var_dir.name}",
        CHANNEL_LAYER=layer,
        ALERT_EPISODE_HOURS="0",  # every positive raises its own alert: count them all
        UPLOAD_THROTTLE_RATE="100000/hour",
        SOCKETS_PER_USER="2",
        # As docker-compose.yml runs it: a pool of PostgreSQL connections per process.
        DB_POOL="1" if database_url.startswith("postgres") else "0",
    )
    try:
        manage = [sys.executable, str(ROOT / "manage.py")]
        subprocess.run([*manage, "migrate", "--noinput"], env=env, check=True, capture_output=True)
        subprocess.run([*manage, "seed_demo", "--quiet"], env=env, check=True, capture_output=True)
        made = subprocess.run(
            [
                *manage,
                "shell",
                "--no-imports",
                "-c",
                "import json\n" + MAKE_CLINICIANS.format(count=args.sockets, uploaders=args.clients),
            ],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        tokens = json.loads(made.stdout.strip().splitlines()[-1])
        waiting = subprocess.run(
            [*manage, "shell", "--no-imports", "-c", "import json\n" + MAKE_WAITING_ALERTS.format(count=args.overdue)],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        waiting_alerts = json.loads(waiting.stdout.strip().splitlines()[-1])
        if args.classifier:
            subprocess.run(
                [*manage, "shell", "--no-imports", "-c", MAKE_TIMING_CLASSIFIER.format()], env=env, check=True
            )
        webs = [
            Stack(env=env, port=free_port(), web=True, worker=False, log_dir=var_dir / f"logs-web-{i}")
            for i in range(web_nodes)
        ]
        workers = [
            Stack(
                env=env,
                port=free_port(),
                web=False,
                worker=True,
                beat=i == 0,
                worker_concurrency=concurrency,
                log_dir=var_dir / f"logs-worker-{i}",
            )
            for i in range(worker_nodes)
        ]
        every = [*workers, *webs]
        try:
            for stack in every:
                stack.start()
            for stack in every:
                stack.wait_ready(timeout=180)
            return asyncio.run(
                run(
                    webs,
                    workers,
                    tokens,
                    images,
                    args.scans,
                    args.clients,
                    database_url,
                    waiting_alerts,
                    args.overdue_span,
                )
            )
        finally:
            for stack in every:
                stack.stop()
    finally:
        if drop is not None:
            drop()


def report(args, layer: str, web_nodes: int, worker_nodes: int, concurrency: int, r: dict) -> dict:
    uploads, finished, db = r["uploads"], r["finished"], r["db"]
    to_result = [finished[s][1] - uploads[s] for s in finished if s in uploads]
    to_alert = [seen - uploads[s] for s in r["alert_seen"] if s in uploads for seen in r["alert_seen"][s]]
    fan_out = [max(seen) - min(seen) for seen in r["alert_seen"].values() if len(seen) > 1]
    # The same within each web node's sockets: how much of the spread is one node's sending, and how
    # much the nodes' drift from one another.
    fan_out_node = [max(seen) - min(seen) for seen in r["seen_by_node"].values() if len(seen) > 1]
    frames = sorted(r["per_socket"].get(i, 0) for i in range(r["sockets"]))
    finished_in_db = db["by_status"]["done"] + db["by_status"]["rejected"] + db["by_status"]["failed"]
    print(
        f"\nchannel layer {layer}, {web_nodes} web node(s), {worker_nodes} worker node(s) of concurrency "
        f"{concurrency}: {args.scans} "
        f"uploads from {args.clients} concurrent clients; {r['sockets']} clinician sockets; {os.cpu_count()} CPUs; "
        f"database {'PostgreSQL' if args.database_url.startswith('postgres') else 'SQLite'}; classifier "
        f"{'on (random weights, timing only)' if args.classifier else 'off (asymmetry rule alone)'}; photos of "
        f"{r['photo_bytes'] / 1024:.0f} KB (median)"
    )
    print(
        f"  upload throughput: {len(uploads) / r['upload_seconds']:.1f} scans/s accepted "
        f"({r['upload_seconds']:.1f} s); every scan analysed after {r['all_done']:.1f} s "
        f"({finished_in_db / r['all_done']:.1f} scans/s end to end)"
    )
    print("  " + summary("upload answered (202)", r["answer_times"], width=36))
    print("  " + summary("upload -> result (scan.updated)", to_result, width=36))
    print("  " + summary("upload -> alert, every socket", to_alert, width=36))
    print("  " + summary("first to last socket, per alert", fan_out, width=36))
    if web_nodes > 1:
        print("  " + summary("  the same within one web node", fan_out_node, width=36))
    print(
        f"  counts in the database: scans in {len(uploads)} (refused {dict(r['refused']) or 0}), "
        f"{db['by_status']}, scans lost {len(uploads) - finished_in_db}; positive scans {db['positives']}, "
        f"alerts {db['alerts']}"
    )
    expected_frames = db["alerts"] * r["sockets"]
    print(
        f"  live frames: alert.created per socket min {frames[0] if frames else 0} / max {frames[-1] if frames else 0}"
        f" of {db['alerts']} ({expected_frames - sum(frames)} of {expected_frames} frames never arrived;"
        f" scan.updated results seen by their uploaders {len(to_result)} of {finished_in_db}); the last frame came"
        f" {max(r['drained'], 0):.1f} s after the database had every result"
    )
    cpu, analysed = r["cpu"], max(finished_in_db, 1)
    other = cpu["machine"] - cpu["web"] - cpu["worker"]
    worker_per_scan = max(cpu["worker"], 1e-9) / analysed
    print(
        f"  CPU from the first upload to the last result ({cpu['seconds']:.1f} s, {os.cpu_count()} CPUs, "
        f"{cpu['machine'] / cpu['seconds']:.2f} busy): per scan analysed, worker "
        f"{worker_per_scan * 1000:.0f} ms (with beat), web nodes {cpu['web'] / analysed * 1000:.0f} ms, the rest "
        f"(PostgreSQL, Redis, the clients) {other / analysed * 1000:.0f} ms: a worker node of 2 CPUs of its own "
        f"would analyse at most about {2 / worker_per_scan:.1f} scans/s (both CPUs busy with analyses)"
    )
    during = [(due, fired) for due, fired in r["escalations"] if due <= r["queued_until"]]
    late = sorted(fired - due for due, fired in during if fired is not None)
    never = sum(fired is None for _, fired in r["escalations"])
    if r["escalations"]:
        worst = f"{late[-1]:.1f} s" if late else "-"
        print(
            f"  escalations due while uploads were queued: {len(during)} of {len(r['escalations'])} waiting alerts "
            f"(ALERT_SWEEP_SECONDS={os.environ.get('ALERT_SWEEP_SECONDS', 'default')}); "
            + summary("fired after the deadline", late, width=0).strip()
            + f"; worst {worst} (target: none later than 30 s){f'; NEVER ESCALATED {never}' if never else ''}"
        )
    print(
        f"  after catch-up (GET /api/v1/alerts/?after=0 per clinician): min {min(db['caught_up'])} / "
        f"max {max(db['caught_up'])} of {db['alerts']} alerts: "
        f"{'none lost' if min(db['caught_up']) == db['alerts'] else 'ALERTS MISSING'}"
    )
    return {
        "accepted_per_s": len(uploads) / r["upload_seconds"],
        "answer_median_ms": statistics.median(r["answer_times"]) * 1000 if r["answer_times"] else float("nan"),
        "fan_out_p95_ms": percentile([x * 1000 for x in fan_out], 95) if fan_out else float("nan"),
        "last_frame_s": max(r["drained"], 0),
        "end_to_end_per_s": finished_in_db / r["all_done"],
        "worker_cpu_ms_per_scan": worker_per_scan * 1000,
        "escalation_late_max_s": max(late, default=float("nan")),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=Path, default=DEFAULT_IMAGES)
    parser.add_argument("--scans", type=int, default=200)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--sockets", type=int, default=50)
    parser.add_argument(
        "--web-nodes", type=int, nargs="+", default=[1], help="one run per number; the first is the baseline"
    )
    parser.add_argument("--worker-nodes", type=int, nargs="+", default=[1], help="one run per number, too")
    parser.add_argument(
        "--layer", nargs="+", default=["pubsub"], choices=["pubsub", "queues"], help="one run per channel layer"
    )
    parser.add_argument(
        "--concurrency", type=int, nargs="+", default=[2], help="processes of each worker node (one run per number)"
    )
    parser.add_argument(
        "--overdue", type=int, default=20, help="alerts of another patient whose deadlines fall during the burst"
    )
    parser.add_argument(
        "--overdue-span", type=float, default=30.0, help="seconds over which their deadlines are spread (from 2 s)"
    )
    parser.add_argument("--classifier", action="store_true", help="a ResNet-50 in every analysis (timing only)")
    parser.add_argument(
        "--phone-photos", action="store_true", help="upload 12-megapixel photos of 2-3 MB, as phones take them"
    )
    parser.add_argument(
        "--database-url", default="", help="a PostgreSQL server (a scratch database is made there; default: SQLite)"
    )
    args = parser.parse_args()
    if "REDIS_URL" not in os.environ:
        sys.exit("REDIS_URL is not set: run through `python -m stack.embedded`.")
    images = load_images(args.images, 60)
    if args.phone_photos:
        images = phone_sized(images)
    figures = {
        (layer, webs, workers, processes): report(
            args, layer, webs, workers, processes, one_run(args, layer, webs, workers, processes, images)
        )
        for layer in args.layer
        for webs in args.web_nodes
        for workers in args.worker_nodes
        for processes in args.concurrency
    }
    if len(figures) > 1:
        (base_layer, base_webs, base_workers, base_processes), base = next(iter(figures.items()))
        print(
            f"\nAgainst layer {base_layer}, {base_webs} web and {base_workers} worker node(s) of {base_processes} "
            "process(es), measured in this run:"
        )
        for (layer, webs, workers, processes), row in list(figures.items())[1:]:
            ratios = ", ".join(
                f"{name} {row[name]:.1f} ({row[name] / base[name]:.2f}x)"
                if base[name] >= 0.05  # a drain of 0.0 s is no baseline for a ratio
                else f"{name} {row[name]:.1f}"
                for name in row
            )
            print(f"  layer {layer}, {webs} web, {workers} worker node(s) of {processes}: {ratios}")


if __name__ == "__main__":
    main()
