"""Dashboard pages for scans: the New Scan page (cameras, framing guide) and what a scan page says."""

from __future__ import annotations

import html
import re
from dataclasses import asdict

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from inference.engine.decide import ASYMMETRY_ONLY_RULE, REVIEW_ADVICE
from scans.models import Scan
from scans.wording import WARNING_SIGNS
from tests import factories
from tests.faces import astronaut, jpeg_bytes

pytestmark = pytest.mark.django_db

STROKE_BANNER = "Stroke pattern (lower face weak, forehead spared): contact the stroke team / emergency services now."
PERIPHERAL_BANNER = (
    "Whole-side pattern (as in Bell's palsy): a stroke is not ruled out; a clinician should see the patient today."
)
UNDETERMINED_BANNER = "Pattern undetermined: treat as a possible stroke until a clinician has seen the patient."


def test_it_offers_the_front_camera_the_back_camera_and_a_saved_photo_under_one_name(client, people):
    client.force_login(people.carol)
    page = client.get("/scans/new/").content.decode()
    every = re.findall(r'<input type="file"[^>]*>', page)
    names = [re.search(r'name="(\w+)"', tag).group(1) for tag in every]
    # The photo at rest, then the guided exam's poses (each optional, several frames in one input).
    assert names == ["image"] * 3 + ["brows_raised", "eyes_closed", "smile"]
    inputs = every[:3]
    assert all('accept="image/*"' in tag for tag in every)
    captures = [re.search(r'capture="(\w+)"', tag) for tag in inputs]
    assert [match and match.group(1) for match in captures] == ["user", "environment", None]
    assert "front camera" in page and "back camera" in page and "Choose a photo already taken" in page


def test_it_shows_how_to_frame_a_face_at_rest(client, people):
    client.force_login(people.carol)
    page = client.get("/scans/new/").content.decode()
    checklist = re.search(r'<ul class="checklist".*?</ul>', page, re.S).group(0)
    for advice in (
        "relaxed face at rest: not smiling",
        "Looking straight at the camera",
        "forehead to chin",
        "face a window",
        "level with the eyes",
        "Glasses off",
    ):
        assert advice in checklist
    assert 'src="/static/scans/framing-example.svg"' in page
    example = client.get("/static/scans/framing-example.svg")
    assert example.status_code == 200 and b"<svg" in b"".join(example.streaming_content)


def test_it_still_accepts_a_photo_from_the_camera(client, people):
    client.force_login(people.carol)
    response = client.post(
        "/scans/new/",
        {
            "patient": people.patient.id,
            "image": SimpleUploadedFile("camera.jpg", jpeg_bytes(astronaut()), "image/jpeg"),
        },
    )
    scan = Scan.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/scans/{scan.id}/"
    assert scan.patient == people.patient and scan.uploaded_by == people.carol


def test_it_refuses_two_photos_at_once_and_keeps_neither(client, people):
    photo = jpeg_bytes(astronaut())
    client.force_login(people.carol)
    response = client.post(
        "/scans/new/",
        {
            "patient": people.patient.id,
            "image": [
                SimpleUploadedFile("front.jpg", photo, "image/jpeg"),
                SimpleUploadedFile("saved.jpg", photo, "image/jpeg"),
            ],
        },
    )
    assert response.status_code == 400
    assert "Two photos were chosen" in response.content.decode()
    assert not Scan.objects.exists()


def test_a_form_sent_back_keeps_the_photo_for_its_uploader_only(client, people):
    """Sent back for the patient, the form lost the chosen photo; it now keeps it (for 30 minutes, for
    the one who chose it) and says why at its top."""
    photo = jpeg_bytes(astronaut())
    client.force_login(people.carol)
    response = client.post(
        "/scans/new/",
        {"patient": people.other_patient.id, "image": SimpleUploadedFile("camera.jpg", photo, "image/jpeg")},
    )
    page = response.content.decode()
    assert response.status_code == 400 and not Scan.objects.exists()
    assert page.index('id="form-errors"') < page.index('id="new-scan-form"')  # the errors come first
    assert "Select a valid choice" in page and "camera.jpg" in page
    token = re.search(r'name="held_photo" value="([^"]+)"', page).group(1)

    # Dave cannot send Carol's kept photo, even with its token.
    client.force_login(people.dave)
    stolen = client.post("/scans/new/", {"patient": people.other_patient.id, "held_photo": token})
    assert stolen.status_code == 400 and "choose it again" in stolen.content.decode()

    client.force_login(people.carol)
    response = client.post("/scans/new/", {"patient": people.patient.id, "held_photo": token})
    scan = Scan.objects.get()
    assert response.status_code == 302 and scan.patient == people.patient
    assert scan.upload.read() == photo
    again = client.post("/scans/new/", {"patient": people.patient.id, "held_photo": token})
    assert again.status_code == 400 and Scan.objects.count() == 1  # used once, then let go


