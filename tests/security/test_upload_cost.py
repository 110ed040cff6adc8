"""Uploads cannot burn the web process's CPU (issue: a 341 KB progressive JPEG with 20,000 empty scans
cost 48 s of CPU there, six at once held both cores). The web process reads headers only; the worker
decodes, under the task's time limits; the per-user limit counts what an upload costs."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import ImageFile

from inference.engine import imaging
from scans.analysis import scan_analyze
from scans.models import Scan
from scans.throttling import UploadCost
from tests import factories
from tests.faces import astronaut, jpeg_bytes, jpeg_with_empty_scans

pytestmark = pytest.mark.django_db


def upload(client, patient_id, data: bytes):
    return client.post(
        "/api/v1/scans/", {"patient": patient_id, "image": SimpleUploadedFile("face.jpg", data)}, format="multipart"
    )


@pytest.fixture
def forbid_decoding(monkeypatch):
    """forbid_decoding(): from then on, the test fails if this (the web) process decodes any pixels."""

    def refuse(self, *args, **kwargs):
        raise AssertionError("the web process decoded an image")

    return lambda: monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)


def test_a_jpeg_with_20000_empty_scans_is_refused_from_its_headers(people, api, forbid_decoding):
    hostile = jpeg_with_empty_scans(astronaut(), 20_000)
    forbid_decoding()
    assert len(hostile) < 400_000  # small on the wire, as the reviewer's was
    response = upload(api(people.carol), people.patient.id, hostile)
    assert response.status_code == 400
    assert "progressive passes" in response.json()["image"][0]
    assert not Scan.objects.exists()


def test_the_web_process_never_decodes_pixels_and_keeps_the_file_for_the_worker(people, api, forbid_decoding):
    photo = jpeg_bytes(astronaut())
    forbid_decoding()
    response = upload(api(people.carol), people.patient.id, photo)
    assert response.status_code == 202
    scan = Scan.objects.get()
    assert scan.upload and not scan.image  # the clean copy is the worker's to make
    assert (scan.image_width, scan.image_height) == (512, 512)  # from the headers
    assert response.json()["image_url"] is None


def test_the_worker_decodes_the_upload_into_the_clean_photo_and_deletes_the_file_as_sent(
    people, api, media_root, eager_celery, in_memory_channels, django_capture_on_commit_callbacks
):
    files_as_sent = set(media_root.rglob("*.bin"))
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(api(people.carol), people.patient.id, jpeg_bytes(astronaut()))
    scan = Scan.objects.get(id=response.json()["id"])
    assert scan.image and not scan.upload and len(scan.image_sha256) == 64
    assert scan.status == Scan.Status.DONE
    assert set(media_root.rglob("*.bin")) == files_as_sent


def test_a_file_whose_headers_pass_but_whose_pixels_do_not_ends_rejected_with_the_reason(
    people, api, media_root, eager_celery, in_memory_channels, django_capture_on_commit_callbacks
):
    data = bytearray(jpeg_bytes(astronaut()))
    huffman = data.index(b"\xff\xc4")  # the Huffman tables: read by the decoder, not by the header parser
    data[huffman + 4 : huffman + 21] = b"\xff" * 17
    files_as_sent = set(media_root.rglob("*.bin"))
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(api(people.carol), people.patient.id, bytes(data))
    assert response.status_code == 202
    scan = Scan.objects.get(id=response.json()["id"])
    assert scan.status == Scan.Status.REJECTED
    assert "damaged or incomplete" in scan.status_reason
    assert not scan.upload and not scan.image
    assert set(media_root.rglob("*.bin")) == files_as_sent


def test_the_upload_limit_counts_decoding_cost_not_requests(people, api, settings, monkeypatch):
    monkeypatch.setattr(UploadCost, "THROTTLE_RATES", {"uploads": "12/hour"})
    monkeypatch.setattr(imaging, "STANDARD_DECODE_WORK", 512 * 512)  # one scan of the test photo = 1 unit
    baseline, progressive = jpeg_bytes(astronaut()), jpeg_bytes(astronaut(), progressive=True)
    assert imaging.inspect_upload(progressive, max_bytes=10**8, max_pixels=10**8).cost == 10
    carol = api(people.carol)
    assert upload(carol, people.patient.id, progressive).status_code == 202  # 10 of 12
    refused = upload(carol, people.patient.id, progressive)
    assert refused.status_code == 429 and "Too many uploads" in refused.json()["detail"]
    assert [upload(carol, people.patient.id, baseline).status_code for _ in range(3)] == [202, 202, 429]
    assert Scan.objects.count() == 3


def test_the_dashboard_form_spends_the_same_allowance(people, api, client, settings, monkeypatch):
    monkeypatch.setattr(UploadCost, "THROTTLE_RATES", {"uploads": "10/hour"})
    monkeypatch.setattr(imaging, "STANDARD_DECODE_WORK", 512 * 512)
    assert upload(api(people.carol), people.patient.id, jpeg_bytes(astronaut(), progressive=True)).status_code == 202
    client.force_login(people.carol)
    page = client.post(
        "/scans/new/", {"patient": people.patient.id, "image": SimpleUploadedFile("face.jpg", jpeg_bytes(astronaut()))}
    )
    assert page.status_code == 429 and "Too many uploads" in page.content.decode()


def test_a_photo_whose_analysis_never_ends_is_given_up_after_a_few_attempts(people, settings, in_memory_channels):
    from datetime import timedelta

    from django.utils import timezone

    scan = factories.ScanFactory(patient=people.patient, uploaded_by=people.carol)
    # Three workers took it and were killed at the hard time limit, one after the other.
    Scan.objects.filter(id=scan.id).update(
        status=Scan.Status.PROCESSING,
        attempts=settings.SCAN_MAX_ATTEMPTS,
        started_at=timezone.now() - timedelta(hours=1),
    )
    scan_analyze(scan_id=scan.id)
    scan.refresh_from_db()
    assert scan.status == Scan.Status.FAILED
    assert f"tried {settings.SCAN_MAX_ATTEMPTS} times" in scan.status_reason
