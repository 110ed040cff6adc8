"""Every FHIR Bundle the portal emits, checked by a validator independent of fhir.resources (issue 41,
item 5): @medplum/core's validateResource on each bundle and on each entry (tests/scans/fhir_validator.py,
tests/fhir_validate.mjs). tests/scans/test_fhir.py checks what the bundles say; this checks that another
implementation of FHIR R4 reads them as valid, and that it does refuse a broken one."""

from __future__ import annotations

import copy
import inspect
import json
from dataclasses import asdict
from datetime import timedelta

import pytest
from django.utils import timezone

from inference.engine.decide import ASYMMETRY_ONLY_RULE
from inference.engine.pipeline import Pipeline
from inference.models import ModelVersion
from scans import fhir
from scans.models import Scan, ScanResult
from tests import factories
from tests.scans.fhir_validator import failures, missing_reason, unresolved_warnings, validate_bundles
from tests.scans.test_fhir import MEASUREMENTS, RULE, finished_scan

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(missing_reason() is not None, reason=missing_reason() or ""),
]

BASE_URL = "https://portal.example.org"
# What scans.fhir emits: every function of it that returns a Bundle is exercised below.
BUNDLE_BUILDERS = {"scan_report_bundle", "patient_record_bundle", "scan_result_transaction"}


def finished_variants(people) -> dict[str, ScanResult]:
    """A finished scan of each kind a report can describe: every label, every pattern, with and without a
    classifier, a referring physician, a photo, and results stored before repeatability or patterns."""
    version = ModelVersion.objects.create(name="resnet50-stroke-faces-v3", checkpoint="models/x.pt", sha256="0" * 64)
    v3 = {**asdict(ASYMMETRY_ONLY_RULE), "name": "asymmetry-rest-v3", "used_classifier": False}
    v3.pop("healthy_below", None)
    no_photo = finished_scan(people.patient, pattern=ScanResult.Pattern.UNDETERMINED)
    Scan.objects.filter(id=no_photo.scan_id).update(image="", image_width=0, image_height=0)
    no_photo.scan.refresh_from_db()
    return {
        "positive-central-referred": finished_scan(people.patient, physician=people.dr_alice),
        "positive-peripheral-right-severe": finished_scan(
            people.patient, pattern=ScanResult.Pattern.PERIPHERAL, affected_side="right", severity="severe"
        ),
        "positive-undetermined-without-photo": no_photo,
        "positive-before-patterns": finished_scan(people.patient, pattern=""),
        "positive-with-classifier": finished_scan(
            people.patient,
            physician=people.dr_bob,
            model_version=version,
            classifier={"status": "used", "model": version.name, "probability": 0.8123, "runtime": "openvino"},
            decision={**RULE, "name": "fused-v3", "classifier_weight": 0.6, "used_classifier": True},
        ),
        "inconclusive-rule-v3": finished_scan(
            people.patient,
            label=ScanResult.Label.INCONCLUSIVE,
            pattern=ScanResult.Pattern.UNDETERMINED,
            severity="mild",
            decision=v3,
            measurements={**MEASUREMENTS, "asymmetry_index": 0.38, "index_interval": [0.3, 0.46]},
        ),
        "negative": finished_scan(
            people.patient,
            label=ScanResult.Label.NO_PARALYSIS,
            severity="none",
            pattern="",
            affected_side="",
            score=0.1,
        ),
        # A guided exam (issue 41): its findings, as the engine gives them for a drawn central exam, and an
        # onset not known (the other scans' is three days ago: the factories').
        "exam-central-onset-unknown": exam_scan(people),
        "negative-mild-before-repeatability": finished_scan(
            people.patient,
            label=ScanResult.Label.NO_PARALYSIS,
            severity="mild",
            pattern="",
            affected_side="",
            score=0.2,
            measurements={k: v for k, v in MEASUREMENTS.items() if not k.startswith("index_")},
        ),
    }


def exam_scan(people) -> ScanResult:
    from tests.scans.test_exam import drawn_central_exam

    exam = drawn_central_exam()
    examined = Pipeline().analyze_exam_bytes(exam["rest"], {"brows_raised": [exam["brows"]], "smile": [exam["smile"]]})
    result = finished_scan(people.patient, exam=examined.exam.to_dict())
    Scan.objects.filter(id=result.scan_id).update(onset_at=None)
    result.scan.refresh_from_db()
    return result


def emitted_bundles(api, people) -> dict[str, bytes | str]:
    """Each bundle as the portal sends it: the two reads' HTTP answers and the push's body."""
    results = finished_variants(people)
    reader = api(people.alice)
    bundles: dict[str, bytes | str] = {}
    for name, result in results.items():
        response = reader.get(f"/api/v1/scans/{result.scan_id}/fhir/")
        assert response.status_code == 200, name
        bundles[f"scan-report {name}"] = response.content
        # The push's body, as scans.fhir_push._post serializes it.
        bundles[f"transaction {name}"] = fhir.scan_result_transaction(
            scan=result.scan, base_url=BASE_URL
        ).model_dump_json()
    factories.ScanFactory(patient=people.patient, status=Scan.Status.QUEUED)  # left out of the record
    record = reader.get(f"/api/v1/patients/{people.patient.id}/fhir/")
    assert record.status_code == 200
    bundles["patient-record all of the above"] = record.content
    return bundles


