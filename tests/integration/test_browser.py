"""Two people in two browsers: a caregiver uploads on the dashboard, a clinician's open alert feed
receives the alert live (no reload) and claims it, and the caregiver sees it claimed.

Headless Chromium (Debian's package) driven by Playwright (the `browser` fixture and the helpers are
in tests/integration/browsers.py). Set SCREENSHOTS_DIR to save screenshots of the main pages (the
README's pictures come from here).
"""

from __future__ import annotations

import time

import pytest

from tests.faces import drooped_astronaut, jpeg_bytes
from tests.integration.browsers import SocketLink, elsewhere, logged_in_page, shoot, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_an_upload_in_one_browser_arrives_live_in_another_and_is_claimed(browser, live_stack, people, tmp_path):
    photo = tmp_path / "face.jpg"
    photo.write_bytes(jpeg_bytes(drooped_astronaut()))

    clinician = logged_in_page(browser, live_stack, "alice")
    shoot(clinician, "home")
    clinician.goto(f"{live_stack.base_url}/alerts/")
    clinician.wait_for_selector("#connection.ok")  # the socket is live
    assert clinician.locator("li.alert").count() == 0

    caregiver = logged_in_page(browser, live_stack, "carol", viewport={"width": 390, "height": 844})
    caregiver.goto(f"{live_stack.base_url}/scans/new/")
    caregiver.select_option("select[name=patient]", str(people.patient.id))
    caregiver.set_input_files("input[name=image]", str(photo))
    shoot(caregiver, "new-scan-phone")
    caregiver.click("text=Start Analysis")
    caregiver.wait_for_url(f"{live_stack.base_url}/scans/*/")
    # The result appears by itself (scan.updated over the socket reloads the page).
    caregiver.wait_for_selector(".result.positive", timeout=60_000)
    assert "Positive: signs of possible facial paralysis" in caregiver.content()
    assert "not a diagnosis" in caregiver.content()
    assert caregiver.locator("#lay-advice a.button.call").count() == 1  # plain words, a number to call
    shoot(caregiver, "result-phone")

    # Meanwhile the clinician's feed got the alert without a reload.
    alert_row = clinician.wait_for_selector("li.alert.status-open", timeout=30_000)
    assert "Maria Santos" in alert_row.inner_text()
    wait_until(clinician, "document.title.startsWith('(1)')")
    # Read out to a screen reader too (the page's live region), not only sounded and shown.
    assert "Maria Santos" in clinician.inner_text("#alert-announcer")
    shoot(clinician, "alerts-live")

    caregiver.goto(f"{live_stack.base_url}/alerts/")
    caregiver.wait_for_selector("#connection.ok")
    assert caregiver.locator("button.acknowledge").count() == 0  # caregivers are informed, not asked to act

    clinician.click("button.acknowledge")
    clinician.wait_for_selector("li.alert.status-acknowledged")
    claimed = caregiver.wait_for_selector("li.alert.status-acknowledged", timeout=15_000)
    assert "Claimed by alice" in claimed.inner_text()

    clinician.goto(f"{live_stack.base_url}/scans/")
    assert clinician.locator("tr.positive").count() == 1
    shoot(clinician, "history")
    clinician.click("tr.positive a")
    clinician.wait_for_selector("table.measurements")
    shoot(clinician, "scan-detail")
    clinician.goto(f"{live_stack.base_url}/scans/patients/{people.patient.id}/")
    assert clinician.locator("svg.trend.wide a.point .positive").count() == 1
    shoot(clinician, "patient")
    clinician.goto(f"{live_stack.base_url}/information/")
    shoot(clinician, "information")


