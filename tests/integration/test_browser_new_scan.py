"""A caregiver's New Scan on a phone (issue 29 point 5), in headless Chromium against the real stack:
a photo taken from across the room is measured, a shaken one is called blurred, and a form sent back
says why at its top and keeps the photo."""

from __future__ import annotations

import re

import pytest

from tests.faces import blurred_astronaut, distant_astronaut, jpeg_bytes
from tests.integration.browsers import elsewhere, logged_in_page

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
SCAN_PAGE = re.compile(r".*/scans/\d+/$")


def upload(page, base_url: str, patient_id: int, photo) -> None:
    page.goto(f"{base_url}/scans/new/")
    page.select_option("select[name=patient]", str(patient_id))
    page.set_input_files("input[name=image] >> nth=2", str(photo))
    page.click("#new-scan-form button[type=submit]")


def test_a_distant_face_is_measured_and_a_blurred_one_called_blurred(browser, live_stack, people, tmp_path):
    """Both were "No face found"."""
    distant, shaken = tmp_path / "distant.jpg", tmp_path / "shaken.jpg"
    distant.write_bytes(jpeg_bytes(distant_astronaut(0.1)))  # 3,120 px wide, the face a tenth of it
    shaken.write_bytes(jpeg_bytes(blurred_astronaut(10)))
    caregiver = logged_in_page(browser, live_stack, "carol", viewport=PHONE)

    upload(caregiver, live_stack.base_url, people.patient.id, distant)
    caregiver.wait_for_url(SCAN_PAGE)
    caregiver.wait_for_selector(".result, .refused", timeout=60_000)
    assert caregiver.locator(".result.negative").count() == 1, caregiver.inner_text("main")[:600]

    upload(caregiver, live_stack.base_url, people.patient.id, shaken)
    caregiver.wait_for_url(SCAN_PAGE)
    refused = caregiver.wait_for_selector(".refused-reason", timeout=60_000)
    assert refused.inner_text().startswith("No face found, and the photo is very blurred: hold the phone still")


def test_a_form_sent_back_says_why_at_its_top_and_keeps_the_photo(browser, live_stack, people, tmp_path):
    """The errors sat a screen and a half below the top, and the chosen photo was gone."""
    from tests import factories

    second = elsewhere(lambda: factories.PatientFactory(full_name="Ana Lima", care_team=people.team))
    elsewhere(lambda: second.caregivers.add(people.carol.caregiver))
    photo = tmp_path / "face.jpg"
    photo.write_bytes(jpeg_bytes(distant_astronaut(0.2)))
    caregiver = logged_in_page(browser, live_stack, "carol", viewport=PHONE)
    caregiver.goto(f"{live_stack.base_url}/scans/new/")
    caregiver.select_option("select[name=patient]", str(second.id))
    caregiver.set_input_files("input[name=image] >> nth=2", str(photo))
    # While she framed the photo, Ana Lima left her care (an admin changed the patient's caregivers).
    elsewhere(lambda: second.caregivers.remove(people.carol.caregiver))
    caregiver.click("#new-scan-form button[type=submit]")

    summary = caregiver.wait_for_selector("#form-errors")
    assert "Select a valid choice" in summary.inner_text() or "Unknown patient" in summary.inner_text()
    box = summary.bounding_box()
    assert box["y"] + box["height"] <= PHONE["height"]  # on the first screen
    assert caregiver.evaluate("document.activeElement.id") == "form-errors"  # and where the reader is
    assert "face.jpg" in caregiver.inner_text("#kept-photo")

    # She chooses her own patient and starts the analysis, without choosing the photo again.
    caregiver.select_option("select[name=patient]", str(people.patient.id))
    caregiver.click("#new-scan-form button[type=submit]")
    caregiver.wait_for_url(SCAN_PAGE, timeout=5_000)
    caregiver.wait_for_selector(".result, .refused, .status.rejected", timeout=60_000)
    assert caregiver.locator(".result").count() == 1, caregiver.inner_text("main")[:800]
    assert "Maria Santos" in caregiver.inner_text("h1")


def test_a_caregiver_runs_the_exam_on_a_phone_and_a_clinician_sees_its_result_live(
    browser, live_stack, people, tmp_path
):
    """Issue 41: the guided exam from the phone's New Scan page (the photo at rest, the eyebrows raised
    and a smile, the onset not known), analysed by the real worker; the clinician's open feed gets the
    alert live, headed from the forehead in motion and saying why it is urgent."""
    from tests.scans.test_exam import drawn_central_exam

    exam = drawn_central_exam()
    files = {name: tmp_path / f"{name}.jpg" for name in exam}
    for name, path in files.items():
        path.write_bytes(exam[name])
    clinician = logged_in_page(browser, live_stack, "alice")
    clinician.goto(f"{live_stack.base_url}/alerts/")
    clinician.wait_for_selector("#connection.ok")

    caregiver = logged_in_page(browser, live_stack, "carol", viewport=PHONE)
    caregiver.goto(f"{live_stack.base_url}/scans/new/")
    assert "Raise both eyebrows as high as they go" in caregiver.inner_text("#exam-poses")
    caregiver.select_option("select[name=patient]", str(people.patient.id))
    caregiver.set_input_files("input[name=image] >> nth=2", str(files["rest"]))
    caregiver.set_input_files("input[name=brows_raised]", [str(files["brows"]), str(files["brows"])])
    caregiver.set_input_files("input[name=smile]", str(files["smile"]))
    caregiver.click("#new-scan-form button[type=submit]")
    caregiver.wait_for_url(SCAN_PAGE)
    caregiver.wait_for_selector("#lay-advice", timeout=90_000)
    assert "stroke" in caregiver.inner_text("#lay-advice")

    card = clinician.wait_for_selector("li.alert.alert-urgent", timeout=60_000)
    text = card.inner_text()
    # The drawn face at rest is inconclusive: urgent as a possible stroke, never headed the stroke pattern.
    assert ("STROKE PATTERN" in text or "POSSIBLE STROKE" in text) and "Guided exam:" in text
    assert "forehead" in text.lower()
    assert "Last seen without this weakness: not known" in text
    scan_id = elsewhere(lambda: __import__("scans.models").models.Scan.objects.latest("id").id)
    clinician.goto(f"{live_stack.base_url}/scans/{scan_id}/")
    assert "Guided exam" in clinician.inner_text("#exam") and clinician.locator("#exam meter").count() == 2
