"""FHIR R4 for finished scans: the report a hospital's record system can take (docs/fhir.md).

Built with the R4B models of `fhir.resources` (R4B is R4 with corrections; every resource used here has
the same shape in R4), never as hand-written dictionaries: a resource that breaks the specification's
structure fails here, where it is made. Pure reads: callers pass scans they have already checked the
user may see (scans.selectors), and the base URL the photo's link is made from.

One scan gives: the Patient (MRN as identifier), the referring Practitioner and the ServiceRequest that
names them, the DiagnosticReport, its Observations (asymmetry index, each regional measurement, the
screening score, pattern, severity, affected side, classifier probability), the Device (model version
and decision rule) and the photo as Media. Every resource carries an identifier in this deployment's
namespace, and its bundle fullUrl is a UUID derived from that identifier: the same resource has the
same fullUrl in every bundle, so a patient's record lists a shared resource once, and a transaction
sent twice creates nothing twice (each entry is a conditional create on its identifier).
"""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from fhir.resources.R4B.bundle import Bundle, BundleEntry, BundleEntryRequest
from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.device import Device
from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from fhir.resources.R4B.domainresource import DomainResource
from fhir.resources.R4B.identifier import Identifier
from fhir.resources.R4B.media import Media
from fhir.resources.R4B.observation import Observation, ObservationComponent
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.practitioner import Practitioner
from fhir.resources.R4B.servicerequest import ServiceRequest

from inference.engine.decide import REPEATABILITY_MEANING
from portal.clinical import DISCLAIMER
from portal.models import Patient as PatientRow
from portal.models import Physician
from scans.models import Scan, ScanResult
from scans.templatetags.scan_display import REGION_LABELS

# Standard code systems (each code used below was checked against its published table; docs/fhir.md).
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
V2_0074 = "http://terminology.hl7.org/CodeSystem/v2-0074"  # diagnostic service sections
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"  # identifier types
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
MEDIA_TYPE = "http://terminology.hl7.org/CodeSystem/media-type"
DATA_ABSENT = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
# The portal's own codes, for what no standard code says (every one is listed in docs/fhir.md). The
# canonical URL names the project; it is an identifier, not a page a server fetches.
LOCAL = "https://facecheck.example/fhir/CodeSystem/facial-screening"

FHIR_JSON = "application/fhir+json"

REPORT_CODE = [
    (LOINC, "18748-4", "Diagnostic imaging study"),
    (LOCAL, "facial-palsy-screening", "Facial palsy screening from a photo at rest"),
]
LABEL_DISPLAY = {
    ScanResult.Label.PARALYSIS: "Screen positive: signs of facial paralysis",
    ScanResult.Label.NO_PARALYSIS: "Screen negative: no signs of facial paralysis detected",
    ScanResult.Label.INCONCLUSIVE: "Screen inconclusive: a clinician should review the photo",
}
SEVERITY_SNOMED = {
    ScanResult.Severity.MILD: ("255604002", "Mild"),
    ScanResult.Severity.MODERATE: ("6736007", "Moderate"),
    ScanResult.Severity.SEVERE: ("24484000", "Severe"),
}
SIDE_SNOMED = {"left": ("7771000", "Left"), "right": ("24028007", "Right")}
# Regions measured on both sides (right, left and their difference); the other two are one signed figure.
BILATERAL = ("brow_height", "eye_opening", "mouth_corner_height", "mouth_excursion", "nasolabial")
REFERENCE_RANGE_MEANING = "http://terminology.hl7.org/CodeSystem/referencerange-meaning"
# The rule as applied to one photo (decide.applied_thresholds): its thresholds moved apart by its ± h.
APPLIED_CODES = ("asymmetry-index-negative-below-for-this-photo", "asymmetry-index-positive-from-for-this-photo")
APPLIED_DISPLAYS = (
    "Asymmetry index below which this photo is called negative (its rule's negative threshold less its ± h)",
    "Asymmetry index from which this photo is called positive (its rule's positive threshold plus its ± h)",
)
# The decision rule's thresholds, as Device properties (all on the unitless scales of the index and score).
RULE_THRESHOLDS = (
    "asymmetry_positive_at",
    "asymmetry_negative_below",
    "fused_positive_at",
    "fused_negative_below",
    "classifier_weight",
    "pattern_peripheral_at",
    "pattern_central_below",
    "healthy_below",
)


@dataclass(frozen=True)
class Entry:
    """One resource of a bundle with the identifier that names it (its fullUrl derives from it)."""

    resource: DomainResource
    identifier: Identifier

    @property
    def full_url(self) -> str:
        return f"urn:uuid:{self.resource.id}"

    def if_none_exist(self) -> str:
        return f"identifier={quote(self.identifier.system, safe=':/')}|{quote(self.identifier.value, safe='')}"


