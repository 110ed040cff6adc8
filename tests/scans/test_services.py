from __future__ import annotations

from pathlib import Path

import pytest
from django.core.exceptions import PermissionDenied
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from alerts.models import Alert, AlertEvent
from scans.analysis import scan_analyze, scan_claim
from scans.models import Scan
from scans.services import scan_create
from scans.tasks import requeue_stalled_scans
from tests import factories
from tests.faces import drooped_astronaut, jpeg_bytes

pytestmark = pytest.mark.django_db


def stored_files() -> set[Path]:
    return {path for path in Path(default_storage.location).rglob("*") if path.is_file()}


def scan_with_photo(patient, rgb, uploader=None):
    scan = factories.ScanFactory(patient=patient, uploaded_by=uploader, image=ContentFile(jpeg_bytes(rgb), "p.jpg"))
    return scan


def test_only_one_claim_wins(people):
    scan = factories.ScanFactory(patient=people.patient)
    assert scan_claim(scan_id=scan.id) is True
    assert scan_claim(scan_id=scan.id) is False
    scan.refresh_from_db()
    assert scan.status == Scan.Status.PROCESSING and scan.attempts == 1


def test_a_scan_whose_worker_died_can_be_claimed_again_after_the_stall_limit(people, settings):
    scan = factories.ScanFactory(patient=people.patient)
    assert scan_claim(scan_id=scan.id)
    settings.SCAN_STALL_SECONDS = 0
    assert scan_claim(scan_id=scan.id) is True
    scan.refresh_from_db()
    assert scan.attempts == 2


def test_analysing_twice_records_one_result_and_one_alert(people, in_memory_channels):
    scan = scan_with_photo(people.patient, drooped_astronaut(), uploader=people.carol)
    scan_analyze(scan_id=scan.id)
    scan_analyze(scan_id=scan.id)  # a redelivered task
    scan.refresh_from_db()
    assert scan.status == Scan.Status.DONE
    assert scan.result.label == "paralysis"
    assert Alert.objects.filter(scan=scan).count() == 1
    assert AlertEvent.objects.filter(alert__scan=scan, kind="raised").count() == 1


def test_a_photo_without_a_face_ends_rejected_with_an_actionable_reason(people, in_memory_channels):
    import numpy as np

    scan = scan_with_photo(people.patient, np.full((300, 300, 3), 90, dtype=np.uint8))
    scan_analyze(scan_id=scan.id)
    scan.refresh_from_db()
    assert scan.status == Scan.Status.REJECTED
    assert scan.status_reason.startswith("No face found: retake the photo")
    assert not Alert.objects.exists()


def test_a_stored_file_that_is_not_an_image_ends_rejected_not_crashed(people, in_memory_channels):
    scan = factories.ScanFactory(patient=people.patient)
    scan_analyze(scan_id=scan.id)
    scan.refresh_from_db()
    assert scan.status == Scan.Status.REJECTED


def test_the_sweeper_reenqueues_scans_stuck_in_queued(people, settings, eager_celery, in_memory_channels):
    scan = scan_with_photo(people.patient, drooped_astronaut())
    settings.SCAN_STALL_SECONDS = 0
    assert requeue_stalled_scans() == 1
    scan.refresh_from_db()
    assert scan.status == Scan.Status.DONE
    assert requeue_stalled_scans() == 0


def test_a_stroke_pattern_face_is_stored_with_its_pattern_and_raises_an_urgent_alert(people, in_memory_channels):
    from tests.faces import droop, symmetric_astronaut, symmetric_landmarks

    photo = droop(symmetric_astronaut(), symmetric_landmarks(), side="left", pixels=10)
    scan = scan_with_photo(people.patient, photo, uploader=people.carol)
    scan_analyze(scan_id=scan.id)
    scan.refresh_from_db()
    assert (scan.result.label, scan.result.pattern, scan.result.affected_side) == ("paralysis", "central", "left")
    assert scan.result.is_stroke_pattern
    alert = Alert.objects.get(scan=scan)
    assert alert.urgent and alert.pattern == "central" and alert.kind == Alert.Kind.POSITIVE