def test_a_form_without_a_photo_says_so_at_its_top(client, people):
    client.force_login(people.carol)
    page = client.post("/scans/new/", {"patient": people.patient.id}).content.decode()
    summary = page[page.index('id="form-errors"') : page.index('id="new-scan-form"')]
    assert "Choose a photo of the face." in summary


def test_it_tells_the_caregiver_why_a_photo_was_refused_and_how_to_take_a_new_one(client, people):
    scan = factories.ScanFactory(
        patient=people.patient,
        status=Scan.Status.REJECTED,
        status_reason="No face found: retake the photo facing the camera.",
    )
    client.force_login(people.carol)
    page = client.get(f"/scans/{scan.id}/").content.decode()
    refused = re.search(r'<div class="refused" role="alert">.*?</div>', page, re.S).group(0)
    assert "No face found: retake the photo facing the camera." in refused
    link = f'<a class="button" href="/scans/new/?patient={people.patient.id}">Take a new photo</a>'
    assert link in refused
    new_scan = client.get(f"/scans/new/?patient={people.patient.id}").content.decode()
    assert f'<option value="{people.patient.id}" selected>' in new_scan


@pytest.mark.parametrize("label", ["paralysis", "inconclusive"])
@pytest.mark.parametrize(
    "pattern, banner",
    [("central", STROKE_BANNER), ("peripheral", PERIPHERAL_BANNER), ("undetermined", UNDETERMINED_BANNER)],
)
def test_it_shows_the_pattern_and_what_to_do_for_a_flagged_result(client, people, label, pattern, banner):
    result = factories.ScanResultFactory(scan__patient=people.patient, label=label, pattern=pattern)
    client.force_login(people.alice)
    page = client.get(f"/scans/{result.scan_id}/").content.decode()
    banners = [html.unescape(text) for text in re.findall(r'<p class="pattern-banner[^"]*"[^>]*>(.*?)</p>', page)]
    # An inconclusive result is a review item: its banner asks for a review, never "act now", and the
    # red stroke banner is for a positive stroke-pattern face only (it used to sit above "Inconclusive").
    assert banners == [banner if label == "paralysis" else REVIEW_ADVICE[pattern]]
    assert ('class="pattern-banner stroke" role="alert"' in page) == (pattern == "central" and label == "paralysis")


def test_a_negative_result_shows_no_pattern_banner_and_does_not_rule_a_stroke_out(client, people):
    result = factories.ScanResultFactory(scan__patient=people.patient, label="no_paralysis", pattern="")
    client.force_login(people.alice)
    page = client.get(f"/scans/{result.scan_id}/").content.decode()
    assert "pattern-banner" not in page
    assert "this does not rule out a stroke" in page


@pytest.mark.parametrize(
    "label, pattern, headline, tone",
    [
        ("paralysis", "central", "The photo shows signs that can come with a stroke", "urgent"),
        ("paralysis", "undetermined", "The photo shows signs that can come with a stroke", "urgent"),
        ("paralysis", "peripheral", "The photo shows weakness on one side of the face", "urgent"),
        # Urgent for the clinicians (a possible stroke): never calm, nor "if needed", for the caregiver.
        (
            "inconclusive",
            "central",
            "The photo could not be judged clearly, and it may show signs that can come with a stroke",
            "urgent",
        ),
        ("inconclusive", "peripheral", "The photo could not be judged clearly", "attention"),
        ("no_paralysis", "", "No signs of facial weakness were found in this photo", "calm"),
    ],
)
def test_a_caregiver_reads_plain_words_and_a_number_to_call(client, people, settings, label, pattern, headline, tone):
    settings.EMERGENCY_PHONE_NUMBER = "911"
    result = factories.ScanResultFactory(scan__patient=people.patient, label=label, pattern=pattern)
    client.force_login(people.carol)
    page = html.unescape(client.get(f"/scans/{result.scan_id}/").content.decode())
    assert f'<div class="lay-advice tone-{tone}" id="lay-advice"' in page
    assert f"<h2>{headline}</h2>" in page
    assert '<a class="button call" href="tel:911">Call 911</a>' in page
    assert WARNING_SIGNS in page
    # Nothing a caregiver cannot act on: no team she does not have, no clinicians' banner.
    assert "stroke team" not in page and "pattern-banner" not in page
    if label == "no_paralysis":
        assert "This does not rule out a stroke" in page


