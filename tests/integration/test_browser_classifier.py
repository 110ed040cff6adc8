"""The shipped ResNet-50 through the whole portal, in headless Chromium: registered as `make run` does
(install_shipped_model), run by the worker process on a caregiver's upload, and shown on the
clinician's scan page with its P(paralysis), its Grad-CAM, its name and sha256 and its role. The README's
docs/screenshots/scan-classifier.png is taken here (SCREENSHOTS_DIR)."""

from __future__ import annotations

import io
import json

import pytest

from tests.faces import drooped_astronaut, jpeg_bytes
from tests.integration.browsers import elsewhere, logged_in_page, shoot

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_the_worker_runs_the_shipped_classifier_on_an_upload_and_the_scan_page_names_it(
    browser, live_stack, people, tmp_path
):
    from django.core.management import call_command

    from inference.shipped import SHIPPED_MODEL
    from scans.models import Scan

    elsewhere(call_command, "install_shipped_model", stdout=io.StringIO())
    photo = tmp_path / "face.jpg"
    photo.write_bytes(jpeg_bytes(drooped_astronaut()))

    caregiver = logged_in_page(browser, live_stack, "carol", viewport={"width": 390, "height": 844})
    caregiver.goto(f"{live_stack.base_url}/scans/new/")
    caregiver.select_option("select[name=patient]", str(people.patient.id))
    caregiver.set_input_files("input[name=image]", str(photo))
    caregiver.click("text=Start Analysis")
    caregiver.wait_for_url(f"{live_stack.base_url}/scans/*/")
    scan_id = int(caregiver.url.rstrip("/").rsplit("/", 1)[1])
    caregiver.wait_for_selector(".result", timeout=120_000)  # the worker's first scan loads the model

    result = elsewhere(lambda: Scan.objects.select_related("result").get(pk=scan_id).result)
    classifier = result.classifier
    assert classifier["status"] == "used", classifier
    assert (classifier["model"], classifier["sha256"]) == (SHIPPED_MODEL.name, SHIPPED_MODEL.sha256)
    assert 0.0 <= classifier["probability"] <= 1.0 and result.heatmap

    clinician = logged_in_page(browser, live_stack, "alice")
    clinician.goto(f"{live_stack.base_url}/scans/{scan_id}/")
    page = clinician.content()
    assert f"ResNet-50 {SHIPPED_MODEL.name} (sha256 {SHIPPED_MODEL.sha256[:12]}" in page
    assert f"P(paralysis) {classifier['probability']:.2f}" in page
    heatmap = clinician.locator("img[alt='Grad-CAM heatmap']")
    heatmap.wait_for()
    assert heatmap.evaluate("img => img.complete && img.naturalWidth > 0")  # served, and an image
    weight = json.loads(SHIPPED_MODEL.record_path.read_text())["thresholds"]["classifier_weight"]
    if weight == 0:  # validation gave it no say: the page must not suggest it decided
        assert clinician.locator("#second-reader").inner_text() == "second reader: shown, not deciding"
    else:
        assert f"weight {weight} in the decision" in page
    shoot(clinician, "scan-classifier")
