"""Who may see and do what, as one table: every persona against every endpoint, each cell its own test.

The table is about one patient, Maria Santos (`people.patient`): alice's care team looks after her and
carol is her caregiver. Bob and dave belong to another patient, Li Wei, who has the same data, so each
answer can also be checked for a leak the other way. Each cell holds one of:

  YES    200 with Maria's data in it (for an action: 200 and the alert really changed)
  EMPTY  200, but not one of Maria's rows, names or files, and list counts agree with the rows shown
  NO     401, 403 or 404, or a redirect to a login page; nothing of Maria's in the answer

Whatever the cell, a 200 never carries data of a patient the persona may not see, and the OpenAPI
schema carries no patient data at all.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from types import SimpleNamespace

import pytest
from django.core.files.base import ContentFile
from django.test import Client

from alerts.models import Alert
from alerts.services import alert_raise
from tests import factories

pytestmark = pytest.mark.django_db

YES, EMPTY, NO = "YES", "EMPTY", "NO"

PERSONAS = ("triage", "alice", "bob", "carol", "dave", "anonymous")

MATRIX = [
    # method  path                                          triage alice  bob    carol  dave   anonymous
    # REST API (token)
    ("GET", "/api/v1/patients/", YES, YES, EMPTY, YES, EMPTY, NO),
    ("GET", "/api/v1/patients/?mrn={mrn}", YES, YES, EMPTY, YES, EMPTY, NO),
    ("GET", "/api/v1/patients/{patient}/", YES, YES, NO, YES, NO, NO),
    ("GET", "/api/v1/patients/{patient}/timeline/", YES, YES, NO, YES, NO, NO),
    ("GET", "/api/v1/scans/", YES, YES, EMPTY, YES, EMPTY, NO),
    ("GET", "/api/v1/scans/?patient={patient}", YES, YES, EMPTY, YES, EMPTY, NO),
    ("GET", "/api/v1/scans/?label=paralysis", YES, YES, EMPTY, YES, EMPTY, NO),
    ("GET", "/api/v1/scans/?status=done", YES, YES, EMPTY, YES, EMPTY, NO),
    ("GET", "/api/v1/scans/{scan}/", YES, YES, NO, YES, NO, NO),
    ("GET", "/api/v1/scans/{scan}/image/", YES, YES, NO, YES, NO, NO),
    ("GET", "/api/v1/scans/{scan}/overlay/", YES, YES, NO, YES, NO, NO),
    ("GET", "/api/v1/scans/{scan}/heatmap/", YES, YES, NO, YES, NO, NO),
    ("GET", "/api/v1/scans/{scan}/fhir/", YES, YES, NO, YES, NO, NO),
    ("GET", "/api/v1/patients/{patient}/fhir/", YES, YES, NO, YES, NO, NO),
    ("GET", "/api/v1/alerts/", YES, YES, EMPTY, YES, EMPTY, NO),
    ("GET", "/api/v1/alerts/?after=0", YES, YES, EMPTY, YES, EMPTY, NO),
    ("GET", "/api/v1/alerts/?patient={patient}", YES, YES, EMPTY, YES, EMPTY, NO),
    ("POST", "/api/v1/alerts/{alert}/acknowledge/", YES, YES, NO, NO, NO, NO),
    ("POST", "/api/v1/alerts/{alert}/resolve/", YES, YES, NO, NO, NO, NO),
    # Dashboard pages (session)
    ("GET", "/", YES, YES, EMPTY, YES, EMPTY, NO),
    ("GET", "/scans/", YES, YES, EMPTY, YES, EMPTY, NO),
    ("GET", "/scans/?patient={patient}", YES, YES, EMPTY, YES, EMPTY, NO),
    ("GET", "/scans/{scan}/", YES, YES, NO, YES, NO, NO),
    ("GET", "/scans/patients/{patient}/", YES, YES, NO, YES, NO, NO),
    ("GET", "/scans/new/", YES, YES, EMPTY, YES, EMPTY, NO),
    ("GET", "/alerts/", YES, YES, EMPTY, YES, EMPTY, NO),
    # Admin: staff get the index, but triage holds no model permissions, so no patient list either
    ("GET", "/admin/", EMPTY, NO, NO, NO, NO, NO),
    ("GET", "/admin/portal/patient/", NO, NO, NO, NO, NO, NO),
    ("GET", "/admin/scans/scan/", NO, NO, NO, NO, NO, NO),
    # API description: public, and free of patient data
    ("GET", "/api/schema/", EMPTY, EMPTY, EMPTY, EMPTY, EMPTY, EMPTY),
]

CELLS = [
    pytest.param(persona, method, path, expected, id=f"{persona} {method} {path}")
    for method, path, *row in MATRIX
    for persona, expected in zip(PERSONAS, row, strict=True)
]

# Who sees which patient (the `world` fixture's keys).
VISIBLE = {
    "triage": {"maria", "li"},
    "alice": {"maria"},
    "bob": {"li"},
    "carol": {"maria"},
    "dave": {"li"},
    "anonymous": set(),
}


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    # The personas' passwords are hashed at creation; PBKDF2 costs ~4 s a test and no test logs in with one.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@dataclass
class Record:
    """One patient's data: an analysed positive scan with its three files, and the alert it raised."""

    patient: object
    scan: object
    alert: Alert
    files: dict[str, bytes]

    def markers(self) -> list[bytes]:
        """Byte strings that appear in an answer only if it carries this patient's data."""
        scan_id = self.scan.id
        return [
            self.patient.full_name.encode(),
            self.patient.mrn.encode(),
            f"/scans/{scan_id}/".encode(),
            f'"scan_id":{scan_id}'.encode(),
            *self.files.values(),
        ]


