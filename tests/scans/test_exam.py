"""A guided exam as a scan (issue 41, item 1): the photo at rest and the pose photos of one sitting,
uploaded once (a retried upload never makes two), analysed by the worker against the photo at rest,
and shown: the forehead in motion names the pattern, and with the time of onset decides the urgency."""

from __future__ import annotations

import functools

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from alerts.models import Alert
from inference.engine.face import FaceMeshDetector
from scans.models import Scan, ScanPose
from tests.faces import astronaut, astronaut_landmarks, draw_pose, droop, jpeg_bytes

pytestmark = pytest.mark.django_db


@functools.lru_cache(maxsize=1)
def drawn_central_exam() -> dict[str, bytes]:
    """The left mouth corner sagging at rest; the brows rise evenly (the forehead spared), the smile is
    weak on the left: the central (stroke) pattern."""
    rest = droop(astronaut(), astronaut_landmarks(), side="left", pixels=4)
    points = FaceMeshDetector().find(rest).faces[0]
    return {
        "rest": jpeg_bytes(rest),
        "brows": jpeg_bytes(draw_pose(rest, points, brow_lift=(10.0, 10.0))),
        "smile": jpeg_bytes(draw_pose(rest, points, corner_pull=(10.0, 3.0))),
    }


def photo(data: bytes, name: str = "face.jpg") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, "image/jpeg")


def upload_exam(client, patient_id: int, key: str = ""):
    exam = drawn_central_exam()
    payload = {
        "patient": patient_id,
        "image": photo(exam["rest"]),
        "brows_raised": [photo(exam["brows"]), photo(exam["brows"], "second.jpg")],
        "smile": [photo(exam["smile"])],
    }
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client.post("/api/v1/scans/", payload, format="multipart", **headers)


def test_an_exam_is_uploaded_once_with_its_pose_photos_however_often_it_is_retried(people, api):
    carol = api(people.carol)
    first = upload_exam(carol, people.patient.id, key="phone-7f3a")
    assert first.status_code == 202, first.json()
    assert first.json()["poses"] == {"brows_raised": 2, "smile": 1}
    again = upload_exam(carol, people.patient.id, key="phone-7f3a")
    assert again.status_code == 202 and again.json()["id"] == first.json()["id"]
    assert Scan.objects.count() == 1 and ScanPose.objects.count() == 3
    # The key is the uploader's own: another caregiver's upload with the same key is a scan of its own.
    factories_user = api(people.triage)
    assert upload_exam(factories_user, people.patient.id, key="phone-7f3a").json()["id"] != first.json()["id"]
    too_many = carol.post(
        "/api/v1/scans/",
        {"patient": people.patient.id, "image": photo(drawn_central_exam()["rest"]), "smile": [photo(b"x")] * 4},
        format="multipart",
    )
    assert too_many.status_code == 400 and "smile" in too_many.json()


def test_the_worker_names_the_pattern_from_the_forehead_in_motion_and_the_page_shows_it(
    people, api, client, eager_celery, in_memory_channels, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = upload_exam(api(people.carol), people.patient.id)
    detail = api(people.alice).get(response.json()["url"]).json()
    assert detail["status"] == "done", detail
    result = detail["result"]
    assert result["exam"]["pattern"] == "central" and result["pattern"] == "central"
    assert result["affected_side"] == "left" and result["urgent"]
    assert result["exam"]["poses"]["brows_raised"]["frames_used"] == 2
    assert Alert.objects.get(scan_id=detail["id"]).heading in {"STROKE PATTERN", "POSSIBLE STROKE"}
    assert all(row.image and not row.upload for row in ScanPose.objects.filter(scan_id=detail["id"]))

    client.force_login(people.alice)
    page = client.get(f"/scans/{detail['id']}/").content.decode()
    assert 'id="exam"' in page and "forehead" in page.lower() and "<meter" in page


def test_the_new_scan_page_asks_for_each_pose_in_plain_words_and_sends_them(people, client):
    client.force_login(people.carol)
    page = client.get("/scans/new/").content.decode()
    assert "Raise both eyebrows as high as they go" in page and 'multiple accept="image/*"' in page.replace(
        'accept="image/*" multiple', 'multiple accept="image/*"'
    )
    exam = drawn_central_exam()
    sent = client.post(
        "/scans/new/",
        {"patient": people.patient.id, "image": photo(exam["rest"]), "brows_raised": [photo(exam["brows"])]},
    )
    assert sent.status_code == 302
    assert list(ScanPose.objects.values_list("pose", "frame")) == [("brows_raised", 0)]
    refused = client.post(
        "/scans/new/",
        {"patient": people.patient.id, "image": photo(exam["rest"]), "smile": [photo(b"not a photo")]},
    )
    assert refused.status_code == 400 and "This photo could not be used" in refused.content.decode()
    assert Scan.objects.count() == 1  # nothing kept of the refused exam but the photo held for the form