def _identifier(kind: str, value: str) -> Identifier:
    return Identifier(system=f"{settings.FHIR_IDENTIFIER_SYSTEM.rstrip('/')}/{kind}", value=value)


def _resource_id(identifier: Identifier) -> str:
    # Stable across requests, retries and bundles: the same identifier is always the same resource.
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{identifier.system}|{identifier.value}"))


def _entry(model, identifier: Identifier, **fields) -> Entry:
    return Entry(resource=model(id=_resource_id(identifier), identifier=[identifier], **fields), identifier=identifier)


def _ref(entry: Entry, display: str | None = None) -> dict:
    return {"reference": entry.full_url, **({"display": display} if display else {})}


def _concept(*codings: tuple[str, str, str], text: str | None = None) -> CodeableConcept:
    return CodeableConcept(
        coding=[{"system": system, "code": code, "display": display} for system, code, display in codings],
        text=text,
    )


def _local(code: str, display: str) -> tuple[str, str, str]:
    return (LOCAL, code, display)


def _quantity(value: float, unit: str) -> dict:
    """A UCUM quantity: "mm", "deg", "%", or "1" for a figure without a unit (a ratio, an index, a probability)."""
    human = {"mm": "mm", "deg": "°", "1": "1", "%": "%"}[unit]
    return {"value": value, "unit": human, "system": UCUM, "code": unit}


def _absent(code: str, display: str) -> CodeableConcept:
    return _concept((DATA_ABSENT, code, display))


# --- The resources -------------------------------------------------------------------------------


def patient_entry(patient: PatientRow) -> Entry:
    mrn = Identifier(
        use="usual",
        type=_concept((V2_0203, "MR", "Medical record number")),
        system=settings.FHIR_MRN_SYSTEM,
        value=patient.mrn,
    )
    resource = Patient(
        id=_resource_id(mrn),
        identifier=[mrn],
        name=[{"text": patient.full_name}],
        birthDate=patient.date_of_birth,
    )
    return Entry(resource=resource, identifier=mrn)


def practitioner_entry(physician: Physician) -> Entry:
    telecom = [
        {"system": system, "value": value, "use": "work"}
        for system, value in (("phone", physician.phone), ("email", physician.email))
        if value
    ]
    return _entry(
        Practitioner,
        _identifier("physician", str(physician.id)),
        name=[{"text": physician.full_name}],
        telecom=telecom or None,
    )


def device_entry(result: ScanResult) -> Entry:
    """What produced the result: the classifier version (or none), the engine and the decision rule."""
    rule = result.decision or {}
    rule_name = str(rule.get("name") or "unknown")
    used_classifier = bool(rule.get("used_classifier"))
    classifier = result.model_version.name if result.model_version_id else "none"
    # One Device per exact configuration: the same names with other thresholds are another device.
    fingerprint = hashlib.sha256(
        json.dumps([result.model_version_name, rule], sort_keys=True, default=str).encode()
    ).hexdigest()[:16]
    if used_classifier:
        note = f"Classifier {classifier} and the asymmetry measurements decided together under rule {rule_name}."
    else:
        detail = (result.classifier or {}).get("detail", "")
        note = f"No classifier took part: the asymmetry rule {rule_name} decided alone. {detail}".strip()
    properties = [
        {"type": _concept(_local(name, name.replace("_", " "))), "valueQuantity": [_quantity(rule[name], "1")]}
        for name in RULE_THRESHOLDS
        if isinstance(rule.get(name), (int, float))
    ]
    return _entry(
        Device,
        _identifier("device", f"{rule_name}-{fingerprint}"),
        deviceName=[{"name": result.model_version_name, "type": "model-name"}],
        type=_concept(_local("screening-software", "Facial palsy screening software")),
        version=[
            {"type": _concept(_local("classifier-version", "Classifier version")), "value": classifier},
            {"type": _concept(_local("engine-version", "Measurement engine version")), "value": result.engine_version},
            {"type": _concept(_local("decision-rule", "Decision rule")), "value": rule_name},
        ],
        property=properties or None,
        note=[{"text": note}],
    )


def media_entry(scan: Scan, *, patient: Entry, base_url: str) -> Entry | None:
    if not scan.image:
        return None
    return _entry(
        Media,
        _identifier("photo", f"scan-{scan.id}"),
        status="completed",
        type=_concept((MEDIA_TYPE, "image", "Image")),
        subject=_ref(patient),
        createdDateTime=scan.uploaded_at,
        width=scan.image_width or None,
        height=scan.image_height or None,
        content={
            "contentType": "image/jpeg",
            # The permission-checked view: the reader signs in to the portal to see the photo.
            "url": scan_image_url(scan, base_url=base_url),
            "title": f"scan-{scan.id}-image.jpg",
        },
    )


