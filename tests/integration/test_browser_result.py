"""What a caregiver sees on a phone once her photo is analysed (issue 29), in headless Chromium.

The result must always arrive: an analysis that ends before the scan page's socket opens (0.3 s on
this machine, before the page had loaded) used to leave the page on "Analysing..." until a reload,
as nothing else ever told it.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.integration.test_browser import browser, logged_in_page, wait_until  # noqa: F401 (the browser fixture)

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}


def elsewhere(work, *args, **kwargs):
    """Database work off this thread: Playwright runs an event loop in it, and Django's signal
    handlers that publish to the channel layer refuse to run beside one."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(work, *args, **kwargs).result()


def being_analysed(patient):
    from scans.models import Scan
    from tests import factories

    return elsewhere(factories.ScanFactory, patient=patient, status=Scan.Status.PROCESSING)


def finish_quietly(scan, **result_fields) -> None:
    """The analysis ends and its scan.updated frame reaches nobody (as for a page whose socket was
    not open yet)."""
    from scans.models import Scan
    from tests import factories

    def work():
        factories.ScanResultFactory(scan=scan, **result_fields)
        Scan.objects.filter(pk=scan.pk).update(status=Scan.Status.DONE)

    elsewhere(work)


def test_a_result_that_finished_before_the_page_listened_still_appears(browser, live_stack, people):  # noqa: F811
    scan = being_analysed(people.patient)
    link = {"down": True, "refused": 0}

    def route(socket):
        if link["down"]:
            link["refused"] += 1
            socket.close()
        else:
            socket.connect_to_server()

    caregiver = logged_in_page(browser, live_stack, "carol", viewport=PHONE)
    caregiver.route_web_socket("**/ws/alerts/**", route)
    caregiver.goto(f"{live_stack.base_url}/scans/{scan.id}/")
    caregiver.wait_for_selector("#scan-status")
    while link["refused"] == 0:  # the page tried to listen, and could not yet
        caregiver.wait_for_timeout(100)
    finish_quietly(scan, label="no_paralysis", severity="none", score=0.1)
    link["down"] = False

    # Once its socket is open the page asks for the scan's state: the result shows without a reload
    # by hand, within the reconnect's backoff.
    caregiver.wait_for_selector(".result.negative", timeout=20_000)
    assert caregiver.locator("#scan-status").count() == 0


def test_a_result_is_fetched_on_every_reconnect(browser, live_stack, people):  # noqa: F811
    scan = being_analysed(people.patient)
    link = {"down": False, "refused": 0}

    def route(socket):
        if link["down"]:
            link["refused"] += 1
            socket.close()
        else:
            socket.connect_to_server()

    caregiver = logged_in_page(browser, live_stack, "carol", viewport=PHONE)
    caregiver.route_web_socket("**/ws/alerts/**", route)
    caregiver.goto(f"{live_stack.base_url}/scans/{scan.id}/")
    wait_until(caregiver, "window.portalLive.socket && window.portalLive.socket.readyState === 1")
    link["down"] = True
    caregiver.evaluate("window.portalLive.socket.close()")  # the phone lost its network for a while
    while link["refused"] == 0:
        caregiver.wait_for_timeout(100)
    finish_quietly(scan)  # a positive result, announced while the phone was away
    link["down"] = False

    caregiver.wait_for_selector(".result.positive", timeout=20_000)