@pytest.fixture
def world(people, in_memory_channels) -> SimpleNamespace:
    def record(patient, tag: str) -> Record:
        files = {kind: b"\xff\xd8" + f"{tag}-{kind}-bytes".encode() for kind in ("image", "overlay", "heatmap")}
        result = factories.ScanResultFactory(
            scan__patient=patient,
            scan__image=ContentFile(files["image"], name="photo.jpg"),
            overlay=ContentFile(files["overlay"], name="overlay.jpg"),
            heatmap=ContentFile(files["heatmap"], name="heatmap.jpg"),
        )
        return Record(
            patient=patient, scan=result.scan, alert=alert_raise(scan=result.scan, result=result), files=files
        )

    return SimpleNamespace(people=people, maria=record(people.patient, "maria"), li=record(people.other_patient, "li"))


def client_for(persona: str, path: str, people, api):
    user = None if persona == "anonymous" else getattr(people, persona)
    if path.startswith("/api/v1/"):
        return api(user)  # the mobile app's way in: a token
    client = Client()  # pages, the admin and the schema: a browser session
    if user is not None:
        client.force_login(user)
    return client


def is_denied(response) -> bool:
    if response.status_code in (401, 403, 404):
        return True
    return response.status_code == 302 and response["Location"].startswith(("/login/", "/admin/login/"))


def list_rows(response) -> list[dict] | None:
    if not response["Content-Type"].startswith("application/json"):
        return None
    body = json.loads(response.content)
    if not (isinstance(body, dict) and "results" in body):
        return None
    assert body["count"] == len(body["results"])  # a count never includes rows left out
    return body["results"]


def patient_id_of(row: dict) -> int:
    return row["patient"]["id"] if "patient" in row else row["id"]