def test_the_feed_recovers_a_dropped_frame_and_ignores_a_duplicate(browser, live_stack, people):
    from alerts.models import Alert
    from tests import factories

    clinician = logged_in_page(browser, live_stack, "alice")
    clinician.goto(f"{live_stack.base_url}/alerts/")
    clinician.wait_for_selector("#connection.ok")
    # An alert written to the record but never announced: as if its frame had been dropped.
    result = factories.ScanResultFactory(scan__patient=people.patient)
    silent = Alert.objects.create(
        scan=result.scan, latest_scan=result.scan, patient=people.patient, severity="moderate", score=0.9
    )
    row = clinician.wait_for_selector(f"li.alert[data-alert-id='{silent.id}']", timeout=25_000)  # 15 s catch-up
    assert "Maria Santos" in row.inner_text()
    wait_until(clinician, "document.title.startsWith('(1)')")
    # The same alert delivered twice (a replay overlapping a live frame) is still one row.
    clinician.evaluate(
        """(id) => fetch('/api/v1/alerts/?after=' + (id - 1)).then(r => r.json()).then(page => {
        for (const alert of page.results) {
            window.dispatchEvent(new CustomEvent('portal:alert.created', {detail: {type: 'alert.created', alert}}));
        }})""",
        silent.id,
    )
    clinician.wait_for_timeout(500)
    assert clinician.locator("li.alert").count() == 1


def test_a_dashboard_signed_out_by_an_admin_goes_to_the_login_page_and_says_why(browser, live_stack, people, settings):
    from portal.credentials import revoke_credentials

    # This process acts as the admin's web process: it shares the stack's cache and channel layer.
    prefix = live_stack.env["CHANNELS_PREFIX"]
    settings.CACHES = {"default": {**settings.CACHES["default"], "KEY_PREFIX": prefix}}
    settings.CHANNEL_LAYERS = {
        "default": {
            **settings.CHANNEL_LAYERS["default"],
            "CONFIG": {**settings.CHANNEL_LAYERS["default"]["CONFIG"], "prefix": prefix},
        }
    }
    clinician = logged_in_page(browser, live_stack, "alice")
    clinician.goto(f"{live_stack.base_url}/alerts/")
    clinician.wait_for_selector("#connection.ok")
    from concurrent.futures import ThreadPoolExecutor

    # The admin's "sign out everywhere", in a thread of its own (Playwright runs an event loop in this one).
    with ThreadPoolExecutor(1) as admin:
        admin.submit(revoke_credentials, people.alice.id).result()
    clinician.wait_for_url(f"{live_stack.base_url}/login/**", timeout=15_000)
    assert "You were signed out" in clinician.content()


def test_the_feed_loses_no_alert_while_its_socket_is_down(
    browser, live_stack, people, in_memory_channels, eager_celery
):
    """The socket is cut, and kept down (every reconnect refused) while alerts are raised, escalated,
    and a routine one becomes stroke-urgent. Once it is back, every one is on the feed, in triage order,
    each sounded once. The page used to move its replay cursor from a REST list fetched at each failed
    reconnect, so what was raised meanwhile was skipped by the replay and by the catch-up, unsounded."""
    from concurrent.futures import ThreadPoolExecutor
    from datetime import timedelta

    from django.utils import timezone

    from alerts.services import alert_escalate_overdue, alert_raise
    from tests import factories

    elsewhere = ThreadPoolExecutor(1)  # Playwright runs an event loop in this thread; alert_raise publishes

    def flagged(patient, **fields):
        def work():
            result = factories.ScanResultFactory(scan__patient=patient, **fields)
            return alert_raise(scan=result.scan, result=result)

        return elsewhere.submit(work).result()

    patients = [factories.PatientFactory(care_team=people.team) for _ in range(3)]
    routine = flagged(people.patient, pattern="peripheral", severity="moderate")  # on the page from the start
    clinician = logged_in_page(browser, live_stack, "alice")
    link = SocketLink(clinician)
    clinician.goto(f"{live_stack.base_url}/alerts/")
    clinician.wait_for_selector("#connection.ok")
    clinician.wait_for_selector(f"li.alert[data-alert-id='{routine.id}']")

    link.down = True
    clinician.evaluate("window.portalLive.socket.close()")
    peripheral = flagged(patients[0], pattern="peripheral", severity="moderate")
    central = flagged(patients[1], pattern="central", severity="mild")
    review = flagged(patients[2], label="inconclusive", pattern="undetermined", severity="mild", score=0.45)
    later = timezone.now() + timedelta(minutes=20)
    assert elsewhere.submit(alert_escalate_overdue, now=later).result() >= 3
    joined = flagged(people.patient, pattern="central", severity="moderate")  # the routine alert, now urgent
    assert joined.id == routine.id
    link.wait_refused(clinician, after=link.refused)  # a reconnect refused after all of it (the old code's fetch)
    link.down = False

    expected = [central.id, routine.id, peripheral.id, review.id]  # urgent (newest first), routine, review
    shown, deadline = [], time.monotonic() + 40  # the reconnect's backoff, or the 15 s catch-up
    while shown != expected and time.monotonic() < deadline:
        clinician.wait_for_timeout(250)
        shown = clinician.evaluate(
            "[...document.querySelectorAll('#alert-feed li.alert')].map((li) => +li.dataset.alertId)"
        )
    assert shown == expected
    clinician.wait_for_selector("#connection.ok")
    clinician.wait_for_timeout(1000)  # a second delivery (the catch-up overlapping the replay) would sound again
    sounded = clinician.evaluate("window.portalLive.sounded")
    # The routine alert, on the page from the start, was called again (it became a possible stroke): the
    # event of that call sounds once.
    from alerts.models import Alert

    call_event = elsewhere.submit(lambda: Alert.objects.get(id=routine.id).call_event_id).result()
    assert sorted(sounded) == sorted(
        [f"raised:{peripheral.id}", f"raised:{central.id}", f"raised:{review.id}", f"call:{routine.id}:{call_event}"]
    )
    row = clinician.locator(f"li.alert[data-alert-id='{routine.id}']")
    assert "STROKE PATTERN" in row.inner_text()


