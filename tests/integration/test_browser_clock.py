"""One clock (issue 29 point 4): the feed, scan pages, history and admin show times in the portal's
TIME_ZONE with its name, whatever the browser's own zone; an alert card shows its latest photo's time
and age and, while unclaimed, when the next call goes out. The feed used to write the episode's start
in the browser's zone, and the pages wrote UTC without saying so."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from tests.integration.browsers import elsewhere, logged_in_page

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

STAMP = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC")


def test_every_page_writes_one_clock_with_its_name(browser, live_stack, people):
    from django.utils import timezone
    from django.utils.formats import date_format

    from alerts.services import alert_raise
    from scans.models import Scan
    from tests import factories

    def episode():
        first = factories.ScanResultFactory(scan__patient=people.patient, pattern="peripheral")
        alert = alert_raise(scan=first.scan, result=first)
        Scan.objects.filter(pk=first.scan_id).update(uploaded_at=timezone.now() - timedelta(hours=3))
        latest = factories.ScanResultFactory(scan__patient=people.patient, pattern="peripheral")
        alert_raise(scan=latest.scan, result=latest)  # joins the episode as its latest photo
        latest.scan.refresh_from_db()
        alert.refresh_from_db()
        return alert, latest.scan

    alert, latest = elsewhere(episode)
    assert alert.scan_count == 2 and alert.next_escalation_at is not None
    server = date_format(timezone.localtime(latest.uploaded_at), "DATETIME_FORMAT")
    assert STAMP.fullmatch(server)

    page = logged_in_page(browser, live_stack, "alice", timezone_id="America/New_York")  # the portal runs on UTC
    page.goto(f"{live_stack.base_url}/alerts/")
    card = page.wait_for_selector(f"li.alert[data-alert-id='{alert.id}']").inner_text()
    assert f"latest photo {server}" in card  # the latest photo's time, in the portal's zone, named
    assert re.search(r"latest photo [^(]+\((under a minute|\d+ min) ago\)", card)
    due = date_format(timezone.localtime(alert.next_escalation_at), "DATETIME_FORMAT")
    assert f"the next call goes out at {due} (in " in card
    assert not re.search(r"\d{1,2}/\d{1,2}/\d{4}", card)  # no browser-zone date left

    page.goto(f"{live_stack.base_url}/scans/{latest.id}/")
    assert f"Uploaded {server}" in page.inner_text("main")
    page.goto(f"{live_stack.base_url}/scans/")
    assert server in page.inner_text("table")