def test_a_soft_photo_keeps_its_warning_with_the_result(people, in_memory_channels):
    import cv2

    scan = scan_with_photo(people.patient, cv2.GaussianBlur(drooped_astronaut(), (0, 0), 5))
    scan_analyze(scan_id=scan.id)
    scan.refresh_from_db()
    assert scan.status == Scan.Status.DONE
    assert "soft_focus" in [w["code"] for w in scan.result.quality_warnings]


def test_the_worker_registers_the_analysis_under_its_first_name():
    """Messages queued before the task moved to scans/tasks.py still find it."""
    from portal.celery import app

    app.loader.import_default_modules()
    assert app.tasks["inference.analyze_scan"].__module__ == "scans.tasks"
    assert "alerts.tasks.notify_alert" in app.tasks and "scans.tasks.requeue_stalled_scans" in app.tasks


@pytest.mark.parametrize("uploader", ["dave", "bob"])
def test_scan_create_refuses_an_uploader_who_may_not_see_the_patient(people, uploader):
    """The one visibility check on upload: the service itself, whatever called it (API, form, a script)."""
    before = stored_files()
    with pytest.raises(PermissionDenied):
        scan_create(
            user=getattr(people, uploader), patient_id=people.patient.id, image_bytes=jpeg_bytes(drooped_astronaut())
        )
    assert not Scan.objects.exists()
    assert stored_files() == before


def test_scan_create_refuses_a_patient_that_does_not_exist(people):
    with pytest.raises(PermissionDenied):
        scan_create(user=people.triage, patient_id=10**9, image_bytes=jpeg_bytes(drooped_astronaut()))
    assert not Scan.objects.exists()


def test_scan_create_keeps_the_upload_of_a_visible_patient_queued(people):
    before = stored_files()
    scan = scan_create(user=people.carol, patient_id=people.patient.id, image_bytes=jpeg_bytes(drooped_astronaut()))
    assert scan.status == Scan.Status.QUEUED and scan.patient_id == people.patient.id
    assert stored_files() - before == {Path(default_storage.path(scan.upload.name))}


@pytest.mark.parametrize("how", ["a fault", "too many attempts"])
def test_a_failed_analysis_leaves_no_raw_upload_behind(people, in_memory_channels, monkeypatch, settings, how):
    """The raw upload (as the camera saved it, GPS included) was kept when an analysis failed before its
    decode replaced it with the clean JPEG."""
    scan = factories.ScanFactory(patient=people.patient, image="", upload=ContentFile(b"raw-with-gps", "raw.jpg"))
    raw = Path(default_storage.path(Scan.objects.get(id=scan.id).upload.name))
    assert raw.is_file()
    if how == "a fault":
        monkeypatch.setattr("scans.analysis.decode_upload", lambda *a, **k: 1 / 0)
    else:
        Scan.objects.filter(id=scan.id).update(attempts=settings.SCAN_MAX_ATTEMPTS)
    scan_analyze(scan_id=scan.id)
    scan.refresh_from_db()
    assert scan.status == Scan.Status.FAILED
    assert not raw.exists() and scan.upload.name == ""


def test_an_inconclusive_photo_urgent_for_the_clinicians_is_not_calm_for_the_caregiver():
    """Issue 40: "the care team will contact you if needed" stood above "pattern: central, the stroke
    pattern" on an inconclusive result that had raised an urgent alert."""
    from scans.models import ScanResult
    from scans.wording import lay_advice

    unsure_central = ScanResult(label=ScanResult.Label.INCONCLUSIVE, pattern=ScanResult.Pattern.CENTRAL, urgent=True)
    advice = lay_advice(unsure_central)
    assert advice.tone == "urgent" and "has been alerted" in advice.body and "if needed" not in advice.body
    unsure = ScanResult(label=ScanResult.Label.INCONCLUSIVE, pattern=ScanResult.Pattern.PERIPHERAL, urgent=False)
    assert lay_advice(unsure).tone == "attention"
