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


def test_a_clinician_can_undo_her_own_resolution_for_two_minutes(people, api, alert, settings):
    """A false alarm pressed by mistake could not be taken back."""
    from datetime import timedelta

    from django.utils import timezone

    from alerts.services import UNDO_RESOLVE_SECONDS

    alice = api(people.alice)
    assert (
        alice.post(f"/api/v1/alerts/{alert.id}/resolve/", {"outcome": "false_alarm"}, format="json").status_code == 200
    )
    undone = alice.post(f"/api/v1/alerts/{alert.id}/undo-resolve/")
    assert undone.status_code == 200, undone.json()
    body = undone.json()
    assert (body["status"], body["acknowledged_by"], body["outcome"], body["resolved_by"]) == (
        "acknowledged",
        "alice",
        "",
        None,
    )
    stored = Alert.objects.get(pk=alert.id)
    # Claimed again: nobody is called until the claim lapses (ALERT_CLAIM_TIMEOUT_MINUTES from the undo).
    lapses = stored.acknowledged_by and stored.next_escalation_at - timezone.now()
    assert (
        timedelta(minutes=settings.ALERT_CLAIM_TIMEOUT_MINUTES - 1)
        < lapses
        <= timedelta(minutes=settings.ALERT_CLAIM_TIMEOUT_MINUTES)
    )
    kinds = list(AlertEvent.objects.filter(alert=alert).values_list("kind", flat=True))
    assert kinds[-2:] == ["resolved", "unresolved"]

    # Once more, and then too late.
    assert alice.post(f"/api/v1/alerts/{alert.id}/resolve/", {"outcome": "confirmed"}, format="json").status_code == 200
    Alert.objects.filter(pk=alert.id).update(resolved_at=timezone.now() - timedelta(seconds=UNDO_RESOLVE_SECONDS + 1))
    late = alice.post(f"/api/v1/alerts/{alert.id}/undo-resolve/")
    assert late.status_code == 409 and "can no longer be undone" in late.json()["detail"]
    assert Alert.objects.get(pk=alert.id).status == Alert.Status.RESOLVED


def test_only_the_resolver_may_undo_and_never_beside_a_newer_active_alert(people, api, alert):
    from tests import factories

    factories.add_to_team(factories.PhysicianFactory(user=factories.UserFactory(username="erin")), people.team)
    erin = api(factories.UserFactory._meta.model.objects.get(username="erin"))
    assert (
        api(people.alice)
        .post(f"/api/v1/alerts/{alert.id}/resolve/", {"outcome": "referred"}, format="json")
        .status_code
        == 200
    )
    assert erin.post(f"/api/v1/alerts/{alert.id}/undo-resolve/").status_code == 409
    assert api(people.carol).post(f"/api/v1/alerts/{alert.id}/undo-resolve/").status_code == 403
    assert api(people.bob).post(f"/api/v1/alerts/{alert.id}/undo-resolve/").status_code == 404

    result = factories.ScanResultFactory(scan__patient=people.patient)
    newer = alert_raise(scan=result.scan, result=result)
    assert newer.id != alert.id
    blocked = api(people.alice).post(f"/api/v1/alerts/{alert.id}/undo-resolve/")
    assert blocked.status_code == 409 and f"Alert {newer.id}" in blocked.json()["detail"]
