"""The scan page and the trend, on a phone and on a desktop (issue 29 points 8 and 9), in headless
Chromium: nothing wider than the screen, every text readable, every mark and its index apart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.integration.browsers import elsewhere, logged_in_page

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
REGIONS = {
    "brow_height": {"right": 21.4, "left": 20.9, "difference": -0.5},
    "eye_opening": {"right": 9.8, "left": 9.1, "difference": -0.7},
    "mouth_corner_height": {"right": -52.3, "left": -55.9, "difference": -3.6},
    "mouth_excursion": {"right": 24.8, "left": 22.1, "difference": -2.7},
    "nasolabial": {"right": 17.2, "left": 19.4, "difference": 2.2},
    "lip_line_tilt_deg": {"right": 0.0, "left": -4.1, "difference": -4.1},
    "mouth_deviation": {"right": 0.0, "left": 1.3, "difference": 1.3},
}


@pytest.fixture
def history(people):
    """A week of photos, the last three ten minutes apart and two refusals among them; the scan
    page's result has every measured region."""
    from scans.models import Scan
    from tests import factories

    def work():
        start = datetime.now(UTC) - timedelta(days=7)
        made = []
        for hours, index, label in ((0, 0.2, "no_paralysis"), (24 * 7 - 1, 0.9, "paralysis")):
            made.append(
                factories.ScanResultFactory(
                    scan__patient=people.patient,
                    label=label,
                    severity="moderate" if label == "paralysis" else "none",
                    pattern="central" if label == "paralysis" else "",
                    affected_side="left" if label == "paralysis" else "",
                    measurements={"asymmetry_index": index, "regions": REGIONS, "scale_source": "iris"},
                ).scan
            )
            Scan.objects.filter(id=made[-1].id).update(uploaded_at=start + timedelta(hours=hours))
        for minutes, index in ((3, 0.86), (6, 0.93)):
            scan = factories.ScanResultFactory(
                scan__patient=people.patient, measurements={"asymmetry_index": index, "regions": REGIONS}
            ).scan
            Scan.objects.filter(id=scan.id).update(uploaded_at=start + timedelta(hours=24 * 7 - 1, minutes=minutes))
        for minutes in (8, 9):
            scan = factories.ScanFactory(patient=people.patient, status=Scan.Status.REJECTED, status_reason="Too dark.")
            Scan.objects.filter(id=scan.id).update(uploaded_at=start + timedelta(hours=24 * 7 - 1, minutes=minutes))
        return made[-1]

    return elsewhere(work)


def overflow(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")


VISIBLE_CHART = """() => {
  const svg = [...document.querySelectorAll('svg.trend')].find(s => s.getBoundingClientRect().width > 0);
  const scale = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
  const texts = [...svg.querySelectorAll('text')].map(t => parseFloat(getComputedStyle(t).fontSize) * scale);
  const box = el => { const r = el.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };
  return {
    drawing: svg.classList.contains('narrow') ? 'narrow' : 'wide',
    smallest: Math.min(...texts),
    marks: [...svg.querySelectorAll('a.point > g > :first-child')].map(box),
    values: [...svg.querySelectorAll('text.value')].map(box),
  };
}"""


def overlapping(boxes: list[list[float]]) -> list[tuple[int, int]]:
    return [
        (i, j)
        for i, a in enumerate(boxes)
        for j, b in enumerate(boxes[i + 1 :], i + 1)
        if a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
    ]


@pytest.mark.parametrize(("user", "viewport", "drawing"), [("carol", PHONE, "narrow"), ("alice", DESKTOP, "wide")])
def test_the_scan_page_fits_the_screen_and_leads_to_a_readable_trend(
    browser, live_stack, people, history, user, viewport, drawing
):
    page = logged_in_page(browser, live_stack, user, viewport=viewport)
    page.goto(f"{live_stack.base_url}/scans/{history.id}/")
    page.wait_for_selector("table.measurements")
    assert overflow(page) <= 0  # the page was 425 px wide in a 390 px phone

    # A tilt or an offset is one value for the face, not a right and a left.
    tilt = page.locator("table.measurements tr", has_text="Lip line tilt")
    assert tilt.locator("td").count() == 2 and "-4.1 °" in tilt.inner_text()
    assert page.locator("table.measurements tr", has_text="Nose wing").locator("td").count() == 4

    # From the scan to the patient's trend in one tap.
    page.click("#patient-link")
    page.wait_for_url(f"**/scans/patients/{people.patient.id}/#trend")
    chart = page.evaluate(VISIBLE_CHART)
    assert overflow(page) <= 0
    assert chart["drawing"] == drawing
    assert chart["smallest"] >= 11, chart["smallest"]  # about 6 px on a phone before
    assert len(chart["marks"]) == 6
    assert overlapping(chart["marks"]) == []  # three photos ten minutes apart, two refusals: all apart
    assert len(chart["values"]) >= 2 and overlapping(chart["values"]) == []
