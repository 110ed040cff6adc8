"""`python -m tests.integration.slow_worker -A portal worker ...`: a real Celery worker whose every
analysis takes SLOW_WORKER_DELAY_SECONDS longer, so that test_faults can kill it mid-analysis.

The pause is patched in here, in the test's own worker process: the portal's code has no test knob.
"""

from __future__ import annotations

import os
import sys
import time


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    import django

    django.setup()
    from scans import analysis

    delay = float(os.environ.get("SLOW_WORKER_DELAY_SECONDS", "2"))
    clean_photo = analysis.scan_clean_photo

    def slow_clean_photo(*, scan):
        print(f"slow worker: pausing {delay:g} s before decoding scan {scan.id}", file=sys.stderr, flush=True)
        time.sleep(delay)  # after the claim, before the photo is decoded: as a slow analysis would be
        return clean_photo(scan=scan)

    analysis.scan_clean_photo = slow_clean_photo
    from celery.__main__ import main as celery_main

    sys.argv[0] = "celery"
    sys.exit(celery_main())


if __name__ == "__main__":
    main()