def test_a_clinician_reads_no_lay_wording(client, people):
    result = factories.ScanResultFactory(scan__patient=people.patient, label="paralysis", pattern="central")
    client.force_login(people.alice)
    page = client.get(f"/scans/{result.scan_id}/").content.decode()
    assert "lay-advice" not in page and STROKE_BANNER in html.unescape(page)


def test_it_shows_the_photo_quality_warnings(client, people):
    warnings = [
        {"code": "dim_light", "message": "The light was dim: take the next photo facing a window."},
        {"code": "slightly_turned", "message": "The face was slightly turned <away>."},
    ]
    result = factories.ScanResultFactory(
        scan__patient=people.patient, pattern="central", quality={"warnings": warnings}
    )
    client.force_login(people.alice)
    page = client.get(f"/scans/{result.scan_id}/").content.decode()
    box = re.search(r'<div class="quality-warnings">.*?</div>', page, re.S).group(0)
    assert re.findall(r"<li>(.*?)</li>", box) == [
        "The light was dim: take the next photo facing a window.",
        "The face was slightly turned &lt;away&gt;.",
    ]
    assert STROKE_BANNER in page and "not a diagnosis" in page


@pytest.mark.parametrize(
    "label, says",
    [
        ("inconclusive", "Sent to the patient's care team for review"),
        ("paralysis", "Sent to the patient's care team as an alert"),
    ],
)
def test_the_caregiver_is_told_a_flagged_photo_went_to_the_care_team(client, people, in_memory_channels, label, says):
    from alerts.services import alert_raise

    result = factories.ScanResultFactory(scan__patient=people.patient, label=label, pattern="undetermined")
    alert_raise(scan=result.scan, result=result)
    client.force_login(people.carol)
    page = html.unescape(client.get(f"/scans/{result.scan_id}/").content.decode())
    assert f"{says} (open)." in page


def test_the_history_marks_inconclusive_rows_as_their_own_kind(client, people):
    review = factories.ScanResultFactory(scan__patient=people.patient, label="inconclusive")
    factories.ScanResultFactory(scan__patient=people.patient, label="no_paralysis")
    client.force_login(people.alice)
    page = client.get("/scans/").content.decode()
    rows = re.findall(r'<tr class="([^"]*)">\s*<td><a href="/scans/(\d+)/', page)
    assert ("inconclusive", str(review.scan_id)) in rows
    assert [kind for kind, _ in rows].count("inconclusive") == 1


def test_it_shows_the_healthy_range_as_a_healthy_range_and_the_rule_as_applied_to_this_photo(client, people):
    """Issue 40, item 9: the page said "healthy faces at rest: below 0.41; positive at 0.42 or more",
    but 0.41 is the healthy 92.5th percentile (0.33) plus the narrowest ± h, and with this photo's
    ± 0.08 a positive needs 0.50."""
    rule = {
        **asdict(ASYMMETRY_ONLY_RULE),
        "name": "asymmetry-rest-v3",  # as stored by the rule of then
        "asymmetry_negative_below": 0.41,
        "used_classifier": False,
        "index_uncertainty": 0.08,
    }
    result = factories.ScanResultFactory(
        scan__patient=people.patient,
        label="inconclusive",
        pattern="undetermined",
        decision=rule,
        measurements={"asymmetry_index": 0.38, "index_repeatability": 0.08, "index_interval": [0.3, 0.46]},
    )
    client.force_login(people.alice)
    page = html.unescape(client.get(f"/scans/{result.scan_id}/").content.decode())
    healthy = re.search(r'<p class="small" id="healthy-range">(.*?)</p>', page, re.S).group(1)
    assert "below 0.33, 92.5% of them" in healthy
    applied = re.search(r'<p class="small" id="applied-rule">(.*?)</p>', page, re.S).group(1)
    assert "negative below 0.33, positive from 0.50, inconclusive between" in applied
    assert "healthy faces at rest: below 0.41" not in page