def test_each_call_an_open_screen_is_told_of_sounds_once(browser, live_stack, people, settings):
    """Issue 40: the feed sounded each alert once per tier, so the triage desk's repeated calls and a
    re-opened alert's new calls were silent. Every call sounds once, announced with what it is."""
    from datetime import timedelta

    from django.utils import timezone

    from alerts.services import alert_acknowledge, alert_raise, alert_sweep
    from tests import factories

    start = timezone.now()

    def raise_at(moment, **fields):
        result = factories.ScanResultFactory(scan__patient=people.patient, **fields)
        return alert_raise(scan=result.scan, result=result, now=moment)

    alert = elsewhere(raise_at, start, pattern="peripheral", severity="moderate")
    clinician = logged_in_page(browser, live_stack, "alice")
    clinician.goto(f"{live_stack.base_url}/alerts/")
    clinician.wait_for_selector("#connection.ok")
    clinician.wait_for_selector(f"li.alert[data-alert-id='{alert.id}']")

    # The lead physician, the triage desk, then the triage desk again, twice (ALERT_TOP_TIER_REPEAT_MINUTES 10).
    for count, minutes in enumerate((16, 32, 43, 54), start=1):
        assert elsewhere(alert_sweep, now=start + timedelta(minutes=minutes))["escalated"] == 1
        wait_until(clinician, f"window.portalLive.sounded.length === {count}", timeout=20)
    assert "the triage desk is called again (repeat 2)" in clinician.inner_text("#alert-announcer")

    # Claimed, then a worse photo re-opens it: its calls start again, and sound.
    elsewhere(alert_acknowledge, alert_id=alert.id, user=people.alice, source="web")
    elsewhere(raise_at, start + timedelta(minutes=55), pattern="peripheral", severity="severe", score=0.97)
    wait_until(clinician, "window.portalLive.sounded.length === 5", timeout=20)
    assert "Called again: a worse photo" in clinician.inner_text("#alert-announcer")
    card = clinician.locator(f"li.alert[data-alert-id='{alert.id}']")
    assert "Called again: a worse photo" in card.inner_text()
    clinician.wait_for_timeout(1500)  # a replayed or caught-up copy of any of them sounds nothing more
    sounded = clinician.evaluate("window.portalLive.sounded")
    assert len(sounded) == len(set(sounded)) == 5
