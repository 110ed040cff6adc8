"""FHIR R4 (scans/fhir.py, scans/fhir_push.py): a finished scan and a patient's record as Bundles that parse
back into fhir.resources' R4B models, with the same permissions and audit trail as the JSON API; and the
push of each finished result to a FHIR server (tests/fhir_server.py) that may fail first, or store a
bundle and lose its answer, without anything lost or created twice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.core.files.base import ContentFile
from django.urls import resolve
from django.utils import timezone
from fhir.resources.R4B.bundle import Bundle

from inference.engine.decide import ASYMMETRY_ONLY_RULE
from inference.models import ModelVersion
from portal.clinical import DISCLAIMER
from portal.models import AuditEvent
from scans import fhir
from scans.analysis import scan_record_result
from scans.apis import ScanFhirApi
from scans.fhir_push import FhirPushFailed, fhir_push_due_ids, fhir_push_send, push_fhir_result
from scans.models import FhirPush, Scan, ScanResult
from scans.tasks import push_unsent_fhir_results
from tests import factories
from tests.fhir_server import RecordingFhirServer

pytestmark = pytest.mark.django_db

PHOTO = b"\xff\xd8maria-photo-bytes"

# A result as the engine stores it (inference/engine/measure.py Measurements.as_dict, decide.py).
MEASUREMENTS = {
    "regions": {
        "brow_height": {"right": 21.4, "left": 20.9, "difference": -0.5},
        "eye_opening": {"right": 9.8, "left": 10.6, "difference": 0.8},
        "mouth_corner_height": {"right": -61.2, "left": -64.5, "difference": -3.3},
        "mouth_excursion": {"right": 24.1, "left": 21.7, "difference": -2.4},
        "nasolabial": {"right": 27.5, "left": 29.9, "difference": 2.4},
        "lip_line_tilt_deg": {"right": 0.0, "left": -3.6, "difference": -3.6},
        "mouth_deviation": {"right": 0.0, "left": -2.2, "difference": -2.2},
    },
    "asymmetry_index": 0.84,
    "index_repeatability": 0.09,
    "index_interval": [0.75, 0.93],
    "severity": "moderate",
    "affected_side": "left",
    "mm_per_pixel": 0.11921,
    "scale_source": "iris",
    "roll_deg": 1.2,
    "yaw": 0.02,
    "pitch": 0.51,
    "lean": -0.84,
    "upper_face": {"lower_lid": 0.011, "eye_aperture": 0.05, "brow_to_lid": 0.04, "involvement": 0.011},
    "units": {
        "brow_height": "mm",
        "eye_opening": "mm",
        "mouth_corner_height": "mm",
        "mouth_excursion": "mm",
        "nasolabial": "mm",
        "lip_line_tilt_deg": "degrees",
        "mouth_deviation": "mm",
    },
}
RULE = {
    "name": "asymmetry-rest-v2",
    "asymmetry_positive_at": 0.49,
    "asymmetry_negative_below": 0.39,
    "fused_positive_at": 0.5,
    "fused_negative_below": 0.5,
    "classifier_weight": 0.0,
    "asymmetry_score_width": 0.35,
    "pattern_peripheral_at": 0.023,
    "pattern_central_below": 0.018,
    "used_classifier": False,
}
NO_CLASSIFIER = {"status": "absent", "detail": "No trained classifier is active; the asymmetry rule decided alone."}


def finished_scan(patient, *, when=None, physician=None, **result_fields) -> ScanResult:
    fields = {
        "label": ScanResult.Label.PARALYSIS,
        "score": 0.72,
        "severity": ScanResult.Severity.MODERATE,
        "affected_side": "left",
        "pattern": ScanResult.Pattern.CENTRAL,
        "measurements": MEASUREMENTS,
        "classifier": NO_CLASSIFIER,
        "decision": RULE,
        "engine_version": "engine-2026.11",
        **result_fields,
    }
    result = factories.ScanResultFactory(
        scan__patient=patient,
        scan__referring_physician=physician,
        scan__image=ContentFile(PHOTO, name="photo.jpg"),
        scan__note="droop at breakfast",
        **fields,
    )
    if when is not None:
        Scan.objects.filter(id=result.scan_id).update(uploaded_at=when)
        result.scan.refresh_from_db()
    return result


def parsed(response) -> Bundle:
    """The answer, validated against the R4B models: a bundle that breaks FHIR's structure fails here."""
    return Bundle.model_validate_json(response.content)


def resources(bundle: Bundle, kind: str) -> list:
    return [entry.resource for entry in bundle.entry if entry.resource.get_resource_type() == kind]


def coding(concept, system: str) -> tuple[str, str] | None:
    return next(((c.code, c.display) for c in concept.coding if c.system == system), None)


def local_code(concept) -> str | None:
    found = coding(concept, fhir.LOCAL)
    return found[0] if found else None


def references(value) -> list[str]:
    """Every `reference` anywhere in a JSON value."""
    if isinstance(value, dict):
        found = [value["reference"]] if isinstance(value.get("reference"), str) else []
        return found + [ref for item in value.values() for ref in references(item)]
    if isinstance(value, list):
        return [ref for item in value for ref in references(item)]
    return []