def scan_image_url(scan: Scan, *, base_url: str) -> str:
    return base_url.rstrip("/") + reverse("api:scan-file", args=[scan.id, "image"])


def _observation(
    result: ScanResult, code: str, display: str, *, patient: Entry, device: Entry, media: Entry | None, **fields
) -> Entry:
    scan = result.scan
    return _entry(
        Observation,
        _identifier("observation", f"scan-{scan.id}-{code}"),
        status="final",
        category=[_concept((OBSERVATION_CATEGORY, "imaging", "Imaging"))],
        code=_concept(_local(code, display)),
        subject=_ref(patient),
        effectiveDateTime=scan.uploaded_at,
        issued=result.created_at,
        device=_ref(device),
        derivedFrom=[_ref(media)] if media else None,
        **fields,
    )


def observation_entries(result: ScanResult, *, patient: Entry, device: Entry, media: Entry | None) -> list[Entry]:
    measurements = result.measurements or {}
    rule = result.decision or {}

    def observation(code: str, display: str, **fields) -> Entry:
        return _observation(result, code, display, patient=patient, device=device, media=media, **fields)

    entries = []
    if isinstance(measurements.get("asymmetry_index"), (int, float)):
        # The healthy range, as a healthy range: not the rule's negative threshold, which under the
        # interval rule is the healthy quantile plus the narrowest repeatability. How the rule was applied
        # to this photo travels beside it, as components.
        reference = None
        healthy_below = result.healthy_below
        if healthy_below is not None:
            reference = [
                {
                    "high": _quantity(healthy_below, "1"),
                    "type": _concept((REFERENCE_RANGE_MEANING, "normal", "Normal Range")),
                    "text": f"Healthy range: healthy faces at rest measure below {healthy_below:g}, 92.5% of them "
                    f"(rule {rule.get('name', '')}).",
                }
            ]
        interval = result.index_interval
        components = []
        if interval is not None:
            # index ± h, the range the label was judged on; what h states: decide.REPEATABILITY_MEANING.
            components.append(
                ObservationComponent(
                    code=_concept(
                        _local("asymmetry-index-repeatability", f"Asymmetry index ± h, h its {REPEATABILITY_MEANING}")
                    ),
                    valueRange={"low": _quantity(interval[0], "1"), "high": _quantity(interval[1], "1")},
                )
            )
        for code, display, value in zip(APPLIED_CODES, APPLIED_DISPLAYS, result.applied_thresholds or ()):
            if value is not None and math.isfinite(value):
                components.append(
                    ObservationComponent(code=_concept(_local(code, display)), valueQuantity=_quantity(value, "1"))
                )
        entries.append(
            observation(
                "asymmetry-index",
                "Composite facial asymmetry index",
                valueQuantity=_quantity(measurements["asymmetry_index"], "1"),
                referenceRange=reference,
                component=components or None,
            )
        )

    scale = measurements.get("scale_source", "")
    method = None
    if scale:
        method = _concept(
            _local("scale-iris", "Millimetres calibrated on the iris diameter (11.7 mm)")
            if scale == "iris"
            else _local("scale-population-mean", "Millimetres calibrated on the mean adult eye distance (63 mm)")
        )
    units = measurements.get("units") or {}
    for name, values in (measurements.get("regions") or {}).items():
        # The engine says which unit each region is in; degrees only for angles, millimetres otherwise.
        unit = "deg" if units.get(name, "degrees" if name.endswith("_deg") else "mm") == "degrees" else "mm"
        label = REGION_LABELS.get(name, name.replace("_", " "))
        components = None
        if name in BILATERAL:
            components = [
                ObservationComponent(
                    code=_concept(_local(f"{name}.{side}", f"{label}: patient's {side} side")),
                    valueQuantity=_quantity(values[side], unit),
                )
                for side in ("right", "left")
            ]
            label = f"{label}, left minus right"
        entries.append(
            observation(
                name,
                label,
                valueQuantity=_quantity(values["difference"], unit),
                method=method if unit == "mm" else None,
                component=components,
            )
        )

    entries.append(
        observation(
            "screening-score",
            "Screening score (0-1, the decision rule's evidence for paralysis)",
            valueQuantity=_quantity(result.score, "1"),
        )
    )

    involvement = (measurements.get("upper_face") or {}).get("involvement")
    pattern_fields: dict = {}
    if result.pattern:
        pattern_fields["valueCodeableConcept"] = _concept(
            _local(result.pattern, result.get_pattern_display()), text=result.pattern_advice or None
        )
    elif result.label == ScanResult.Label.NO_PARALYSIS:
        # A negative result names no pattern.
        pattern_fields["dataAbsentReason"] = _absent("not-applicable", "Not Applicable")
    else:
        # A flagged result stored before the engine named patterns.
        pattern_fields["dataAbsentReason"] = _absent("unknown", "Unknown")
    if isinstance(involvement, (int, float)):
        pattern_fields["component"] = [
            ObservationComponent(
                code=_concept(_local("upper-face-involvement", "Lower-lid difference, as a fraction of eye width")),
                valueQuantity=_quantity(involvement, "1"),
            )
        ]
    entries.append(observation("pattern", "Pattern of the facial weakness", **pattern_fields))

    severity_codings = [_local(result.severity, result.get_severity_display())]
    if result.severity in SEVERITY_SNOMED:
        severity_codings.append((SNOMED, *SEVERITY_SNOMED[result.severity]))
    entries.append(
        observation(
            "severity",
            "Severity band of the measured asymmetry",
            valueCodeableConcept=_concept(*severity_codings),
        )
    )

    if result.affected_side in SIDE_SNOMED:
        code, display = SIDE_SNOMED[result.affected_side]
        entries.append(
            observation(
                "affected-side",
                "Weaker side of the face (the patient's own side)",
                valueCodeableConcept=_concept((SNOMED, code, display), text=f"patient's {result.affected_side}"),
            )
        )

    classifier = result.classifier or {}
    if rule.get("used_classifier") and isinstance(classifier.get("probability"), (int, float)):
        probability = {"valueQuantity": _quantity(classifier["probability"], "1")}
    else:
        # Said in so many words: this result was produced without a classifier.
        probability = {
            "dataAbsentReason": _absent("not-performed", "Not Performed"),
            "note": [{"text": classifier.get("detail") or "No classifier took part in this result."}],
        }
    entries.append(observation("classifier-probability", "Classifier probability of paralysis", **probability))
    entries.extend(onset_and_urgency_entries(result, observation))
    entries.extend(exam_entries(result, observation))
    return entries


