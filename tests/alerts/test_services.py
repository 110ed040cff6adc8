"""Alert lifecycle rules: episodes, escalation with a controllable clock."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from alerts.models import Alert, AlertEvent
from alerts.services import alert_acknowledge, alert_escalate_overdue, alert_raise
from tests import factories

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("in_memory_channels")]


def positive_scan(patient, severity="moderate", score=0.9):
    return factories.ScanResultFactory(scan__patient=patient, severity=severity, score=score)


def test_repeated_positives_in_an_episode_join_one_alert(people):
    first = positive_scan(people.patient)
    alert = alert_raise(scan=first.scan, result=first)
    second = positive_scan(people.patient, severity="severe", score=0.97)
    joined = alert_raise(scan=second.scan, result=second)
    assert joined.id == alert.id
    assert joined.scan_count == 2 and joined.latest_scan_id == second.scan_id
    assert joined.severity == "severe" and joined.score == 0.97  # the worst of the episode
    assert Alert.objects.count() == 1
    second.scan.refresh_from_db()
    assert second.scan.episode_alert_id == alert.id
    assert list(AlertEvent.objects.filter(alert=alert).values_list("kind", flat=True)) == ["raised", "repeated"]


def test_raising_twice_for_the_same_scan_changes_nothing(people):
    result = positive_scan(people.patient)
    alert = alert_raise(scan=result.scan, result=result)
    result.scan.refresh_from_db()
    assert alert_raise(scan=result.scan, result=result).id == alert.id
    assert Alert.objects.get().scan_count == 1


def test_a_positive_after_the_episode_raises_a_new_alert(people, settings):
    settings.ALERT_EPISODE_HOURS = 24
    first = positive_scan(people.patient)
    old = alert_raise(scan=first.scan, result=first, now=timezone.now())
    later = positive_scan(people.patient)
    new = alert_raise(scan=later.scan, result=later, now=timezone.now() + timedelta(hours=25))
    assert new.id != old.id


def test_a_positive_after_the_alert_was_resolved_raises_a_new_alert(people):
    first = positive_scan(people.patient)
    old = alert_raise(scan=first.scan, result=first)
    Alert.objects.filter(id=old.id).update(status="resolved")
    again = positive_scan(people.patient)
    assert alert_raise(scan=again.scan, result=again).id != old.id


def test_other_patients_never_share_an_alert(people):
    mine = positive_scan(people.patient)
    theirs = positive_scan(people.other_patient)
    assert alert_raise(scan=mine.scan, result=mine).id != alert_raise(scan=theirs.scan, result=theirs).id


def test_an_unacknowledged_alert_escalates_tier_by_tier_on_its_severity_deadline(people, settings):
    settings.ALERT_ACK_DEADLINE_MINUTES = {"severe": 5, "moderate": 15, "mild": 30, "none": 60}
    start = timezone.now()
    result = positive_scan(people.patient, severity="severe")
    alert = alert_raise(scan=result.scan, result=result, now=start)
    assert alert_escalate_overdue(now=start + timedelta(minutes=4)) == 0
    assert alert_escalate_overdue(now=start + timedelta(minutes=5, seconds=1)) == 1
    alert.refresh_from_db()
    assert alert.escalation_level == 1 and alert.escalation_tier == "lead physician"
    assert alert_escalate_overdue(now=start + timedelta(minutes=6)) == 0  # the next deadline restarts
    assert alert_escalate_overdue(now=start + timedelta(minutes=11)) == 1
    alert.refresh_from_db()
    assert alert.escalation_tier == "triage desk" and alert.next_escalation_at is None
    assert alert_escalate_overdue(now=start + timedelta(hours=5)) == 0  # the last tier: no further
    notes = list(AlertEvent.objects.filter(alert=alert, kind="escalated").values_list("note", flat=True))
    assert notes == ["not acknowledged in time: escalated to the lead physician",
                     "not acknowledged in time: escalated to the triage desk"]


def test_acknowledging_stops_escalation(people):
    start = timezone.now()
    result = positive_scan(people.patient, severity="mild")
    alert = alert_raise(scan=result.scan, result=result, now=start)
    alert_acknowledge(alert_id=alert.id, user=people.alice, source="web")
    assert alert_escalate_overdue(now=start + timedelta(days=1)) == 0
    alert.refresh_from_db()
    assert alert.escalation_level == 0 and alert.next_escalation_at is None