def assert_references_resolve(bundle: Bundle) -> None:
    full_urls = [entry.fullUrl for entry in bundle.entry]
    assert len(full_urls) == len(set(full_urls)), "a resource appears twice"
    for entry in bundle.entry:
        assert entry.fullUrl == f"urn:uuid:{entry.resource.id}"
    refs = references(json.loads(bundle.model_dump_json()))
    assert refs and set(refs) <= set(full_urls), set(refs) - set(full_urls)


@pytest.fixture
def maria(people):
    return finished_scan(people.patient, physician=people.dr_alice)


# --- GET /api/v1/scans/{id}/fhir/ ---------------------------------------------------------------


# The resources of one positive scan's report with a referring physician.
ONE_REPORT = {
    "Patient": 1,
    "Practitioner": 1,
    "ServiceRequest": 1,
    "DiagnosticReport": 1,
    # index, 7 regions, score, pattern, severity, affected side, classifier probability, the time of onset
    # (issue 41: a time, or "unknown"), possible stroke (true or false, with why)
    "Observation": 15,
    "Device": 1,
    "Media": 1,
}


def test_the_fhir_route_is_not_taken_by_the_file_route():
    match = resolve("/api/v1/scans/12/fhir/")
    assert match.url_name == "scan-fhir" and match.func.view_class is ScanFhirApi
    assert resolve("/api/v1/scans/12/image/").url_name == "scan-file"