@pytest.mark.parametrize("persona, method, path, expected", CELLS)
def test_each_persona_gets_from_each_endpoint_what_the_matrix_says(persona, method, path, expected, world, people, api):
    maria = world.maria
    url = path.format(patient=maria.patient.id, mrn=maria.patient.mrn, scan=maria.scan.id, alert=maria.alert.id)
    client = client_for(persona, path, people, api)
    if method == "GET":
        response = client.get(url)
    else:
        response = client.post(url, {"outcome": "referred"} if path.endswith("resolve/") else None, format="json")
    body = response.getvalue()

    # Never a leak, whatever the cell: no data of a patient this persona may not see (the schema: of anyone).
    hidden = {"maria", "li"} if path == "/api/schema/" else {"maria", "li"} - VISIBLE[persona]
    for key in sorted(hidden):
        for marker in getattr(world, key).markers():
            assert marker not in body, f"{persona} got {marker!r} from {url}"

    if expected == NO:
        assert is_denied(response), (response.status_code, body[:300])
        assert not any(marker in body for marker in maria.markers())
    else:
        assert response.status_code == 200, (response.status_code, body[:300])
        rows = list_rows(response)
        if rows is not None:
            visible_ids = {getattr(world, key).patient.id for key in VISIBLE[persona]}
            assert {patient_id_of(row) for row in rows} <= visible_ids
        if expected == EMPTY:
            assert not any(marker in body for marker in maria.markers())
        elif path.endswith(("/image/", "/overlay/", "/heatmap/")):
            assert body == maria.files[path.rsplit("/", 2)[-2]]
        else:
            assert any(marker in body for marker in maria.markers())

    if method == "POST":
        # An action happened exactly when the cell allows it.
        maria.alert.refresh_from_db()
        done = "acknowledged" if path.endswith("acknowledge/") else "resolved"
        assert maria.alert.status == (done if expected == YES else Alert.Status.OPEN)
        assert (maria.alert.acknowledged_by or maria.alert.resolved_by) == (
            getattr(people, persona) if expected == YES else None
        )


def test_the_matrix_has_one_test_per_persona_and_endpoint():
    assert len(PERSONAS) == 6 and len(MATRIX) == 30
    assert len(CELLS) == len(PERSONAS) * len(MATRIX) == 180


# Writes and the remaining reads, one cell a test: the answer each persona gets, and what it left behind.
#   method  path                   triage alice bob  carol dave anonymous
WRITES = [
    ("POST", "/api/v1/scans/", 202, 202, 400, 202, 400, 401),  # a photo of Maria
    ("POST", "/api/v1/patients/", 201, 201, 201, 403, 403, 401),  # a new patient (own team)
    ("GET", "/api/v1/physicians/", 200, 200, 200, 200, 200, 401),
    ("POST", "/api/v1/auth/token/", 200, 200, 200, 200, 200, 400),  # each with their own password
]
WRITE_CELLS = [
    pytest.param(persona, method, path, status, id=f"{persona} {method} {path}")
    for method, path, *row in WRITES
    for persona, status in zip(PERSONAS, row, strict=True)
]


@pytest.mark.parametrize("persona, method, path, status", WRITE_CELLS)
def test_each_persona_may_write_what_the_table_says_and_nothing_else_happens(
    persona, method, path, status, world, people, api
):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from portal.models import Patient
    from scans.models import Scan
    from tests.faces import astronaut, jpeg_bytes

    user = None if persona == "anonymous" else getattr(people, persona)
    scans_before, patients_before = Scan.objects.count(), Patient.objects.count()
    if path == "/api/v1/auth/token/":
        response = api(None).post(path, {"username": persona, "password": "correct horse battery"})
        assert response.status_code == status
        assert ("token" in response.json()) == (status == 200)
        return
    client = api(user)
    if path == "/api/v1/scans/":
        response = client.post(
            path,
            {"patient": world.maria.patient.id, "image": SimpleUploadedFile("face.jpg", jpeg_bytes(astronaut()))},
            format="multipart",
        )
    elif path == "/api/v1/patients/":
        response = client.post(path, {"mrn": f"NEW-{persona}", "full_name": "New Patient"}, format="json")
    else:
        response = client.get(path)
    assert response.status_code == status, response.content[:300]
    assert Scan.objects.count() == scans_before + (1 if path == "/api/v1/scans/" and status == 202 else 0)
    assert Patient.objects.count() == patients_before + (1 if path == "/api/v1/patients/" and status == 201 else 0)
    body = response.content
    for key in sorted({"maria", "li"} - VISIBLE[persona]):
        assert not any(marker in body for marker in getattr(world, key).markers())
    if path == "/api/v1/patients/" and status == 201:
        created = Patient.objects.get(id=response.json()["id"])
        teams = {"alice": people.team, "bob": people.other_team, "triage": None}
        assert created.care_team == teams[persona]  # a clinician's patient joins their own team
