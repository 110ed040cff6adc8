"""A web process freezes what start-up built out of later garbage collections and collects its
youngest generation less often (portal/asgi.py): full collections had paused every socket of a web
node for 150-350 ms, every second or so under load. Its threads hand the GIL over every millisecond."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent

PROBE = (
    "import gc, json, sys\n"
    "before = gc.get_threshold(), sys.getswitchinterval()\n"
    "import portal.asgi\n"
    "print(json.dumps({'before': before[0], 'after': gc.get_threshold(), 'frozen': gc.get_freeze_count(),\n"
    "                  'switch_before': before[1], 'switch': sys.getswitchinterval()}))\n"
)


SETTINGS = {"WEB_GC_YOUNG_THRESHOLD", "WEB_GIL_SWITCH_INTERVAL_US"}


def probe(**env: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env={
            **{name: value for name, value in os.environ.items() if name not in SETTINGS},
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_web_process_freezes_its_start_up_and_collects_young_objects_less_often():
    found = probe()
    assert found["before"] != found["after"]  # Python's defaults until the application is loaded
    assert found["after"] == [50_000, 20, 10]
    assert found["frozen"] > 10_000  # Django, DRF, Channels and the portal's own modules


def test_the_threshold_is_a_setting():
    assert probe(WEB_GC_YOUNG_THRESHOLD="20000")["after"][0] == 20_000


def test_a_thread_of_the_web_process_holds_the_gil_for_a_millisecond_at_most():
    """A request thread whose query returned waits at most this long for an event loop busy sending frames."""
    found = probe()
    assert found["switch_before"] == 0.005  # Python's default
    assert found["switch"] == 0.001
    assert probe(WEB_GIL_SWITCH_INTERVAL_US="2500")["switch"] == 0.0025
