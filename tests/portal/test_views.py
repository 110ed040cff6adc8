from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from scans.models import Scan
from tests import factories
from tests.faces import astronaut, jpeg_bytes

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("url", ["/", "/scans/", "/scans/new/", "/alerts/"])
def test_dashboard_pages_require_login(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_home_shows_the_four_sections_of_the_app(client, people):
    client.force_login(people.alice)
    page = client.get("/").content.decode()
    for section in ("New Scan", "Scan History", "Alerts", "Information", "About facial paralysis"):
        assert section in page


def test_the_information_page_covers_causes_signs_and_when_to_seek_care(client):
    page = client.get("/information/").content.decode()
    for topic in (
        "Causes",
        "Bell's palsy",
        "Stroke",
        "Signs to look for",
        "When to seek care",
        "FAST",
        "not a\n    diagnosis",
    ):
        assert topic in page


def test_the_information_page_asks_for_the_time_of_onset_and_says_the_urgency_rule(client, settings):
    settings.STROKE_WINDOW_HOURS = 24
    page = " ".join(client.get("/information/").content.decode().split())
    assert "when the person was last seen without this weakness" in page
    assert "unless it began more than 24 hours ago" in page and "cannot show whether the forehead is spared" in page


def test_history_shows_positive_scans_in_red_and_only_visible_ones(client, people):
    positive = factories.ScanResultFactory(scan__patient=people.patient, label="paralysis").scan
    negative = factories.ScanResultFactory(scan__patient=people.patient, label="no_paralysis").scan
    hidden = factories.ScanResultFactory(scan__patient=people.other_patient, label="paralysis").scan
    client.force_login(people.carol)
    page = client.get("/scans/").content.decode()
    rows = page.split("<tr")
    positive_row = next(row for row in rows if f"/scans/{positive.id}/" in row)
    negative_row = next(row for row in rows if f"/scans/{negative.id}/" in row)
    assert 'class="positive"' in positive_row and "Positive" in positive_row
    assert 'class="positive"' not in negative_row and "Negative" in negative_row
    assert f"/scans/{hidden.id}/" not in page


def test_the_new_scan_form_uploads_and_redirects_to_the_scan_page(client, people):
    client.force_login(people.carol)
    response = client.post(
        "/scans/new/",
        {
            "patient": people.patient.id,
            "image": SimpleUploadedFile("face.jpg", jpeg_bytes(astronaut()), "image/jpeg"),
            "note": "",
        },
    )
    scan = Scan.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/scans/{scan.id}/"
    page = client.get(response["Location"]).content.decode()
    assert "Queued" in page and "the result will appear here by itself" in page


def test_the_new_scan_form_explains_a_bad_file_and_keeps_nothing(client, people):
    client.force_login(people.carol)
    response = client.post(
        "/scans/new/",
        {
            "patient": people.patient.id,
            "image": SimpleUploadedFile("face.jpg", b"%PDF-1.4 not a photo", "image/jpeg"),
        },
    )
    assert response.status_code == 400
    assert "not a photo we can read" in response.content.decode()
    assert not Scan.objects.exists()


def test_the_new_scan_form_offers_only_visible_patients(client, people):
    client.force_login(people.carol)
    page = client.get("/scans/new/").content.decode()
    assert "Maria Santos" in page and "Li Wei" not in page


def test_a_scan_page_shows_result_measurements_model_and_disclaimer(client, people):
    result = factories.ScanResultFactory(
        scan__patient=people.patient,
        measurements={
            "asymmetry_index": 2.1,
            "scale_source": "iris",
            "regions": {"mouth_corner_height": {"right": -55.0, "left": -61.0, "difference": -6.0}},
        },
        # As stored with every result: the rule's name and its thresholds (the explanation quotes them).
        decision={"name": "asymmetry-only-v1", "asymmetry_positive_at": 1.0, "asymmetry_negative_below": 0.85},
    )
    client.force_login(people.alice)
    page = client.get(f"/scans/{result.scan_id}/").content.decode()
    assert "Positive: signs of possible facial paralysis" in page
    assert "-6.0 mm" in page
    assert "test-engine (asymmetry only, no classifier)" in page
    assert "not a diagnosis" in page
    assert "Asymmetry index 2.10: positive at 1 or more" in page and "No classifier took part" in page


def test_a_scan_page_shows_how_the_classifier_and_the_index_were_fused(client, people):
    rule = {
        "name": "fused:resnet50-test",
        "asymmetry_positive_at": 1.0,
        "asymmetry_negative_below": 0.85,
        "classifier_weight": 0.4,
        "fused_positive_at": 0.43,
        "fused_negative_below": 0.43,
        "asymmetry_score_width": 0.35,
        "used_classifier": True,
    }
    result = factories.ScanResultFactory(
        scan__patient=people.patient,
        score=0.56,
        decision=rule,
        measurements={"asymmetry_index": 1.48, "scale_source": "iris", "regions": {}},
        classifier={"status": "used", "model": "resnet50-test", "probability": 0.2037, "runtime": "openvino-bf16"},
    )
    client.force_login(people.alice)
    page = client.get(f"/scans/{result.scan_id}/").content.decode()
    assert "Classifier P(paralysis) 0.20; asymmetry index 1.48" in page
    assert "Fused score 0.40 × 0.20 + 0.60 × 0.80 = 0.56." in page
    assert "Classifier: ResNet-50 resnet50-test, P(paralysis) 0.20, served by openvino-bf16 · rule" in page


def test_a_scan_page_says_when_the_classifier_is_a_second_reader(client, people):
    rule = {
        "name": "fused:resnet50-second",
        "asymmetry_positive_at": 0.49,
        "asymmetry_negative_below": 0.39,
        "classifier_weight": 0.0,
        "fused_positive_at": 0.5,
        "fused_negative_below": 0.429,
        "asymmetry_score_width": 0.35,
        "used_classifier": True,
    }
    result = factories.ScanResultFactory(
        scan__patient=people.patient,
        score=0.9,
        decision=rule,
        measurements={"asymmetry_index": 1.3, "scale_source": "iris", "regions": {}},
        classifier={
            "status": "used",
            "model": "resnet50-second",
            "sha256": "ab" * 32,
            "probability": 0.81,
            "runtime": "openvino-bf16",
            "role": "second reader",
            "weight": 0.0,
        },
    )
    client.force_login(people.alice)
    page = client.get(f"/scans/{result.scan_id}/").content.decode()
    assert 'id="second-reader">second reader: shown, not deciding' in page
    assert "(sha256 abababababab…)" in page and "P(paralysis) 0.81" in page
    assert "a second reader, shown, not deciding" in page  # the explanation says it too


def test_a_scan_page_is_404_for_someone_not_allowed(client, people):
    scan = factories.ScanFactory(patient=people.patient)
    client.force_login(people.dave)
    assert client.get(f"/scans/{scan.id}/").status_code == 404


def test_the_alert_feed_page_embeds_only_visible_alerts(client, people, in_memory_channels):
    from alerts.services import alert_raise

    mine = factories.ScanResultFactory(scan__patient=people.patient)
    theirs = factories.ScanResultFactory(scan__patient=people.other_patient)
    alert = alert_raise(scan=mine.scan, result=mine)
    alert_raise(scan=theirs.scan, result=theirs)
    client.force_login(people.alice)
    response = client.get("/alerts/")
    assert [row["id"] for row in response.context["alerts_json"]] == [alert.id]
    assert response.context["can_act"] is True


def test_the_alert_feed_page_lists_stroke_alerts_then_positives_then_reviews_then_resolved(
    client, people, in_memory_channels
):
    from alerts.models import Alert
    from alerts.services import alert_raise

    def raised(label: str, pattern: str, warnings=()) -> Alert:
        patient = factories.PatientFactory(care_team=people.team)  # one patient each: no shared episode
        result = factories.ScanResultFactory(
            scan__patient=patient, label=label, pattern=pattern, quality={"warnings": list(warnings)}
        )
        return alert_raise(scan=result.scan, result=result)

    warning = {"code": "dim_light", "message": "The light was dim."}
    stroke = raised("paralysis", "central", [warning])
    handled_stroke = raised("paralysis", "central")
    Alert.objects.filter(id=handled_stroke.id).update(status=Alert.Status.RESOLVED)
    positive = raised("paralysis", "peripheral")
    review = raised("inconclusive", "undetermined")
    client.force_login(people.alice)
    alerts = client.get("/alerts/").context["alerts_json"]
    assert [row["id"] for row in alerts] == [stroke.id, positive.id, review.id, handled_stroke.id]
    # What static/alerts/feed.js reads to draw the badge, the advice, the review label, the pattern and the warnings.
    assert (alerts[0]["urgent"], alerts[0]["kind"], alerts[2]["kind"]) == (True, "positive", "review")
    assert alerts[0]["advice"].startswith("Stroke pattern") and alerts[3]["advice"] == ""
    assert alerts[0]["latest_scan"]["pattern"] == "central"
    assert alerts[0]["latest_scan"]["quality_warnings"] == [warning]


def test_the_upload_docs_ask_for_a_face_at_rest_and_show_the_example(client):
    upload = client.get("/api/schema/?format=json").json()["paths"]["/api/v1/scans/"]["post"]
    assert "relaxed face at rest (not smiling), looking straight at the camera" in upload["description"]
    assert "/static/scans/framing-example.svg" in upload["description"]


def test_openapi_schema_and_docs_are_served(client):
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    text = schema.content.decode()
    for path in ("/api/v1/scans/", "/api/v1/alerts/{id}/acknowledge/", "/api/v1/auth/token/", "/api/v1/patients/"):
        assert path in text
    assert client.get("/api/docs/").status_code == 200


def test_the_token_endpoint_gives_a_token_for_valid_credentials_only(client, people):
    good = client.post("/api/v1/auth/token/", {"username": "alice", "password": "correct horse battery"})
    assert good.status_code == 200 and len(good.json()["token"]) == 64 and good.json()["expiry"]
    assert client.get("/api/v1/patients/", HTTP_AUTHORIZATION=f"Token {good.json()['token']}").status_code == 200
    assert client.post("/api/v1/auth/token/", {"username": "alice", "password": "nope"}).status_code == 400


def test_patients_api_is_scoped_and_only_clinicians_and_staff_register_patients(people, api):
    assert [p["full_name"] for p in api(people.carol).get("/api/v1/patients/").json()["results"]] == ["Maria Santos"]
    assert api(people.carol).post("/api/v1/patients/", {"mrn": "X1", "full_name": "New"}).status_code == 403
    created = api(people.alice).post("/api/v1/patients/", {"mrn": "X2", "full_name": "New Patient"})
    assert created.status_code == 201 and created.json()["care_team"] == people.team.id
    assert api(people.alice).get(f"/api/v1/patients/{created.json()['id']}/").status_code == 200
    assert api(people.bob).get(f"/api/v1/patients/{created.json()['id']}/").status_code == 404
    assert (
        api(people.bob)
        .post("/api/v1/patients/", {"mrn": "X3", "full_name": "Y", "care_team": people.team.id})
        .status_code
        == 403
    )


def test_the_patient_page_charts_severity_over_time_with_positives_in_red(client, people):
    for label, index in (("no_paralysis", 0.3), ("paralysis", 1.9), ("paralysis", 2.4)):
        factories.ScanResultFactory(
            scan__patient=people.patient, label=label, measurements={"asymmetry_index": index, "regions": {}}
        )
    client.force_login(people.carol)
    page = client.get(f"/scans/patients/{people.patient.id}/").content.decode()
    wide = page[page.index('<svg class="trend wide"') : page.index('<svg class="trend narrow"')]
    assert wide.count('class="positive"/>') == 2 and wide.count('<circle r="5.5" class="negative"/>') == 1
    assert "Asymmetry index of 3 scans" in page
    assert client.get(f"/scans/patients/{people.other_patient.id}/").status_code == 404


def test_the_timeline_api_gives_the_trend_oldest_first_to_those_allowed(people, api):
    first = factories.ScanResultFactory(scan__patient=people.patient, measurements={"asymmetry_index": 0.4})
    second = factories.ScanResultFactory(scan__patient=people.patient, measurements={"asymmetry_index": 1.8})
    body = api(people.alice).get(f"/api/v1/patients/{people.patient.id}/timeline/").json()
    assert [point["scan_id"] for point in body] == [first.scan_id, second.scan_id]
    assert body[1]["asymmetry_index"] == 1.8 and body[1]["model_version"].startswith("test-engine")
    assert api(people.dave).get(f"/api/v1/patients/{people.patient.id}/timeline/").status_code == 404


def test_history_filters_by_patient_and_status(client, people):
    mine = factories.ScanFactory(patient=people.patient)
    done = factories.ScanResultFactory(scan__patient=people.patient).scan
    other = factories.ScanFactory(patient=people.other_patient)
    client.force_login(people.triage)
    by_patient = client.get(f"/scans/?patient={people.patient.id}").content.decode()
    assert f"/scans/{mine.id}/" in by_patient and f"/scans/{other.id}/" not in by_patient
    queued = client.get("/scans/?status=queued").content.decode()
    assert f"/scans/{mine.id}/" in queued and f"/scans/{done.id}/" not in queued


def test_a_missing_page_says_so_in_the_portals_own_page(client, people):
    client.force_login(people.carol)
    response = client.get("/scans/999999/")
    assert response.status_code == 404
    page = response.content.decode()
    assert "<h1>Page not found</h1>" in page and 'href="/scans/"' in page  # a way back, not a bare page
    assert 'class="skip-link" href="#main"' in page and '<main id="main"' in page
    assert 'rel="icon"' in page and 'aria-live="assertive"' in page


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("signed_out=1&why=idle&at=2026-12-04T14:05:00Z&open=2", "You were signed out at 2026-12-04 14:05 UTC: nobody"),
        ("signed_out=1&why=idle&at=2026-12-04T14:05:00Z&open=2", "2 alerts were open on this screen"),
        ("signed_out=1&why=shift", "the session reached its limit of a shift (12 hours)"),
        ("signed_out=1&why=<b>x</b>&at=junk&open=lots", "You were signed out: nobody used this screen for a while"),
    ],
)
def test_the_login_page_says_why_a_screen_was_signed_out_from_a_reason_a_time_and_a_count(client, query, expected):
    page = client.get(f"/login/?{query}").content.decode()
    assert expected in page
    assert "<b>x</b>" not in page and "lots" not in page
