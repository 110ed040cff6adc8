from __future__ import annotations

import pytest

from alerts.models import Alert, AlertEvent
from alerts.services import alert_raise
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def alert(people, in_memory_channels):
    result = factories.ScanResultFactory(scan__patient=people.patient)
    return alert_raise(scan=result.scan, result=result)


def test_each_persona_sees_only_the_alerts_of_its_patients(people, api, alert, in_memory_channels):
    other = factories.ScanResultFactory(scan__patient=people.other_patient)
    other_alert = alert_raise(scan=other.scan, result=other)
    expectations = {
        "triage": {alert.id, other_alert.id},
        "alice": {alert.id},
        "carol": {alert.id},
        "bob": {other_alert.id},
        "dave": {other_alert.id},
    }
    for persona, expected in expectations.items():
        body = api(getattr(people, persona)).get("/api/v1/alerts/").json()
        assert {row["id"] for row in body["results"]} == expected, persona


def test_the_alert_payload_carries_what_the_paper_shows_and_the_disclaimer(people, api, alert):
    row = api(people.alice).get("/api/v1/alerts/").json()["results"][0]
    assert row["patient"]["full_name"] == "Maria Santos"
    assert row["severity"] == "moderate"
    assert row["scan"]["image_url"].endswith(f"/api/v1/scans/{alert.scan_id}/image/")
    assert row["created_at"]
    assert "not a diagnosis" in row["disclaimer"]


def test_after_replays_only_newer_alerts_oldest_first(settings, people, api, alert, in_memory_channels):
    settings.ALERT_EPISODE_HOURS = 0  # one alert per scan here, not one per episode
    newer = [factories.ScanResultFactory(scan__patient=people.patient) for _ in range(2)]
    ids = [alert_raise(scan=result.scan, result=result).id for result in newer]
    body = api(people.alice).get(f"/api/v1/alerts/?after={alert.id}").json()
    assert [row["id"] for row in body["results"]] == ids


def test_a_clinician_acknowledges_then_resolves_and_each_step_is_logged(people, api, alert):
    client = api(people.alice)
    acknowledged = client.post(f"/api/v1/alerts/{alert.id}/acknowledge/")
    assert acknowledged.status_code == 200
    assert acknowledged.json()["status"] == "acknowledged"
    assert acknowledged.json()["acknowledged_by"] == "alice"
    resolved = client.post(f"/api/v1/alerts/{alert.id}/resolve/", {"outcome": "referred"}, format="json")
    assert resolved.status_code == 200
    assert resolved.json()["status"] == "resolved" and resolved.json()["outcome"] == "referred"
    kinds = list(AlertEvent.objects.filter(alert=alert).values_list("kind", "actor__username", "source"))
    assert kinds == [("raised", None, "system"), ("acknowledged", "alice", "api"), ("resolved", "alice", "api")]


def test_a_second_clinician_cannot_claim_an_alert_already_claimed(people, api, alert):
    assert api(people.alice).post(f"/api/v1/alerts/{alert.id}/acknowledge/").status_code == 200
    second = api(people.triage).post(f"/api/v1/alerts/{alert.id}/acknowledge/")
    assert second.status_code == 409
    assert "claimed by alice" in second.json()["detail"]
    assert Alert.objects.get(id=alert.id).acknowledged_by == people.alice


def test_a_caregiver_sees_the_alert_but_cannot_acknowledge_it(people, api, alert):
    response = api(people.carol).post(f"/api/v1/alerts/{alert.id}/acknowledge/")
    assert response.status_code == 403
    assert Alert.objects.get(id=alert.id).status == "open"


def test_an_outsider_gets_404_for_an_alert_it_may_not_see(people, api, alert):
    assert api(people.bob).post(f"/api/v1/alerts/{alert.id}/acknowledge/").status_code == 404
    assert (
        api(people.dave)
        .post(f"/api/v1/alerts/{alert.id}/resolve/", {"outcome": "confirmed"}, format="json")
        .status_code
        == 404
    )


def test_resolve_needs_a_known_outcome(people, api, alert):
    response = api(people.alice).post(f"/api/v1/alerts/{alert.id}/resolve/", {"outcome": "meh"}, format="json")
    assert response.status_code == 400
    assert "outcome" in response.json()