def onset_and_urgency_entries(result: ScanResult, observation) -> list[Entry]:
    """When the person was last seen without this weakness (or that it is not known), and whether the
    result is a possible stroke, with the sentence why (scans/urgency.py)."""
    onset_at = result.scan.onset_at
    onset = (
        {"valueDateTime": onset_at}
        if onset_at is not None
        else {
            "dataAbsentReason": _absent("unknown", "Unknown"),
            "note": [{"text": "Not known when it was photographed."}],
        }
    )
    entries = [observation("onset", "Last seen without this weakness (time of onset)", **onset)]
    if result.needs_clinician:
        entries.append(
            observation(
                "possible-stroke",
                "Possible stroke: urgent review (screening rule)",
                valueBoolean=result.urgent,
                note=[{"text": result.urgency_reason}] if result.urgency_reason else None,
            )
        )
    return entries


def exam_entries(result: ScanResult, observation) -> list[Entry]:
    """A guided exam's findings (inference/engine/exam.py): the forehead in one sentence, each pose's
    weaker side's movement as a share of the other's (right and left in mm as components), and the
    House-Brackmann estimate with how it was derived. None for a photo alone."""
    exam = result.exam or {}
    if not exam:
        return []
    entries = []
    if exam.get("forehead_finding"):
        entries.append(
            observation("exam-forehead", "Forehead in motion (guided exam)", valueString=exam["forehead_finding"])
        )
    for name, pose in (exam.get("poses") or {}).items():
        label = f"{pose.get('asked_as') or name}: weaker side's movement as a share of the other's"
        if pose.get("status") == "measured" and isinstance(pose.get("percent"), (int, float)):
            sides = pose.get("movement_mm") or {}
            components = [
                ObservationComponent(
                    code=_concept(_local(f"exam-{name}-{side}", f"Movement of the patient's {side} side")),
                    valueQuantity=_quantity(sides[side], "mm"),
                )
                for side in ("right", "left")
                if isinstance(sides.get(side), (int, float))
            ]
            entries.append(
                observation(
                    f"exam-{name}",
                    label,
                    valueQuantity=_quantity(round(float(pose["percent"]), 1), "%"),
                    component=components or None,
                )
            )
        else:
            entries.append(
                observation(
                    f"exam-{name}",
                    label,
                    dataAbsentReason=_absent("not-performed", "Not Performed"),
                    note=[{"text": pose.get("reason") or "Pose not performed: retake."}],
                )
            )
    grade = (exam.get("house_brackmann") or {}).get("grade")
    if grade:
        entries.append(
            observation(
                "exam-house-brackmann",
                "House-Brackmann grade, estimated from the guided exam",
                valueString=str(grade),
                note=[{"text": exam["house_brackmann"].get("derivation", "")}]
                if exam["house_brackmann"].get("derivation")
                else None,
            )
        )
    return entries