def test_it_answers_a_finished_scan_as_a_fhir_r4_bundle(api, people, maria):
    response = api(people.alice).get(f"/api/v1/scans/{maria.scan_id}/fhir/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/fhir+json"
    assert response["Content-Disposition"] == f'attachment; filename="scan-{maria.scan_id}-fhir.json"'
    assert response["Cache-Control"] == "private, no-store"
    bundle = parsed(response)
    assert bundle.type == "collection"
    kinds = [entry.resource.get_resource_type() for entry in bundle.entry]
    assert kinds[0] == "Patient"
    assert {kind: kinds.count(kind) for kind in set(kinds)} == ONE_REPORT
    assert_references_resolve(bundle)


def test_the_patient_carries_the_mrn_and_the_requester_is_the_referring_physician(api, people, maria, settings):
    bundle = parsed(api(people.alice).get(f"/api/v1/scans/{maria.scan_id}/fhir/"))
    (patient,) = resources(bundle, "Patient")
    (mrn,) = patient.identifier
    assert (mrn.system, mrn.value) == (settings.FHIR_MRN_SYSTEM, people.patient.mrn)
    assert coding(mrn.type, fhir.V2_0203) == ("MR", "Medical record number")
    assert patient.name[0].text == "Maria Santos"
    (practitioner,) = resources(bundle, "Practitioner")
    assert practitioner.name[0].text == "Dr Alice"
    (order,) = resources(bundle, "ServiceRequest")
    full_url = {entry.resource.get_resource_type(): entry.fullUrl for entry in bundle.entry}
    assert order.requester.reference == full_url["Practitioner"]
    assert order.subject.reference == full_url["Patient"]
    assert order.note[0].text == "droop at breakfast"


def test_the_report_says_screening_only_and_codes_the_label(api, people, maria):
    bundle = parsed(api(people.alice).get(f"/api/v1/scans/{maria.scan_id}/fhir/"))
    (report,) = resources(bundle, "DiagnosticReport")
    assert report.status == "final"
    assert report.issued == maria.created_at
    assert report.effectiveDateTime == maria.scan.uploaded_at
    assert DISCLAIMER in report.conclusion
    assert maria.pattern_advice in report.conclusion  # the stroke pattern's call to act
    assert coding(report.code, fhir.LOINC) == ("18748-4", "Diagnostic imaging study")
    assert coding(report.category[0], fhir.V2_0074) == ("IMG", "Diagnostic Imaging")
    assert [local_code(concept) for concept in report.conclusionCode] == ["paralysis"]
    observations = {entry.fullUrl for entry in bundle.entry if entry.resource.get_resource_type() == "Observation"}
    assert {ref.reference for ref in report.result} == observations
    (media,) = resources(bundle, "Media")
    assert report.media[0].link.reference == f"urn:uuid:{media.id}"
    (order,) = resources(bundle, "ServiceRequest")
    assert report.basedOn[0].reference == f"urn:uuid:{order.id}"


def test_each_measurement_is_an_observation_in_its_own_unit(api, people, maria):
    bundle = parsed(api(people.alice).get(f"/api/v1/scans/{maria.scan_id}/fhir/"))
    by_code = {local_code(o.code): o for o in resources(bundle, "Observation")}

    index = by_code["asymmetry-index"]
    assert float(index.valueQuantity.value) == MEASUREMENTS["asymmetry_index"]
    assert (index.valueQuantity.system, index.valueQuantity.code) == (fhir.UCUM, "1")  # a unitless index
    assert float(index.referenceRange[0].high.value) == RULE["asymmetry_negative_below"]

    for name, values in MEASUREMENTS["regions"].items():
        observation = by_code[name]
        quantity = observation.valueQuantity
        assert float(quantity.value) == values["difference"], name
        assert quantity.system == fhir.UCUM
        assert quantity.code == ("deg" if name == "lip_line_tilt_deg" else "mm"), name
        if name in fhir.BILATERAL:
            sides = {local_code(c.code): c.valueQuantity for c in observation.component}
            assert float(sides[f"{name}.right"].value) == values["right"]
            assert float(sides[f"{name}.left"].value) == values["left"]
            assert {q.code for q in sides.values()} == {"mm"}
        if quantity.code == "mm":
            assert local_code(observation.method) == "scale-iris"  # millimetres estimated from the iris
        assert observation.status == "final"
        assert coding(observation.category[0], fhir.OBSERVATION_CATEGORY) == ("imaging", "Imaging")

    assert float(by_code["screening-score"].valueQuantity.value) == maria.score
    assert local_code(by_code["pattern"].valueCodeableConcept) == "central"
    assert float(by_code["pattern"].component[0].valueQuantity.value) == MEASUREMENTS["upper_face"]["involvement"]
    assert coding(by_code["severity"].valueCodeableConcept, fhir.SNOMED) == ("6736007", "Moderate")
    assert local_code(by_code["severity"].valueCodeableConcept) == "moderate"
    assert coding(by_code["affected-side"].valueCodeableConcept, fhir.SNOMED) == ("7771000", "Left")


def test_a_result_without_a_classifier_says_so(api, people, maria):
    bundle = parsed(api(people.alice).get(f"/api/v1/scans/{maria.scan_id}/fhir/"))
    by_code = {local_code(o.code): o for o in resources(bundle, "Observation")}
    probability = by_code["classifier-probability"]
    assert probability.valueQuantity is None
    assert coding(probability.dataAbsentReason, fhir.DATA_ABSENT) == ("not-performed", "Not Performed")
    assert probability.note[0].text == NO_CLASSIFIER["detail"]
    (device,) = resources(bundle, "Device")
    assert device.deviceName[0].name == "engine-2026.11 (asymmetry only, no classifier)"
    versions = {local_code(v.type): v.value for v in device.version}
    assert versions == {"classifier-version": "none", "engine-version": "engine-2026.11", "decision-rule": RULE["name"]}
    assert "No classifier took part" in device.note[0].text
    thresholds = {local_code(p.type): float(p.valueQuantity[0].value) for p in device.property}
    assert thresholds["asymmetry_positive_at"] == 0.49 and thresholds["asymmetry_negative_below"] == 0.39
    assert all(o.device.reference == f"urn:uuid:{device.id}" for o in by_code.values())


def test_a_result_with_a_classifier_carries_its_probability_and_version(api, people):
    version = ModelVersion.objects.create(name="resnet50-stroke-faces-v3", checkpoint="models/x.pt", sha256="0" * 64)
    result = finished_scan(
        people.patient,
        model_version=version,
        classifier={"status": "used", "model": version.name, "probability": 0.8123, "runtime": "openvino"},
        decision={**RULE, "name": "fused-v3", "classifier_weight": 0.6, "used_classifier": True},
    )
    bundle = parsed(api(people.alice).get(f"/api/v1/scans/{result.scan_id}/fhir/"))
    by_code = {local_code(o.code): o for o in resources(bundle, "Observation")}
    probability = by_code["classifier-probability"].valueQuantity
    assert (float(probability.value), probability.code) == (0.8123, "1")
    (device,) = resources(bundle, "Device")
    assert device.deviceName[0].name == f"{version.name} + engine-2026.11"
    assert {local_code(v.type): v.value for v in device.version}["classifier-version"] == version.name
    assert {local_code(p.type): float(p.valueQuantity[0].value) for p in device.property}["classifier_weight"] == 0.6
    assert "Practitioner" not in [e.resource.get_resource_type() for e in bundle.entry]  # none was named


def test_a_negative_result_names_no_pattern_and_no_side(api, people):
    result = finished_scan(
        people.patient, label=ScanResult.Label.NO_PARALYSIS, severity="none", pattern="", affected_side="", score=0.1
    )
    bundle = parsed(api(people.alice).get(f"/api/v1/scans/{result.scan_id}/fhir/"))
    (report,) = resources(bundle, "DiagnosticReport")
    assert [local_code(c) for c in report.conclusionCode] == ["no_paralysis"]
    assert DISCLAIMER in report.conclusion
    by_code = {local_code(o.code): o for o in resources(bundle, "Observation")}
    assert "affected-side" not in by_code
    assert coding(by_code["pattern"].dataAbsentReason, fhir.DATA_ABSENT)[0] == "not-applicable"
    assert coding(by_code["severity"].valueCodeableConcept, fhir.SNOMED) is None  # "none" has no SNOMED code
    assert_references_resolve(bundle)


def test_the_index_carries_its_repeatability_interval(api, people, maria):
    bundle = parsed(api(people.alice).get(f"/api/v1/scans/{maria.scan_id}/fhir/"))
    index = {local_code(o.code): o for o in resources(bundle, "Observation")}["asymmetry-index"]
    (interval,) = index.component
    assert local_code(interval.code) == "asymmetry-index-repeatability"
    assert (float(interval.valueRange.low.value), float(interval.valueRange.high.value)) == (0.75, 0.93)
    assert interval.valueRange.low.code == interval.valueRange.high.code == "1"


def test_it_exports_the_healthy_range_as_a_healthy_range_and_the_rule_as_applied_to_the_photo(api, people):
    """Issue 40, item 9: 0.41 is the healthy 92.5th percentile (0.33) plus the narrowest ± h, a decision
    threshold; a record system reading 0.38 (inconclusive here) must not see it inside the healthy range."""
    v3 = {
        **asdict(ASYMMETRY_ONLY_RULE),
        "name": "asymmetry-rest-v3",
        "asymmetry_negative_below": 0.41,
        "used_classifier": False,
        "index_uncertainty": 0.08,
    }
    v3.pop("healthy_below", None)  # stored before rules carried it: the rule's name still says which fit it was
    measured = {**MEASUREMENTS, "asymmetry_index": 0.38, "index_repeatability": 0.08, "index_interval": [0.3, 0.46]}
    result = finished_scan(
        people.patient, label=ScanResult.Label.INCONCLUSIVE, measurements=measured, decision=v3, severity="mild"
    )
    bundle = parsed(api(people.alice).get(f"/api/v1/scans/{result.scan_id}/fhir/"))
    index = {local_code(o.code): o for o in resources(bundle, "Observation")}["asymmetry-index"]
    (healthy,) = index.referenceRange
    assert float(healthy.high.value) == 0.33 < float(index.valueQuantity.value)
    assert coding(healthy.type, "http://terminology.hl7.org/CodeSystem/referencerange-meaning")[0] == "normal"
    assert "0.41" not in healthy.text and "positive" not in healthy.text
    applied = {local_code(c.code): float(c.valueQuantity.value) for c in index.component if c.valueQuantity}
    assert applied == {
        "asymmetry-index-negative-below-for-this-photo": 0.33,  # 0.41 - 0.08
        "asymmetry-index-positive-from-for-this-photo": 0.5,  # 0.42 + 0.08
    }


def test_a_result_from_before_repeatability_has_no_interval(api, people):
    old = {key: value for key, value in MEASUREMENTS.items() if not key.startswith("index_")}
    result = finished_scan(people.patient, measurements=old)
    bundle = parsed(api(people.alice).get(f"/api/v1/scans/{result.scan_id}/fhir/"))
    index = {local_code(o.code): o for o in resources(bundle, "Observation")}["asymmetry-index"]
    assert float(index.valueQuantity.value) == 0.84 and not index.component


def test_a_flagged_result_from_before_patterns_says_its_pattern_is_unknown(api, people):
    result = finished_scan(people.patient, pattern="")
    bundle = parsed(api(people.alice).get(f"/api/v1/scans/{result.scan_id}/fhir/"))
    by_code = {local_code(o.code): o for o in resources(bundle, "Observation")}
    assert coding(by_code["pattern"].dataAbsentReason, fhir.DATA_ABSENT)[0] == "unknown"


def test_the_photo_is_media_at_the_permission_checked_image_url(api, people, maria):
    client = api(people.alice)
    bundle = parsed(client.get(f"/api/v1/scans/{maria.scan_id}/fhir/"))
    (media,) = resources(bundle, "Media")
    url = f"http://testserver/api/v1/scans/{maria.scan_id}/image/"
    assert media.content.url == url
    assert media.content.contentType == "image/jpeg"
    assert coding(media.type, fhir.MEDIA_TYPE) == ("image", "Image")
    assert b"".join(client.get(url).streaming_content) == PHOTO
    assert api(people.bob).get(url).status_code == 404  # the link itself checks who asks


@pytest.mark.parametrize("accept", ["application/fhir+json", "application/json", "*/*"])
def test_it_answers_fhir_json_whatever_the_client_accepts(api, people, maria, accept):
    response = api(people.carol).get(f"/api/v1/scans/{maria.scan_id}/fhir/", HTTP_ACCEPT=accept)
    assert response.status_code == 200 and response["Content-Type"] == "application/fhir+json"
    parsed(response)


@pytest.mark.parametrize("persona", ["bob", "dave"])
def test_it_hides_a_scan_from_those_who_may_not_see_the_patient(api, people, maria, persona):
    response = api(getattr(people, persona)).get(f"/api/v1/scans/{maria.scan_id}/fhir/")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert b"Maria" not in response.content and people.patient.mrn.encode() not in response.content


def test_it_refuses_anonymous_callers(api, maria):
    assert api(None).get(f"/api/v1/scans/{maria.scan_id}/fhir/").status_code == 401


@pytest.mark.parametrize("status", [Scan.Status.QUEUED, Scan.Status.PROCESSING, Scan.Status.REJECTED])
def test_a_scan_without_a_result_is_a_conflict(api, people, status):
    scan = factories.ScanFactory(patient=people.patient, status=status)
    response = api(people.alice).get(f"/api/v1/scans/{scan.id}/fhir/")
    assert response.status_code == 409
    assert response["Content-Type"] == "application/json"
    assert "no finished result" in response.json()["detail"]


# --- GET /api/v1/patients/{id}/fhir/ ------------------------------------------------------------


def test_a_patients_record_holds_every_finished_scans_report_in_time_order(api, people):
    now = timezone.now()
    # Made newest first, so the order in the bundle comes from the photos' times, not the rows' ids.
    newest = finished_scan(people.patient, when=now - timedelta(hours=1), physician=people.dr_alice)
    oldest = finished_scan(people.patient, when=now - timedelta(days=3), physician=people.dr_alice)
    middle = finished_scan(people.patient, when=now - timedelta(days=1), label="inconclusive", pattern="undetermined")
    factories.ScanFactory(patient=people.patient, status=Scan.Status.QUEUED)
    finished_scan(people.other_patient)

    response = api(people.alice).get(f"/api/v1/patients/{people.patient.id}/fhir/")
    assert response.status_code == 200 and response["Content-Type"] == "application/fhir+json"
    assert response["Content-Disposition"] == f'attachment; filename="patient-{people.patient.id}-fhir.json"'
    bundle = parsed(response)
    reports = resources(bundle, "DiagnosticReport")
    assert [r.identifier[0].value for r in reports] == [f"scan-{r.scan_id}" for r in (oldest, middle, newest)]
    assert [r.effectiveDateTime for r in reports] == sorted(r.effectiveDateTime for r in reports)
    # Shared resources once: one patient, one referring physician, one device (the same rule throughout).
    assert [len(resources(bundle, kind)) for kind in ("Patient", "Practitioner", "Device", "Media")] == [1, 1, 1, 3]
    (patient,) = resources(bundle, "Patient")
    assert patient.identifier[0].value == people.patient.mrn
    assert people.other_patient.mrn not in response.content.decode()
    assert_references_resolve(bundle)


def test_a_patient_without_finished_scans_is_a_record_of_the_patient_alone(api, people):
    bundle = parsed(api(people.carol).get(f"/api/v1/patients/{people.patient.id}/fhir/"))
    assert [entry.resource.get_resource_type() for entry in bundle.entry] == ["Patient"]


@pytest.mark.parametrize("persona", ["bob", "dave"])
def test_it_hides_a_patients_record_from_those_who_may_not_see_the_patient(api, people, maria, persona):
    response = api(getattr(people, persona)).get(f"/api/v1/patients/{people.patient.id}/fhir/")
    assert response.status_code == 404 and b"Maria" not in response.content


# --- Audit trail, schema, the scan page ----------------------------------------------------------


def test_every_fhir_read_is_audited_allowed_or_refused(api, people, maria):
    api(people.alice).get(f"/api/v1/scans/{maria.scan_id}/fhir/")
    api(people.bob).get(f"/api/v1/scans/{maria.scan_id}/fhir/")
    api(people.carol).get(f"/api/v1/patients/{people.patient.id}/fhir/")
    rows = list(
        AuditEvent.objects.order_by("id").values_list("username", "route", "action", "status_code", "patient_id")
    )
    assert rows == [
        ("alice", "api:scan-fhir", "export fhir", 200, people.patient.id),
        ("bob", "api:scan-fhir", "export fhir", 404, people.patient.id),
        ("carol", "api:patient-fhir", "export fhir", 200, people.patient.id),
    ]


def test_the_fhir_endpoints_are_in_the_openapi_schema(client):
    paths = client.get("/api/schema/?format=json").json()["paths"]
    for path in ("/api/v1/scans/{id}/fhir/", "/api/v1/patients/{id}/fhir/"):
        answers = paths[path]["get"]["responses"]
        assert list(answers["200"]["content"]) == ["application/fhir+json"], path
        assert answers["200"]["content"]["application/fhir+json"]["schema"]["properties"]["resourceType"] == {
            "type": "string",
            "enum": ["Bundle"],
        }
        assert "application/json" in answers["404"]["content"]
    assert "409" in paths["/api/v1/scans/{id}/fhir/"]["get"]["responses"]


def test_the_scan_page_offers_download_fhir_and_the_link_works_with_the_session(client, people, maria):
    client.force_login(people.alice)
    page = client.get(maria.scan.get_absolute_url()).content.decode()
    link = f"/api/v1/scans/{maria.scan_id}/fhir/"
    assert f'href="{link}"' in page and "Download FHIR" in page
    response = client.get(link)  # the browser's session, no token
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="scan-{maria.scan_id}-fhir.json"'
    parsed(response)

    client.force_login(people.bob)
    assert client.get(link).status_code == 404


def test_the_patient_page_offers_the_whole_record(client, people, maria):
    client.force_login(people.carol)
    link = f"/api/v1/patients/{people.patient.id}/fhir/"
    assert f'href="{link}"' in client.get(f"/scans/patients/{people.patient.id}/").content.decode()
    assert len(resources(parsed(client.get(link)), "DiagnosticReport")) == 1


def test_a_scan_page_without_a_result_offers_no_download(client, people):
    scan = factories.ScanFactory(patient=people.patient, status=Scan.Status.QUEUED)
    client.force_login(people.alice)
    assert "Download FHIR" not in client.get(scan.get_absolute_url()).content.decode()


# --- The push to FHIR_ENDPOINT ------------------------------------------------------------------


def analysis_like(result_fields: dict) -> SimpleNamespace:
    """What the worker's pipeline hands scan_record_result (inference/engine/pipeline.py Analysis)."""
    return SimpleNamespace(
        label="paralysis",
        score=0.72,
        severity="moderate",
        affected_side="left",
        pattern="central",
        measurements=MEASUREMENTS,
        quality={"warnings": []},
        classifier=NO_CLASSIFIER,
        decision=RULE,
        engine_version="engine-2026.11",
        overlay_jpeg=None,
        heatmap_jpeg=None,
        **result_fields,
    )


def record_result(people, django_capture_on_commit_callbacks) -> ScanResult:
    """A result recorded as the worker records it, with its on-commit work (the push among it) run."""
    scan = factories.ScanFactory(
        patient=people.patient,
        referring_physician=people.dr_alice,
        status=Scan.Status.PROCESSING,
        image=ContentFile(PHOTO, name="photo.jpg"),
    )
    with django_capture_on_commit_callbacks(execute=True):
        return scan_record_result(scan=scan, analysis=analysis_like({}), model_version=None)


@pytest.fixture
def fhir_settings(settings, in_memory_channels, eager_celery):
    settings.FHIR_AUTH_HEADER = "Bearer hospital-token"
    settings.PORTAL_BASE_URL = "https://portal.example.org"
    return settings


def test_a_recorded_result_is_pushed_as_a_transaction_bundle(fhir_settings, people, django_capture_on_commit_callbacks):
    with RecordingFhirServer() as server:
        fhir_settings.FHIR_ENDPOINT = server.url
        result = record_result(people, django_capture_on_commit_callbacks)

    push = FhirPush.objects.get(result=result)
    assert push.sent_at is not None and push.attempts == 1 and push.last_error == ""
    (request,) = server.received
    assert request.path == "/fhir"
    assert request.headers["content-type"] == "application/fhir+json"
    assert request.headers["authorization"] == "Bearer hospital-token"
    bundle = Bundle.model_validate(request.body)
    assert bundle.type == "transaction"
    assert (bundle.identifier.system, bundle.identifier.value) == (
        f"{fhir_settings.FHIR_IDENTIFIER_SYSTEM}/bundle",
        f"scan-result-{result.id}",
    )
    assert_references_resolve(bundle)
    for entry in bundle.entry:
        assert entry.request.method == "POST" and entry.request.url == entry.resource.get_resource_type()
        identifier = entry.resource.identifier[0]
        assert entry.request.ifNoneExist == f"identifier={identifier.system}|{identifier.value}"
    (media,) = resources(bundle, "Media")
    assert media.content.url == f"https://portal.example.org/api/v1/scans/{result.scan_id}/image/"
    (report,) = resources(bundle, "DiagnosticReport")
    assert DISCLAIMER in report.conclusion
    assert server.count("DiagnosticReport") == 1 and server.count("Observation") == ONE_REPORT["Observation"]


def test_nothing_is_owed_without_an_endpoint(fhir_settings, people, django_capture_on_commit_callbacks):
    fhir_settings.FHIR_ENDPOINT = ""
    result = record_result(people, django_capture_on_commit_callbacks)
    assert not FhirPush.objects.filter(result=result).exists()


def test_a_server_that_fails_first_gets_the_bundle_once_it_recovers(
    fhir_settings, people, django_capture_on_commit_callbacks
):
    with RecordingFhirServer(fail_first=2) as server:
        fhir_settings.FHIR_ENDPOINT = server.url
        result = record_result(people, django_capture_on_commit_callbacks)  # the task retries (eagerly here)

    push = FhirPush.objects.get(result=result)
    assert push.sent_at is not None and push.attempts == 3
    assert len(server.received) == 3
    assert {json.dumps(r.body, sort_keys=True) for r in server.received} == {
        json.dumps(server.received[0].body, sort_keys=True)
    }
    assert server.count("DiagnosticReport") == 1 and server.count("Patient") == 1


def test_a_bundle_stored_but_not_acknowledged_creates_nothing_twice(
    fhir_settings, people, django_capture_on_commit_callbacks
):
    with RecordingFhirServer(lose_answer_first=1) as server:
        fhir_settings.FHIR_ENDPOINT = server.url
        result = record_result(people, django_capture_on_commit_callbacks)
        assert len(server.received) == 2  # sent again after the lost answer...
        counts = {kind: server.count(kind) for kind in server.stored}
        assert counts == ONE_REPORT  # ...and every resource exists once

        # A task run again (a redelivered message, the sweep) sends nothing at all.
        assert push_fhir_result.delay(FhirPush.objects.get(result=result).id).get() == "already sent"
        assert len(server.received) == 2
    assert FhirPush.objects.get(result=result).sent_at is not None


def test_a_second_result_of_the_same_patient_reuses_the_patient_and_device(
    fhir_settings, people, django_capture_on_commit_callbacks
):
    with RecordingFhirServer() as server:
        fhir_settings.FHIR_ENDPOINT = server.url
        record_result(people, django_capture_on_commit_callbacks)
        record_result(people, django_capture_on_commit_callbacks)
    assert len(server.received) == 2
    assert [server.count(kind) for kind in ("Patient", "Practitioner", "Device", "DiagnosticReport")] == [1, 1, 1, 2]


def test_a_refused_bundle_is_not_sent_again(fhir_settings, people, django_capture_on_commit_callbacks, caplog):
    with RecordingFhirServer(refuse=True) as server:
        fhir_settings.FHIR_ENDPOINT = server.url
        result = record_result(people, django_capture_on_commit_callbacks)
        push = FhirPush.objects.get(result=result)
        assert push.refused and push.sent_at is None and push.last_error.startswith("HTTP 422")
        assert fhir_push_send(push_id=push.id) == "refused"
        assert len(server.received) == 1
    assert push.id not in fhir_push_due_ids()
    assert "refused the push" in caplog.text


@pytest.mark.parametrize("status", [401, 403, 408, 429, 503])
def test_an_expired_credential_or_a_busy_server_is_tried_again_until_it_takes_the_bundle(
    fhir_settings, people, django_capture_on_commit_callbacks, status
):
    with RecordingFhirServer(statuses_first=[status, status]) as server:
        fhir_settings.FHIR_ENDPOINT = server.url
        result = record_result(people, django_capture_on_commit_callbacks)  # the task retries (eagerly here)
    push = FhirPush.objects.get(result=result)
    assert not push.refused and push.sent_at is not None and push.attempts == 3
    assert server.count("DiagnosticReport") == 1


@pytest.mark.parametrize("status", [400, 404, 409, 412, 422])
def test_a_definitive_refusal_stops_the_retries_and_is_shown_to_admins(
    fhir_settings, people, django_capture_on_commit_callbacks, client, status
):
    with RecordingFhirServer(statuses_first=[status]) as server:
        fhir_settings.FHIR_ENDPOINT = server.url
        result = record_result(people, django_capture_on_commit_callbacks)
    push = FhirPush.objects.get(result=result)
    assert push.refused and push.sent_at is None and push.attempts == 1
    assert push.last_error.startswith(f"HTTP {status}")
    assert len(server.received) == 1

    client.force_login(factories.UserFactory(username="root", is_staff=True, is_superuser=True))
    page = client.get("/admin/").content.decode()
    assert "The hospital&#x27;s FHIR server refused 1 result(s)" in page
    assert "/admin/scans/fhirpush/?refused__exact=1" in page
    FhirPush.objects.filter(id=push.id).update(refused=False, sent_at=timezone.now())
    assert "FHIR server refused" not in client.get("/admin/").content.decode()


def test_a_send_that_fails_in_any_way_releases_its_claim(fhir_settings, people, monkeypatch):
    """Not only a network error: a bug while building the bundle, a time limit, a worker shutting down."""
    fhir_settings.FHIR_ENDPOINT = "http://127.0.0.1:9/fhir"
    push = FhirPush.objects.create(result=finished_scan(people.patient))

    def broken(**kwargs):
        raise RuntimeError("a bundle that cannot be built")

    monkeypatch.setattr("scans.fhir_push.scan_result_transaction", broken)
    with pytest.raises(RuntimeError):
        fhir_push_send(push_id=push.id)
    push.refresh_from_db()
    assert push.sending_since is None and push.sent_at is None and not push.refused
    assert push.last_error == "RuntimeError: a bundle that cannot be built"


def test_the_sweep_takes_a_push_whose_sender_died_once_its_claim_runs_out(fhir_settings, people):
    long_ago = timezone.now() - timedelta(hours=2)
    died = FhirPush.objects.create(result=finished_scan(people.patient), attempts=1)
    sending = FhirPush.objects.create(result=finished_scan(people.patient), attempts=1)
    FhirPush.objects.filter(id__in=[died.id, sending.id]).update(created_at=long_ago)
    FhirPush.objects.filter(id=died.id).update(sending_since=long_ago, last_tried_at=long_ago)
    FhirPush.objects.filter(id=sending.id).update(sending_since=timezone.now(), last_tried_at=timezone.now())

    with RecordingFhirServer() as server:
        fhir_settings.FHIR_ENDPOINT = server.url
        assert fhir_push_due_ids() == [died.id]
        assert push_unsent_fhir_results() == 1
    died.refresh_from_db()
    assert died.sent_at is not None and died.sending_since is None and died.attempts == 2
    assert len(server.received) == 1


def test_a_task_that_finds_the_push_claimed_looks_again_when_the_claim_runs_out(fhir_settings, people, monkeypatch):
    """A message redelivered after its worker died mid-send finds the dead worker's claim: it is tried
    again once that claim has run out, not dropped."""
    from celery.exceptions import Retry

    fhir_settings.FHIR_ENDPOINT = "http://127.0.0.1:9/fhir"
    fhir_settings.FHIR_TIMEOUT_SECONDS = 15
    push = FhirPush.objects.create(result=finished_scan(people.patient), sending_since=timezone.now())
    asked = {}

    def retry(**options):
        asked.update(options)
        return Retry()

    monkeypatch.setattr(push_fhir_result, "retry", retry)
    with pytest.raises(Retry):
        push_fhir_result.run(push.id)
    assert 38 <= asked["countdown"] <= 41  # the lease: 2 x 15 s + 10 s, and a second more


def test_an_unreachable_server_is_retried_and_the_row_left_for_the_sweep(fhir_settings, people):
    with RecordingFhirServer() as server:
        closed = server.url  # nothing listens there once the server is closed
    fhir_settings.FHIR_ENDPOINT = closed
    push = FhirPush.objects.create(result=finished_scan(people.patient))
    with pytest.raises(FhirPushFailed):
        fhir_push_send(push_id=push.id)
    push.refresh_from_db()
    assert push.sent_at is None and push.sending_since is None and not push.refused
    assert push.attempts == 1 and push.last_error.startswith("ConnectionError")


def test_one_worker_sends_a_push_at_a_time(fhir_settings, people):
    with RecordingFhirServer() as server:
        fhir_settings.FHIR_ENDPOINT = server.url
        push = FhirPush.objects.create(result=finished_scan(people.patient), sending_since=timezone.now())
        assert fhir_push_send(push_id=push.id) == "busy"
        # A send marked in progress long ago died with its worker: the next one takes it over.
        FhirPush.objects.filter(id=push.id).update(sending_since=timezone.now() - timedelta(hours=1))
        assert fhir_push_send(push_id=push.id) == "sent"
    assert len(server.received) == 1


def test_the_sweep_sends_what_was_never_queued_or_ran_out_of_retries(fhir_settings, people):
    long_ago = timezone.now() - timedelta(hours=2)
    never_queued = FhirPush.objects.create(result=finished_scan(people.patient))
    gave_up = FhirPush.objects.create(result=finished_scan(people.patient), attempts=9)
    still_retrying = FhirPush.objects.create(result=finished_scan(people.patient), attempts=2)
    just_made = FhirPush.objects.create(result=finished_scan(people.patient))
    FhirPush.objects.filter(id__in=[never_queued.id, gave_up.id, still_retrying.id]).update(created_at=long_ago)
    FhirPush.objects.filter(id=gave_up.id).update(last_tried_at=long_ago)
    FhirPush.objects.filter(id=still_retrying.id).update(last_tried_at=timezone.now())

    with RecordingFhirServer() as server:
        fhir_settings.FHIR_ENDPOINT = server.url
        assert fhir_push_due_ids() == [never_queued.id, gave_up.id]
        assert push_unsent_fhir_results() == 2
    assert len(server.received) == 2
    assert set(FhirPush.objects.filter(sent_at__isnull=False).values_list("id", flat=True)) == {
        never_queued.id,
        gave_up.id,
    }
    assert just_made.id not in fhir_push_due_ids()


def test_the_sweep_does_nothing_without_an_endpoint(fhir_settings, people):
    fhir_settings.FHIR_ENDPOINT = ""
    FhirPush.objects.create(result=finished_scan(people.patient))
    assert push_unsent_fhir_results() == 0


def test_an_admin_sends_a_refused_push_again_once_the_cause_is_fixed(
    fhir_settings, people, client, django_capture_on_commit_callbacks
):
    admin_user = factories.UserFactory(username="root", is_staff=True, is_superuser=True)
    push = FhirPush.objects.create(result=finished_scan(people.patient), refused=True, last_error="HTTP 422: ...")
    sent = FhirPush.objects.create(result=finished_scan(people.patient), sent_at=timezone.now())
    client.force_login(admin_user)
    assert client.get("/admin/scans/fhirpush/").status_code == 200
    with RecordingFhirServer() as server:
        fhir_settings.FHIR_ENDPOINT = server.url
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(
                "/admin/scans/fhirpush/", {"action": "send_again", "_selected_action": [push.id, sent.id]}
            )
    assert response.status_code == 302
    push.refresh_from_db()
    assert push.sent_at is not None and not push.refused
    assert len(server.received) == 1  # the one already sent is not sent again


def _settings_say(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "import portal.settings as s\n" + code],
        env={**os.environ, **env},
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
    )


