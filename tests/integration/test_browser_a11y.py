"""Every page, as each of its users sees it, through axe-core's WCAG 2.1 AA checks (issue 29 point 10).

axe-core comes from the npm registry (package.json, `make install-dev`); it runs in headless Chromium
on pages served by the real stack, on a phone for the caregiver and on a desktop for the clinician and
the admin, with results of every kind on screen: a serious or critical violation anywhere fails.
"""

from __future__ import annotations

import pytest

from tests.integration.browsers import PASSWORD, axe_violations, elsewhere, flagged, logged_in_page

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


@pytest.fixture
def scans(people):
    """A patient with a result of every kind: urgent stroke pattern, peripheral, review, negative,
    refused and still being analysed; and an admin."""
    from scans.models import Scan
    from tests import factories

    urgent = flagged(people.patient, label="paralysis", pattern="central", severity="moderate", score=0.9)
    review = flagged(people.patient, label="inconclusive", pattern="undetermined", severity="mild", score=0.45)

    def work():
        peripheral = factories.ScanResultFactory(scan__patient=people.patient, pattern="peripheral")
        negative = factories.ScanResultFactory(
            scan__patient=people.patient, label="no_paralysis", severity="none", score=0.1
        )
        refused = factories.ScanFactory(
            patient=people.patient, status=Scan.Status.REJECTED, status_reason="The photo is too dark."
        )
        pending = factories.ScanFactory(patient=people.patient, status=Scan.Status.PROCESSING)
        factories.UserFactory(username="root", is_staff=True, is_superuser=True)
        return [urgent.scan_id, review.scan_id, peripheral.scan_id, negative.scan_id, refused.id, pending.id]

    return elsewhere(work)


def violations_on(page, base_url: str, paths: list[str]) -> list[str]:
    found = []
    for path in paths:
        response = page.goto(f"{base_url}{path}")
        assert response.status in (200, 404), f"{path}: {response.status}"
        page.wait_for_load_state("networkidle")
        found += axe_violations(page)
    return found


def test_no_page_has_a_serious_accessibility_violation(browser, live_stack, people, scans):
    patient_page = f"/scans/patients/{people.patient.id}/"
    scan_pages = [f"/scans/{scan_id}/" for scan_id in scans]
    found = []

    anonymous = browser.new_context(viewport=PHONE).new_page()
    found += violations_on(anonymous, live_stack.base_url, ["/login/", "/login/?logged_out=1", "/information/"])

    caregiver = logged_in_page(browser, live_stack, "carol", viewport=PHONE)
    found += violations_on(
        caregiver, live_stack.base_url, ["/", "/scans/new/", "/scans/", patient_page, "/no-such-page/", *scan_pages]
    )

    # The New Scan form sent back with its errors listed at the top.
    caregiver.goto(f"{live_stack.base_url}/scans/new/")
    caregiver.select_option("select[name=patient]", str(people.patient.id))
    caregiver.click("#new-scan-form button[type=submit]")
    caregiver.wait_for_selector("#form-errors")
    found += axe_violations(caregiver)

    for viewport in (DESKTOP, PHONE):
        clinician = logged_in_page(browser, live_stack, "alice", viewport=viewport)
        found += violations_on(clinician, live_stack.base_url, ["/", "/alerts/", "/scans/", patient_page, *scan_pages])
        if viewport is DESKTOP:
            # The feed once an alert has been claimed (its card redrawn with other controls), and with
            # the resolve form open.
            clinician.goto(f"{live_stack.base_url}/alerts/")
            # Two photos in one episode: the card describes the episode (its heading and pattern), and names
            # the latest photo's pattern only as the latest photo's.
            card = clinician.locator("li.alert").first
            text = card.inner_text()
            assert "STROKE PATTERN" in text and "Pattern: Central" in text and "(latest photo: Undetermined)" in text
            clinician.locator("li.alert button", has_text="Acknowledge").first.click()
            clinician.wait_for_selector("li.alert.status-acknowledged")
            found += axe_violations(clinician)
            clinician.locator("li.alert button", has_text="Resolve").first.click()
            clinician.wait_for_selector(".resolve-form")
            found += axe_violations(clinician)

    admin = browser.new_context(viewport=DESKTOP).new_page()
    admin.goto(f"{live_stack.base_url}/admin/login/")
    admin.fill("input[name=username]", "root")
    admin.fill("input[name=password]", PASSWORD)
    admin.click("input[type=submit]")
    admin.wait_for_url(f"{live_stack.base_url}/admin/")
    found += violations_on(
        admin,
        live_stack.base_url,
        [
            "/admin/",
            "/admin/portal/patient/",
            f"/admin/portal/patient/{people.patient.id}/change/",
            "/admin/portal/careteam/",
            f"/admin/portal/careteam/{people.team.id}/change/",
            "/admin/scans/scan/",
            f"/admin/scans/scan/{scans[0]}/change/",
            "/admin/alerts/alert/",
            "/admin/inference/modelversion/",
        ],
    )
    assert found == [], "\n".join(found)