def scan_entries(scan: Scan, *, base_url: str) -> list[Entry]:
    """The resources of one finished scan's report, the Patient first. The scan must be done."""
    result = scan.result
    patient = patient_entry(scan.patient)
    device = device_entry(result)
    media = media_entry(scan, patient=patient, base_url=base_url)
    observations = observation_entries(result, patient=patient, device=device, media=media)
    entries = [patient]

    request = None
    if scan.referring_physician is not None:
        practitioner = practitioner_entry(scan.referring_physician)
        request = _entry(
            ServiceRequest,
            _identifier("request", f"scan-{scan.id}"),
            status="completed",
            intent="order",
            code=_concept(*REPORT_CODE),
            subject=_ref(patient),
            authoredOn=scan.uploaded_at,
            requester=_ref(practitioner, scan.referring_physician.full_name),
            note=[{"text": scan.note}] if scan.note else None,
        )
        entries += [practitioner, request]

    label = ScanResult.Label(result.label)
    conclusion = [f"{LABEL_DISPLAY[label]}."]
    if result.label != ScanResult.Label.NO_PARALYSIS and result.pattern_advice:
        conclusion.append(result.pattern_advice)
    conclusion.append(DISCLAIMER)
    report = _entry(
        DiagnosticReport,
        _identifier("report", f"scan-{scan.id}"),
        basedOn=[_ref(request)] if request else None,
        status="final",
        category=[_concept((V2_0074, "IMG", "Diagnostic Imaging"))],
        code=_concept(*REPORT_CODE),
        subject=_ref(patient),
        effectiveDateTime=scan.uploaded_at,
        issued=result.created_at,
        result=[_ref(entry) for entry in observations],
        media=[{"comment": "Photo of the face at rest", "link": _ref(media)}] if media else None,
        conclusion=" ".join(conclusion),
        conclusionCode=[_concept(_local(result.label, LABEL_DISPLAY[label]))],
    )
    return [*entries, report, *observations, device, *([media] if media else [])]


# --- The bundles ---------------------------------------------------------------------------------


def _unique(entries: Iterable[Entry]) -> list[Entry]:
    seen: dict[str, Entry] = {}
    for entry in entries:
        seen.setdefault(entry.full_url, entry)
    return list(seen.values())


def _collection(entries: Iterable[Entry], *, timestamp: datetime | None = None) -> Bundle:
    return Bundle(
        type="collection",
        timestamp=timestamp or timezone.now(),
        entry=[BundleEntry(fullUrl=entry.full_url, resource=entry.resource) for entry in _unique(entries)],
    )


def scan_report_bundle(*, scan: Scan, base_url: str) -> Bundle:
    """GET /api/v1/scans/{id}/fhir/: one finished scan's report (a collection Bundle)."""
    return _collection(scan_entries(scan, base_url=base_url))


def patient_record_bundle(*, patient: PatientRow, scans: Iterable[Scan], base_url: str) -> Bundle:
    """GET /api/v1/patients/{id}/fhir/: the Patient, then each finished scan's report in the order given
    (oldest first from scans.selectors.patient_finished_scans); shared resources appear once."""
    entries = [patient_entry(patient)]
    for scan in scans:
        entries += scan_entries(scan, base_url=base_url)
    return _collection(entries)


def scan_result_transaction(*, scan: Scan, base_url: str) -> Bundle:
    """The push to FHIR_ENDPOINT: the same resources as a transaction in which each entry is created only
    if no resource with its identifier exists (ifNoneExist), so a bundle sent again adds nothing. The
    Bundle's own identifier names the result, for a server that keeps the bundles it received."""
    entries = _unique(scan_entries(scan, base_url=base_url))
    return Bundle(
        type="transaction",
        identifier=_identifier("bundle", f"scan-result-{scan.result.id}"),
        timestamp=scan.result.created_at,
        entry=[
            BundleEntry(
                fullUrl=entry.full_url,
                resource=entry.resource,
                request=BundleEntryRequest(
                    method="POST", url=entry.resource.get_resource_type(), ifNoneExist=entry.if_none_exist()
                ),
            )
            for entry in entries
        ],
    )
