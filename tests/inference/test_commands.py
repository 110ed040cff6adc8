from __future__ import annotations

import io
import json

import pytest
from django.core.files.base import ContentFile
from django.core.management import CommandError, call_command

from scans.analysis import scan_analyze
from tests import factories
from tests.faces import drooped_astronaut, jpeg_bytes

pytestmark = pytest.mark.django_db


def test_analyze_image_gives_the_same_result_as_the_portal(people, tmp_path, in_memory_channels):
    photo = jpeg_bytes(drooped_astronaut())
    path = tmp_path / "face.jpg"
    path.write_bytes(photo)
    out = io.StringIO()
    call_command("analyze_image", str(path), "--json", stdout=out)
    record = json.loads(out.getvalue())

    from inference.engine.imaging import decode_upload

    clean = decode_upload(photo, max_bytes=10**8, max_pixels=10**8)  # what an upload stores
    scan = factories.ScanFactory(patient=people.patient, image=ContentFile(clean.data, "face.jpg"))
    scan_analyze(scan_id=scan.id)
    scan.refresh_from_db()
    assert record["label"] == scan.result.label == "paralysis"
    assert record["score"] == scan.result.score
    assert record["measurements"] == scan.result.measurements
    assert record["model_version"] == scan.result.model_version_name
    assert record["explanation"] == scan.result.explanation and record["explanation"]
    assert record["pattern"] == scan.result.pattern != ""
    assert record["quality"]["warnings"] == scan.result.quality_warnings
    assert record["measurements"]["asymmetry_index"] == scan.result.measurements["asymmetry_index"]
    assert record["explanation"][-1].startswith(f"Pattern {record['pattern']}: the lower lids differ by")


def test_analyze_image_names_the_pattern_and_the_warnings_in_its_text(tmp_path):
    import cv2

    path = tmp_path / "soft.jpg"
    path.write_bytes(jpeg_bytes(cv2.GaussianBlur(drooped_astronaut(), (0, 0), 5)))
    out = io.StringIO()
    call_command("analyze_image", str(path), stdout=out)
    text = out.getvalue()
    assert "pattern " in text and "pattern -" not in text
    assert "quality: The photo is slightly out of focus" in text
    # So blurred, every canonical refit loses the face: measured by one fit, its interval widens
    # (issue 40) and reaches across the positive threshold, and the text says why.
    assert ": inconclusive" in text and "could be measured only once" in text


def test_analyze_image_reports_unreadable_files_and_fails_when_nothing_worked(tmp_path):
    bad = tmp_path / "notes.jpg"
    bad.write_text("not a photo")
    out = io.StringIO()
    with pytest.raises(CommandError, match="none of the 1 photos"):
        call_command("analyze_image", str(bad), stdout=out)
    assert "not a photo we can read" in out.getvalue()