def test_every_bundle_builder_of_the_portal_is_covered_here():
    builders = {
        name
        for name, function in inspect.getmembers(fhir, inspect.isfunction)
        if function.__module__ == fhir.__name__
        and not name.startswith("_")
        and inspect.signature(function).return_annotation in ("Bundle", fhir.Bundle)
    }
    assert builders == BUNDLE_BUILDERS, "a new kind of Bundle: add it to emitted_bundles()"


def test_every_bundle_the_portal_emits_is_valid_fhir_r4_for_medplum(api, people):
    bundles = emitted_bundles(api, people)
    # A patient whose record holds the Patient alone, and a record of scans made days apart.
    lone_patient = factories.PatientFactory(full_name="Ana Lima", care_team=people.team)
    bundles["patient-record of the patient alone"] = (
        api(people.alice).get(f"/api/v1/patients/{lone_patient.id}/fhir/").content
    )
    earlier = finished_scan(people.other_patient, when=timezone.now() - timedelta(days=3), physician=people.dr_bob)
    bundles["patient-record two scans"] = fhir.patient_record_bundle(
        patient=people.other_patient,
        scans=[earlier.scan, finished_scan(people.other_patient, physician=people.dr_bob).scan],
        base_url=BASE_URL,
    ).model_dump_json()

    report = validate_bundles(bundles)

    assert failures(report) == {}
    # Its only warnings are the urn:uuid references it cannot type, each checked against its target.
    assert unresolved_warnings(report, bundles) == {}
    # None is empty: the script validated each of their entries on its own as well as the whole.
    for name, bundle in bundles.items():
        assert json.loads(bundle)["entry"], name


def test_the_validator_refuses_a_broken_bundle(api, people):
    """The check can fail: the same report, broken in the ways a model-free writer could break it."""
    result = finished_scan(people.patient, physician=people.dr_alice)
    good = json.loads(api(people.alice).get(f"/api/v1/scans/{result.scan_id}/fhir/").content)
    entries = {entry["resource"]["resourceType"]: i for i, entry in enumerate(good["entry"])}

    no_status = copy.deepcopy(good)
    observation = next(e["resource"] for e in no_status["entry"] if e["resource"]["resourceType"] == "Observation")
    del observation["status"]
    wrong_type = copy.deepcopy(good)
    wrong_type["entry"][entries["Patient"]]["resource"]["birthDate"] = "31/12/1950"
    wrong_type["entry"][entries["Media"]]["resource"]["width"] = "640"
    value_and_absent = copy.deepcopy(good)
    probability = next(
        e["resource"]
        for e in value_and_absent["entry"]
        if e["resource"].get("dataAbsentReason") and e["resource"]["resourceType"] == "Observation"
    )
    probability["valueQuantity"] = {"value": 0.5}
    unknown_element = copy.deepcopy(good)
    unknown_element["entry"][entries["DiagnosticReport"]]["resource"]["diagnosis"] = "facial paralysis"
    wrong_target = copy.deepcopy(good)
    patient_url = good["entry"][entries["Patient"]]["fullUrl"]
    wrong_target["entry"][entries["DiagnosticReport"]]["resource"]["result"][0] = {"reference": patient_url}
    no_bundle_type = copy.deepcopy(good)
    del no_bundle_type["type"]

    report = validate_bundles(
        {
            "good": good,
            "no status": no_status,
            "wrong type": wrong_type,
            "value and dataAbsentReason": value_and_absent,
            "unknown element": unknown_element,
            "no bundle type": no_bundle_type,
            "result is a Patient": wrong_target,
        }
    )
    found = failures(report)

    assert "good" not in found
    assert unresolved_warnings({"good": report["good"]}, {"good": good}) == {}
    assert set(found) == {"no status", "wrong type", "value and dataAbsentReason", "unknown element", "no bundle type"}
    assert any("Observation.status" in line and "entry[" in line for line in found["no status"])
    assert any("Patient.birthDate" in line for line in found["wrong type"])
    assert any("Media.width" in line for line in found["wrong type"])
    assert any("obs-6" in line for line in found["value and dataAbsentReason"])
    assert any("DiagnosticReport.diagnosis" in line for line in found["unknown element"])
    assert any("Bundle.type" in line for line in found["no bundle type"])
    # A urn:uuid reference to a resource of the wrong type is only a warning for medplum: caught here.
    (misplaced,) = {
        line
        for line in unresolved_warnings({"x": report["result is a Patient"]}, {"x": wrong_target})["x"]
        if line.startswith("Bundle:")
    }
    assert "target: Patient" in misplaced and "result[0]" in misplaced