def test_the_endpoint_setting_is_parsed_strictly_and_turns_the_sweep_on():
    off = _settings_say("print('push-unsent-fhir-results' in s.CELERY_BEAT_SCHEDULE, repr(s.FHIR_ENDPOINT))")
    assert off.stdout.split() == ["False", "''"], off.stderr
    on = _settings_say(
        "print('push-unsent-fhir-results' in s.CELERY_BEAT_SCHEDULE, s.FHIR_ENDPOINT)",
        FHIR_ENDPOINT="https://fhir.example.org/r4/",
    )
    assert on.stdout.split() == ["True", "https://fhir.example.org/r4"], on.stderr
    wrong = _settings_say("", FHIR_ENDPOINT="fhir.example.org")
    assert wrong.returncode != 0 and "give the server's http(s) base URL" in wrong.stderr


def test_the_report_carries_the_onset_the_urgency_and_a_guided_exams_findings(api, people):
    """Issue 41, item 5: FHIR gets the time of onset (or that it is unknown), whether the result is a
    possible stroke and why, and each pose's weaker side's share with right and left in mm."""
    from tests.scans.test_fhir_validator import exam_scan

    result = exam_scan(people)
    bundle = parsed(api(people.alice).get(f"/api/v1/scans/{result.scan_id}/fhir/"))
    observations = {observation.code.coding[0].code: observation for observation in resources(bundle, "Observation")}
    assert observations["onset"].dataAbsentReason.coding[0].code == "unknown"
    assert observations["possible-stroke"].valueBoolean is True
    assert "stroke pattern" in observations["possible-stroke"].note[0].text
    brow = observations["exam-brows_raised"]
    assert brow.valueQuantity.unit == "%" and {c.code.coding[0].code for c in brow.component} == {
        "exam-brows_raised-right",
        "exam-brows_raised-left",
    }
    assert "forehead" in observations["exam-forehead"].valueString.lower()
