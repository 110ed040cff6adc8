from __future__ import annotations

import pytest
from django.urls import reverse

from inference.engine.pipeline import ENGINE_VERSION
from scans.models import Scan
from tests import factories
from tests.faces import astronaut, drooped_astronaut, jpeg_bytes

pytestmark = pytest.mark.django_db


def upload(client, patient_id, data: bytes, **extra):
    from django.core.files.uploadedfile import SimpleUploadedFile

    payload = {"patient": patient_id, "image": SimpleUploadedFile("face.jpg", data, "image/jpeg"), **extra}
    return client.post("/api/v1/scans/", payload, format="multipart")


def test_it_accepts_an_upload_at_once_and_enqueues_the_analysis_on_commit(
    people, api, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        response = upload(
            api(people.carol),
            people.patient.id,
            jpeg_bytes(astronaut()),
            referring_physician=people.dr_alice.id,
            note="left side looked odd at breakfast",
        )
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "queued"
    assert body["url"].endswith(f"/api/v1/scans/{body['id']}/")
    assert response["Location"] == body["url"]
    assert body["referring_physician"]["full_name"] == "Dr Alice"
    assert len(callbacks) == 1  # the analysis task, sent only after the row is committed
    scan = Scan.objects.get(id=body["id"])
    assert scan.uploaded_by == people.carol and scan.image_width == 512


def test_an_upload_is_answered_in_six_queries(people, api, django_assert_max_num_queries):
    """The token (knox: the token, its user, the user's other tokens), the patient through the
    uploader's visibility, the scan's one INSERT and the audit row: no transaction opened around the
    single write, and no probe for the result a new scan cannot have (each was a round trip that an
    upload burst waited for)."""
    client = api(people.carol)
    upload(client, people.patient.id, jpeg_bytes(astronaut()))
    with django_assert_max_num_queries(6):
        response = upload(client, people.patient.id, jpeg_bytes(astronaut()))
    assert response.status_code == 202
    assert response.json()["overlay_url"] is None and response.json()["result"] is None


def test_the_upload_is_analysed_and_a_droop_raises_an_alert(
    people, api, eager_celery, in_memory_channels, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(api(people.carol), people.patient.id, jpeg_bytes(drooped_astronaut()))
    detail = api(people.carol).get(response.json()["url"]).json()
    assert detail["status"] == "done"
    assert detail["result"]["label"] == "paralysis"
    assert detail["result"]["model_version"].startswith(ENGINE_VERSION)
    assert "not a diagnosis" in detail["result"]["disclaimer"]
    assert detail["result"]["pattern"] in {"central", "peripheral", "undetermined"}
    assert detail["result"]["stroke_pattern"] is (detail["result"]["pattern"] == "central")
    assert isinstance(detail["result"]["quality_warnings"], list)
    assert detail["result"]["explanation"][0].startswith("Asymmetry index ")  # the rule's arithmetic, for the app
    assert detail["result"]["measurements"]["regions"]["mouth_corner_height"]["difference"] < 0
    assert detail["overlay_url"] and detail["alert_id"]
    assert detail["care_team_news"] == ""  # nobody has looked yet

    # The mobile app tells the caregiver what the care team found, as the web page does.
    clinician = api(people.alice)
    assert clinician.post(f"/api/v1/alerts/{detail['alert_id']}/acknowledge/").status_code == 200
    news = api(people.carol).get(response.json()["url"]).json()["care_team_news"]
    assert news.startswith("A clinician of the care team is looking at this now")
    resolved = clinician.post(f"/api/v1/alerts/{detail['alert_id']}/resolve/", {"outcome": "referred"}, format="json")
    assert resolved.status_code == 200
    news = api(people.carol).get(response.json()["url"]).json()["care_team_news"]
    assert "referred the patient on for further care" in news


@pytest.mark.parametrize(
    "data, message",
    [(b"", "empty"), (b"GIF89a not really", "not a photo"), (b"just text", "not a photo")],
)
def test_it_answers_a_bad_image_with_a_clear_400_and_saves_nothing(people, api, media_root, data, message):
    files_before = set(media_root.rglob("*"))
    response = upload(api(people.carol), people.patient.id, data)
    assert response.status_code == 400
    assert message in response.json()["image"][0]
    assert Scan.objects.count() == 0
    assert set(media_root.rglob("*")) == files_before


def test_it_rejects_a_caregiver_uploading_for_another_patient(people, api):
    response = upload(api(people.carol), people.other_patient.id, jpeg_bytes(astronaut()))
    assert response.status_code == 400
    assert response.json() == {"patient": ["Unknown patient."]}
    assert Scan.objects.count() == 0


def test_it_refuses_anonymous_uploads(people, api):
    response = upload(api(None), people.patient.id, jpeg_bytes(astronaut()))
    assert response.status_code == 401


def test_each_persona_lists_only_the_scans_it_may_see(people, api):
    mine = factories.ScanFactory(patient=people.patient)
    theirs = factories.ScanFactory(patient=people.other_patient)
    expectations = {
        "triage": {mine.id, theirs.id},
        "alice": {mine.id},
        "carol": {mine.id},
        "bob": {theirs.id},
        "dave": {theirs.id},
    }
    for persona, expected in expectations.items():
        body = api(getattr(people, persona)).get("/api/v1/scans/").json()
        assert {row["id"] for row in body["results"]} == expected, persona
        assert body["count"] == len(expected), persona


@pytest.mark.parametrize(
    "persona, allowed", [("triage", True), ("alice", True), ("carol", True), ("bob", False), ("dave", False)]
)
def test_scan_detail_and_its_image_are_served_only_to_those_allowed(people, api, persona, allowed):
    scan = factories.ScanFactory(patient=people.patient)
    client = api(getattr(people, persona))
    detail = client.get(f"/api/v1/scans/{scan.id}/")
    image = client.get(reverse("api:scan-file", args=[scan.id, "image"]))
    assert detail.status_code == (200 if allowed else 404)
    assert image.status_code == (200 if allowed else 404)
    if allowed:
        assert b"".join(image.streaming_content) == b"\xff\xd8not-analysed"
        assert image["Cache-Control"] == "private, no-store"


def test_patient_images_are_not_reachable_through_a_public_media_url(people, api, client):
    scan = factories.ScanFactory(patient=people.patient)
    assert client.get("/media/" + scan.image.name).status_code == 404
    assert api(None).get(reverse("api:scan-file", args=[scan.id, "image"])).status_code == 401


def test_scans_filter_by_label_and_status(people, api):
    positive = factories.ScanResultFactory(scan__patient=people.patient, label="paralysis").scan
    factories.ScanResultFactory(scan__patient=people.patient, label="no_paralysis")
    factories.ScanFactory(patient=people.patient)
    client = api(people.alice)
    by_label = client.get("/api/v1/scans/?label=paralysis").json()
    assert [row["id"] for row in by_label["results"]] == [positive.id]
    queued = client.get("/api/v1/scans/?status=queued").json()
    assert queued["count"] == 1
    assert client.get("/api/v1/scans/?status=bogus").status_code == 400


def test_the_result_carries_the_caregivers_wording_for_the_mobile_app(people, api, settings):
    settings.EMERGENCY_PHONE_NUMBER = "999"
    result = factories.ScanResultFactory(scan__patient=people.patient, label="no_paralysis", pattern="")
    body = api(people.carol).get(f"/api/v1/scans/{result.scan_id}/").json()["result"]
    lay = body["lay_advice"]
    assert (lay["tone"], lay["call_number"]) == ("calm", "999")
    assert "does not rule out a stroke" in lay["body"]
    assert "call emergency services now" in lay["warning_signs"]
