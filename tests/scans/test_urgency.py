"""Is a flagged face a possible stroke? The urgency rule (scans/urgency.py) and where it is applied:
the worker's record, the upload's time of onset, the care team's correction of it, the alert."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.utils import timezone

from alerts.models import Alert, AlertEvent
from scans.analysis import scan_record_result
from scans.models import Scan
from scans.urgency import KnownPalsy, result_urgency
from tests import factories


def decide(label="paralysis", pattern="peripheral", side="left", severity="moderate", onset_hours=None, **extra):
    now = timezone.now()
    onset_at = None if onset_hours is None else now - timedelta(hours=onset_hours)
    return result_urgency(
        label=label,
        pattern=pattern,
        affected_side=side,
        severity=severity,
        onset_at=onset_at,
        now=now,
        window_hours=24,
        **extra,
    )


@pytest.mark.parametrize("label", ["paralysis", "inconclusive"])
@pytest.mark.parametrize("pattern", ["central", "peripheral", "undetermined"])
def test_every_flagged_face_at_rest_with_the_onset_not_given_is_a_possible_stroke(label, pattern):
    """Issue 41: a pattern guessed at rest never makes an alert less urgent. On photos never fitted on, the
    rule named at rest sent half of the central palsies to a routine alert (its peripheral guess)."""
    urgency = decide(label=label, pattern=pattern)
    assert urgency.urgent and ("possible stroke" in urgency.reason or "the stroke pattern" in urgency.reason)


def test_the_onset_decides_for_a_peripheral_face_at_rest():
    assert decide(onset_hours=3).urgent and "3 h ago, within 24 h" in decide(onset_hours=3).reason
    routine = decide(onset_hours=72)
    assert not routine.urgent and "beyond 24 h" in routine.reason
    # The central pattern, and a positive face of undetermined pattern, stay urgent whatever the onset.
    assert decide(pattern="central", onset_hours=72).urgent
    assert decide(pattern="undetermined", onset_hours=72).urgent
    assert not decide(label="inconclusive", pattern="undetermined", onset_hours=72).urgent


def test_a_known_palsy_on_the_same_side_no_worse_is_routine_and_a_new_side_or_a_worse_one_is_not():
    known = KnownPalsy(side="left", severity="moderate", since="2026-10-01")
    same = decide(side="left", severity="mild", known_palsy=known)
    assert not same.urgent and "known left facial palsy (since 2026-10-01)" in same.reason
    assert not decide(pattern="central", side="left", severity="moderate", known_palsy=known).urgent
    other_side = decide(side="right", known_palsy=known, onset_hours=72)
    assert other_side.urgent and "a new side" in other_side.reason
    worse = decide(side="left", severity="severe", known_palsy=known, onset_hours=72)
    assert worse.urgent and "Worse than the known" in worse.reason


def test_a_forehead_measured_weak_on_the_same_side_is_the_peripheral_pattern():
    assert not decide(forehead_involved=True).urgent
    assert decide(forehead_involved=None).urgent  # not measured (a face at rest): not known
    assert not decide(label="no_paralysis").urgent


def analysis_like(**fields) -> SimpleNamespace:
    values = {
        "label": "paralysis",
        "score": 0.8,
        "severity": "moderate",
        "affected_side": "left",
        "pattern": "peripheral",
        "measurements": {"asymmetry_index": 0.7},
        "quality": {"warnings": []},
        "classifier": {},
        "decision": {"rule": "test"},
        "engine_version": "engine-test",
        "overlay_jpeg": None,
        "heatmap_jpeg": None,
    }
    return SimpleNamespace(**{**values, **fields})


@pytest.mark.django_db
def test_the_worker_records_the_urgency_from_the_uploads_onset(people, in_memory_channels):
    unknown = factories.ScanFactory(patient=people.patient, status=Scan.Status.PROCESSING, onset_at=None)
    result = scan_record_result(scan=unknown, analysis=analysis_like(), model_version=None)
    assert result.urgent and "Onset unknown" in result.urgency_reason
    assert Alert.objects.get(scan=unknown).urgent  # a peripheral guess at rest raised an urgent alert

    old = factories.ScanFactory(
        patient=people.other_patient, status=Scan.Status.PROCESSING, onset_at=timezone.now() - timedelta(days=3)
    )
    routine = scan_record_result(scan=old, analysis=analysis_like(), model_version=None)
    assert not routine.urgent and not Alert.objects.get(scan=old).urgent


@pytest.mark.django_db
def test_an_upload_gives_its_onset_and_a_time_to_come_is_refused(people, api):
    from tests.faces import astronaut, jpeg_bytes
    from tests.scans.test_apis import upload

    seen_well = (timezone.now() - timedelta(hours=2)).replace(microsecond=0)
    body = upload(api(people.carol), people.patient.id, jpeg_bytes(astronaut()), onset_at=seen_well.isoformat()).json()
    scan = Scan.objects.get(id=body["id"])
    assert scan.onset_at == seen_well and scan.onset_recorded_by == people.carol
    assert body["onset_at"] is not None and body["onset_recorded_by"] == "carol"
    future = (timezone.now() + timedelta(hours=2)).isoformat()
    refused = upload(api(people.carol), people.patient.id, jpeg_bytes(astronaut()), onset_at=future)
    assert refused.status_code == 400 and "cannot be in the future" in refused.json()["onset_at"][0]
    assert Scan.objects.count() == 1


@pytest.mark.django_db
def test_the_care_team_corrects_the_onset_and_a_possible_stroke_calls_again(people, api, in_memory_channels):
    scan = factories.ScanFactory(
        patient=people.patient, status=Scan.Status.PROCESSING, onset_at=timezone.now() - timedelta(days=3)
    )
    scan_record_result(scan=scan, analysis=analysis_like(), model_version=None)
    alert = Alert.objects.get(scan=scan)
    assert not alert.urgent

    url = f"/api/v1/scans/{scan.id}/onset/"
    recent = (timezone.now() - timedelta(hours=1)).isoformat()
    assert api(people.carol).put(url, {"onset_at": recent}, format="json").status_code == 403  # a caregiver
    assert api(people.bob).put(url, {"onset_at": recent}, format="json").status_code == 404  # another team
    answer = api(people.alice).put(url, {"onset_at": recent}, format="json")
    assert answer.status_code == 200, answer.json()
    assert answer.json()["result"]["urgent"] and answer.json()["onset_recorded_by"] == "alice"
    alert.refresh_from_db()
    assert alert.urgent and alert.call_round == 1 and "time of onset was corrected by alice" in alert.call_reason
    assert AlertEvent.objects.filter(alert=alert, kind="repeated").exists()


@pytest.mark.django_db
def test_an_alert_carries_the_onset_and_the_caregivers_note(people, in_memory_channels):
    """The caregiver's note ("her mouth looks lopsided since lunch" is the onset, in words) sat at the
    bottom of the scan page only: never on the alert card, the alert API or the socket frame."""
    from alerts.fanout import alert_payload

    seen_well = timezone.now() - timedelta(hours=5)
    scan = factories.ScanFactory(
        patient=people.patient,
        status=Scan.Status.PROCESSING,
        onset_at=seen_well,
        note="her mouth looks lopsided since lunch",
    )
    scan_record_result(scan=scan, analysis=analysis_like(), model_version=None)
    payload = alert_payload(Alert.objects.get(scan=scan).id)
    assert payload["scan"]["note"] == "her mouth looks lopsided since lunch"
    assert payload["onset_at"] == seen_well.isoformat()
    assert "within 24 h" in payload["latest_scan"]["urgency_reason"]


@pytest.mark.django_db
def test_a_patient_is_registered_with_a_known_palsy_and_a_half_given_one_is_refused(people, api):
    alice = api(people.alice)
    body = {"mrn": "MRN-77", "full_name": "Ada Bell", "known_palsy_side": "left", "known_palsy_severity": "moderate"}
    made = alice.post("/api/v1/patients/", body, format="json")
    assert made.status_code == 201 and made.json()["known_palsy_side"] == "left"
    half = alice.post(
        "/api/v1/patients/", {"mrn": "MRN-78", "full_name": "Bo", "known_palsy_side": "left"}, format="json"
    )
    assert half.status_code == 400 and "both its side and its severity" in half.json()["known_palsy_severity"][0]


@pytest.mark.django_db
def test_the_scan_page_shows_the_onset_and_why_and_the_care_team_corrects_it(client, people, in_memory_channels):
    scan = factories.ScanFactory(
        patient=people.patient, status=Scan.Status.PROCESSING, onset_at=None, note="lopsided since lunch"
    )
    scan_record_result(scan=scan, analysis=analysis_like(), model_version=None)
    client.force_login(people.alice)
    page = client.get(f"/scans/{scan.id}/").content.decode()
    assert "Last seen without this weakness: <strong>not known</strong>" in page
    assert "Possible stroke:</strong> Onset unknown" in page and "lopsided since lunch" in page
    assert 'id="onset-form"' in page

    future = (timezone.localtime() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    refused = client.post(f"/scans/{scan.id}/onset/", {"onset_at": future})
    assert refused.status_code == 400 and "cannot be in the future" in refused.content.decode()
    days_ago = (timezone.localtime() - timedelta(days=3)).strftime("%Y-%m-%dT%H:%M")
    assert client.post(f"/scans/{scan.id}/onset/", {"onset_at": days_ago}).status_code == 302
    scan.refresh_from_db()
    assert scan.onset_at is not None and scan.onset_recorded_by == people.alice
    assert (
        "Routine:</strong> Last seen without this weakness 72 h ago"
        in client.get(f"/scans/{scan.id}/").content.decode()
    )
    assert Alert.objects.get(scan=scan).urgent  # a possible stroke is never made routine by a correction

    client.force_login(people.carol)
    assert 'id="onset-form"' not in client.get(f"/scans/{scan.id}/").content.decode()
    assert client.post(f"/scans/{scan.id}/onset/", {"onset_at": days_ago}).status_code == 403
