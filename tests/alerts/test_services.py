"""Alert lifecycle rules: episodes, escalation with a controllable clock."""

from __future__ import annotations

import contextlib
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from alerts import services
from alerts.models import Alert, AlertEvent
from alerts.services import alert_acknowledge, alert_escalate_overdue, alert_raise
from scans.models import Scan
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
    # The top tier stays the top tier, and is called again every ALERT_TOP_TIER_REPEAT_MINUTES.
    assert alert.escalation_tier == "triage desk"
    assert alert.next_escalation_at == start + timedelta(minutes=11 + settings.ALERT_TOP_TIER_REPEAT_MINUTES)
    assert alert_escalate_overdue(now=start + timedelta(minutes=12)) == 0
    assert alert_escalate_overdue(now=start + timedelta(hours=5)) == 1
    alert.refresh_from_db()
    assert alert.escalation_level == 2 and alert.repeat_count == 1
    notes = list(AlertEvent.objects.filter(alert=alert, kind="escalated").values_list("note", flat=True))
    assert notes == [
        "not acknowledged in time: escalated to the lead physician",
        "not acknowledged in time: escalated to the triage desk",
        "still not acknowledged: the triage desk is called again (repeat 1)",
    ]


def test_acknowledging_stops_escalation_while_the_claim_holds(people, settings):
    settings.ALERT_CLAIM_TIMEOUT_MINUTES = 60
    start = timezone.now()
    result = positive_scan(people.patient, severity="mild")
    alert = alert_raise(scan=result.scan, result=result, now=start)
    with mock_now(start):
        alert_acknowledge(alert_id=alert.id, user=people.alice, source="web")
    assert services.alert_sweep(now=start + timedelta(minutes=59)) == {
        "released": 0,
        "moved": 0,
        "escalated": 0,
        "requeued": 0,
    }
    alert.refresh_from_db()
    assert alert.escalation_level == 0 and alert.next_escalation_at == start + timedelta(minutes=60)


def flagged_scan(patient, *, label="paralysis", pattern="peripheral", severity="moderate", score=0.9):
    return factories.ScanResultFactory(
        scan__patient=patient, label=label, pattern=pattern, severity=severity, score=score
    )


def test_an_inconclusive_result_reaches_the_care_team_as_a_review_item(people):
    result = flagged_scan(people.patient, label="inconclusive", pattern="undetermined", severity="mild", score=0.45)
    alert = alert_raise(scan=result.scan, result=result)
    assert alert.kind == Alert.Kind.REVIEW and not alert.urgent


def test_the_stroke_pattern_raises_an_urgent_alert_with_the_shortest_deadline(people, settings):
    settings.ALERT_ACK_DEADLINE_MINUTES = {"urgent": 3, "severe": 5, "moderate": 15, "mild": 30, "none": 60}
    now = timezone.now()
    result = flagged_scan(people.patient, pattern="central", severity="mild")
    alert = alert_raise(scan=result.scan, result=result, now=now)
    assert alert.urgent and alert.kind == Alert.Kind.POSITIVE and alert.pattern == "central"
    assert alert.next_escalation_at == now + timedelta(minutes=3)
    peripheral = flagged_scan(people.other_patient, pattern="peripheral", severity="mild")
    calm = alert_raise(scan=peripheral.scan, result=peripheral, now=now)
    assert not calm.urgent and calm.next_escalation_at == now + timedelta(minutes=30)


def test_a_stroke_pattern_joining_an_episode_makes_it_urgent_and_brings_its_deadline_forward(people, settings):
    settings.ALERT_ACK_DEADLINE_MINUTES = {"urgent": 5, "severe": 5, "moderate": 15, "mild": 30, "none": 60}
    now = timezone.now()
    review = flagged_scan(people.patient, label="inconclusive", pattern="undetermined", severity="mild")
    alert = alert_raise(scan=review.scan, result=review, now=now)
    central = flagged_scan(people.patient, pattern="central", severity="mild")
    joined = alert_raise(scan=central.scan, result=central, now=now + timedelta(minutes=1))
    assert joined.id == alert.id
    assert joined.urgent and joined.kind == Alert.Kind.POSITIVE and joined.pattern == "central"
    assert joined.next_escalation_at == now + timedelta(minutes=6)


def test_a_positive_face_of_undetermined_pattern_is_treated_as_a_possible_stroke(people, settings):
    """Its advice says "treat as a possible stroke": so is its alert, with the shortest deadline and a
    call that says so. An inconclusive photo of undetermined pattern stays a review item."""
    from alerts.notify import message

    settings.ALERT_ACK_DEADLINE_MINUTES = {"urgent": 3, "severe": 5, "moderate": 15, "mild": 30, "none": 60}
    now = timezone.now()
    result = flagged_scan(people.patient, pattern="undetermined", severity="mild")
    alert = alert_raise(scan=result.scan, result=result, now=now)
    assert alert.urgent and alert.pattern == "undetermined" and alert.next_escalation_at == now + timedelta(minutes=3)
    assert message(alert, 0)[0] == f"POSSIBLE STROKE #{alert.id}"
    review = flagged_scan(people.other_patient, label="inconclusive", pattern="undetermined", severity="mild")
    assert not alert_raise(scan=review.scan, result=review, now=now).urgent


def test_an_undetermined_positive_joining_a_routine_alert_makes_it_urgent_and_calls_again(
    people, settings, django_capture_on_commit_callbacks
):
    from unittest import mock

    settings.ALERT_ACK_DEADLINE_MINUTES = {"urgent": 5, "severe": 5, "moderate": 15, "mild": 30, "none": 60}
    now = timezone.now()
    first = flagged_scan(people.patient, pattern="peripheral", severity="moderate")
    alert = alert_raise(scan=first.scan, result=first, now=now)
    assert not alert.urgent
    later = flagged_scan(people.patient, pattern="undetermined", severity="moderate")
    with mock.patch("alerts.services.notify_on_commit") as notify:
        joined = alert_raise(scan=later.scan, result=later, now=now + timedelta(minutes=2))
    assert joined.id == alert.id and joined.urgent and joined.pattern == "undetermined"
    assert joined.next_escalation_at == now + timedelta(minutes=7)
    notify.assert_called_once_with(alert.id, 0)  # from the care team up again
    central = flagged_scan(people.patient, pattern="central", severity="moderate")
    assert alert_raise(scan=central.scan, result=central, now=now + timedelta(minutes=3)).pattern == "central"


def test_urgent_alerts_head_the_triage_feed_while_they_are_active(people):
    from alerts.selectors import alert_feed_for_user

    central = flagged_scan(people.patient, pattern="central")
    urgent = alert_raise(scan=central.scan, result=central)
    newer = flagged_scan(people.other_patient, pattern="peripheral")
    calm = alert_raise(scan=newer.scan, result=newer)
    assert [a.id for a in alert_feed_for_user(user=people.triage)] == [urgent.id, calm.id]
    Alert.objects.filter(id=urgent.id).update(status="resolved")
    assert [a.id for a in alert_feed_for_user(user=people.triage)] == [calm.id, urgent.id]


def _published(django_capture_on_commit_callbacks, action):
    """The channel-layer events `action` publishes (captured, not sent)."""
    from unittest import mock

    sent = []

    async def record(groups, event):
        sent.append(event)

    with mock.patch("alerts.events._send_all", new=record), django_capture_on_commit_callbacks(execute=True):
        result = action()
    return result, sent


def test_a_worse_positive_reopens_a_claimed_alert_with_a_new_deadline_and_is_announced(
    people, settings, django_capture_on_commit_callbacks
):
    settings.ALERT_ACK_DEADLINE_MINUTES = {"urgent": 5, "severe": 5, "moderate": 15, "mild": 30, "none": 60}
    now = timezone.now()
    first = positive_scan(people.patient, severity="moderate")
    alert = alert_raise(scan=first.scan, result=first, now=now)
    alert_acknowledge(alert_id=alert.id, user=people.alice, source="api")
    worse = positive_scan(people.patient, severity="severe", score=0.97)
    later = now + timedelta(minutes=20)
    joined, sent = _published(
        django_capture_on_commit_callbacks, lambda: alert_raise(scan=worse.scan, result=worse, now=later)
    )
    assert joined.id == alert.id and joined.status == Alert.Status.OPEN
    assert joined.acknowledged_by is None and joined.escalation_level == 0
    assert joined.next_escalation_at == later + timedelta(minutes=5)  # the severe deadline, from now
    assert AlertEvent.objects.filter(alert=alert).latest("id").kind == AlertEvent.Kind.REOPENED
    assert [(e["type"], e.get("reopened")) for e in sent] == [("alert.repeated", True)]


def test_a_same_severity_positive_on_a_claimed_alert_is_announced_but_stays_claimed(
    people, django_capture_on_commit_callbacks
):
    first = positive_scan(people.patient, severity="moderate")
    alert = alert_raise(scan=first.scan, result=first)
    alert_acknowledge(alert_id=alert.id, user=people.alice, source="api")
    again = positive_scan(people.patient, severity="moderate")
    joined, sent = _published(django_capture_on_commit_callbacks, lambda: alert_raise(scan=again.scan, result=again))
    assert joined.status == Alert.Status.ACKNOWLEDGED and joined.acknowledged_by == people.alice
    assert [(e["type"], e.get("reopened")) for e in sent] == [("alert.repeated", None)]
    assert joined.scan_count == 2


def test_an_inconclusive_photo_joining_an_alert_updates_it_without_a_new_announcement(
    people, django_capture_on_commit_callbacks
):
    first = positive_scan(people.patient, severity="moderate")
    alert = alert_raise(scan=first.scan, result=first)
    review = flagged_scan(people.patient, label="inconclusive", pattern="undetermined", severity="mild", score=0.45)
    joined, sent = _published(django_capture_on_commit_callbacks, lambda: alert_raise(scan=review.scan, result=review))
    assert joined.id == alert.id and [e["type"] for e in sent] == ["alert.updated"]


@pytest.mark.django_db(transaction=True)
def test_two_positives_of_one_patient_finishing_at_once_make_one_alert(people, monkeypatch):
    """Two workers record two photos of one patient at the same moment (each with its scan locked, as
    scans/analysis.py does): one alert of two scans, not two alerts."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL's row locks (SQLite runs one writer at a time)")
    first, second = positive_scan(people.patient), positive_scan(people.patient)
    both_checked = threading.Barrier(2)
    kind_of = services._kind_of

    def after_the_check(result):
        # Reached by a worker that found no open alert. Without the patient's lock both get here before
        # either has raised one; with it, the other waits for the lock and the barrier times out.
        with contextlib.suppress(threading.BrokenBarrierError):
            both_checked.wait(timeout=3)
        return kind_of(result)

    monkeypatch.setattr(services, "_kind_of", after_the_check)

    def record(result) -> int:
        try:
            with transaction.atomic():
                locked = Scan.objects.select_for_update().get(id=result.scan_id)
                return services.alert_raise(scan=locked, result=result).id
        finally:
            connection.close()

    with ThreadPoolExecutor(2) as pool:
        ids = list(pool.map(record, [first, second]))
    assert ids[0] == ids[1]
    alert = Alert.objects.get()
    assert alert.scan_count == 2
    assert sorted(AlertEvent.objects.filter(alert=alert).values_list("kind", flat=True)) == ["raised", "repeated"]


def test_a_stroke_pattern_joining_an_alert_at_the_triage_desk_never_stops_the_sweep(people, settings):
    """Found in review: the join gave a triage-desk alert a deadline again, the next sweep computed a
    fourth tier, raised IndexError and stopped escalating every other overdue alert."""
    settings.ALERT_ACK_DEADLINE_MINUTES = {"urgent": 5, "severe": 5, "moderate": 15, "mild": 30, "none": 60}
    start = timezone.now()
    routine = alert_raise(scan=(first := flagged_scan(people.patient, severity="severe")).scan, result=first, now=start)
    assert alert_escalate_overdue(now=start + timedelta(minutes=6)) == 1
    assert alert_escalate_overdue(now=start + timedelta(minutes=12)) == 1
    routine.refresh_from_db()
    assert routine.escalation_tier == "triage desk"
    central = flagged_scan(people.patient, pattern="central", severity="severe")
    alert_raise(scan=central.scan, result=central, now=start + timedelta(minutes=13))
    other = flagged_scan(people.other_patient, severity="severe")
    waiting = alert_raise(scan=other.scan, result=other, now=start + timedelta(minutes=13))
    alert_escalate_overdue(now=start + timedelta(minutes=30))
    waiting.refresh_from_db()
    assert waiting.escalation_level >= 1  # the other alert still escalated
    routine.refresh_from_db()
    assert routine.escalation_level <= 2 and routine.next_escalation_at is not None


def test_one_alert_failing_to_escalate_is_logged_and_skipped_never_the_rest(people, monkeypatch, caplog):
    start = timezone.now()
    first, second = flagged_scan(people.patient), flagged_scan(people.other_patient)
    broken = alert_raise(scan=first.scan, result=first, now=start)
    fine = alert_raise(scan=second.scan, result=second, now=start)
    real = services.publish_alert

    def publish(**kwargs):
        if kwargs["alert_id"] == broken.id:
            raise RuntimeError("channel layer exploded")
        return real(**kwargs)

    monkeypatch.setattr(services, "publish_alert", publish)
    assert alert_escalate_overdue(now=start + timedelta(hours=2)) == 1
    broken.refresh_from_db()
    fine.refresh_from_db()
    assert fine.escalation_level == 1 and broken.escalation_level == 0  # its step rolled back, retried next sweep
    assert "could not escalate alert" in caplog.text


# Issue 40: an alert reaches people as soon as its severity says, whatever happened to it meanwhile.


def test_a_worse_photo_joining_an_open_alert_brings_the_deadline_forward_and_calls_the_team_again(
    people, settings, django_capture_on_commit_callbacks
):
    """The caregiver is told to retake the photo: a mild review item (30-minute deadline) joined a
    minute later by a severe positive is due on the severe deadline, and the care team is called again
    with what changed (it kept the old deadline and called nobody)."""
    from unittest import mock

    settings.ALERT_ACK_DEADLINE_MINUTES = {"urgent": 5, "severe": 5, "moderate": 15, "mild": 30, "none": 60}
    now = timezone.now()
    review = flagged_scan(people.patient, label="inconclusive", pattern="peripheral", severity="mild")
    alert = alert_raise(scan=review.scan, result=review, now=now)
    worse = flagged_scan(people.patient, pattern="peripheral", severity="severe")
    with mock.patch("alerts.services.notify_on_commit") as notify:
        joined = alert_raise(scan=worse.scan, result=worse, now=now + timedelta(minutes=1))
    assert joined.id == alert.id and joined.status == Alert.Status.OPEN
    assert joined.next_escalation_at == now + timedelta(minutes=6)
    notify.assert_called_once()
    assert "severe" in joined.call_reason
    assert services.alert_sweep(now=now + timedelta(minutes=7))["escalated"] == 1
    joined.refresh_from_db()
    assert joined.escalation_tier == "lead physician"


def test_a_worse_photo_never_moves_an_alert_back_down_the_tiers(people, settings):
    """Urgency never lowers the tier already reached: a routine alert at the triage desk that becomes a
    possible stroke stays at the triage desk (it stepped back to the care team's tier), due sooner."""
    settings.ALERT_ACK_DEADLINE_MINUTES = {"urgent": 5, "severe": 5, "moderate": 15, "mild": 30, "none": 60}
    start = timezone.now()
    routine = flagged_scan(people.patient, severity="moderate")
    alert = alert_raise(scan=routine.scan, result=routine, now=start)
    services.alert_sweep(now=start + timedelta(minutes=16))
    services.alert_sweep(now=start + timedelta(minutes=32))
    alert.refresh_from_db()
    assert alert.escalation_tier == "triage desk"
    central = flagged_scan(people.patient, pattern="central", severity="moderate")
    joined = alert_raise(scan=central.scan, result=central, now=start + timedelta(minutes=33))
    assert joined.urgent and joined.escalation_tier == "triage desk"
    assert joined.next_escalation_at <= start + timedelta(minutes=38)


def test_a_claim_by_someone_who_can_no_longer_see_the_patient_is_released_and_called_again(people, settings):
    """Alice claims a severe central alert, is taken off the team and deactivated: the claim is released
    at the next sweep (open, on its deadline, the team called again), and a colleague can claim it (it
    stayed hers for days, never escalated, and a colleague's claim was refused as a conflict)."""
    from unittest import mock

    colleague = factories.UserFactory(username="colleague")
    factories.add_to_team(factories.PhysicianFactory(user=colleague), people.team)
    start = timezone.now()
    central = flagged_scan(people.patient, pattern="central", severity="severe")
    alert = alert_raise(scan=central.scan, result=central, now=start)
    alert_acknowledge(alert_id=alert.id, user=people.alice, source="web")
    people.dr_alice.memberships.all().delete()
    people.alice.is_active = False
    people.alice.save()
    with mock.patch("alerts.services.notify_on_commit") as notify:
        done = services.alert_sweep(now=start + timedelta(minutes=2))
    assert done["released"] == 1
    alert.refresh_from_db()
    assert alert.status == Alert.Status.OPEN and alert.acknowledged_by is None
    assert alert.next_escalation_at is not None and alert.next_escalation_at <= start + timedelta(minutes=7)
    notify.assert_called_once()
    assert AlertEvent.objects.filter(alert=alert, kind=AlertEvent.Kind.RELEASED).exists()
    assert alert_acknowledge(alert_id=alert.id, user=colleague, source="web").acknowledged_by == colleague


def test_a_claim_left_unresolved_past_the_claim_timeout_goes_back_to_open_and_escalates(people, settings):
    settings.ALERT_CLAIM_TIMEOUT_MINUTES = 60
    start = timezone.now()
    result = flagged_scan(people.patient, severity="severe")
    alert = alert_raise(scan=result.scan, result=result, now=start)
    with mock_now(start + timedelta(minutes=1)):
        alert_acknowledge(alert_id=alert.id, user=people.alice, source="web")
    assert services.alert_sweep(now=start + timedelta(minutes=50))["released"] == 0
    assert services.alert_sweep(now=start + timedelta(minutes=62))["released"] == 1
    alert.refresh_from_db()
    assert alert.status == Alert.Status.OPEN and alert.acknowledged_by is None
    assert alert.escalation_tier == "lead physician"  # re-triggered one tier up, as a pager does


def test_the_care_team_a_patient_moves_to_is_called_for_every_open_alert(people, settings):
    """Tier 0 went to the old team; after the move tier 1 reached only the new team's lead and tier 2 the
    desk: the new team's members were never called."""
    from alerts import notify

    newcomer = factories.UserFactory(username="newcomer")
    factories.add_to_team(factories.PhysicianFactory(user=newcomer), people.other_team)  # bob is there too
    called: list[tuple[int, list[str]]] = []
    start = timezone.now()
    result = flagged_scan(people.patient, severity="moderate")
    alert = alert_raise(scan=result.scan, result=result, now=start)

    def record(alert, level, *, repeat=0):
        called.append((level, [user.get_username() for user in notify.tier_recipients(alert, level)]))
        return {"pushed": 0, "mailed": 0, "people": 1}

    with mock_attr(notify, "call_tier", record):
        notify.notify_alert(alert.id, 0)
        people.patient.care_team = people.other_team
        people.patient.save()
        with mock_attr(services, "notify_on_commit", lambda alert_id, level: notify.notify_alert(alert_id, level)):
            services.alert_sweep(now=start + timedelta(minutes=1))
    assert called[0] == (0, ["alice"])  # the old team (alice is its only physician)
    assert called[1:] == [(0, ["bob", "newcomer"])]


def mock_now(moment):
    from unittest import mock

    return mock.patch("django.utils.timezone.now", return_value=moment)


def mock_attr(owner, name, value):
    from unittest import mock

    return mock.patch.object(owner, name, value)


def test_an_inconclusive_central_photo_makes_an_alert_urgent_but_never_heads_it_stroke_pattern(people):
    """The heading follows the strongest evidence of the episode: a routine positive joined by an
    inconclusive photo of the central pattern is a possible stroke (it was headed STROKE PATTERN)."""
    from alerts.notify import message

    routine = flagged_scan(people.patient, pattern="peripheral", severity="moderate")
    alert = alert_raise(scan=routine.scan, result=routine)
    unsure = flagged_scan(people.patient, label="inconclusive", pattern="central", severity="moderate", score=0.5)
    joined = alert_raise(scan=unsure.scan, result=unsure)
    assert joined.id == alert.id and joined.urgent
    assert joined.heading == "POSSIBLE STROKE" and message(joined, 0)[0].startswith("POSSIBLE STROKE")
    assert "a possible stroke" in joined.call_reason
    sure = flagged_scan(people.patient, pattern="central", severity="moderate")
    assert alert_raise(scan=sure.scan, result=sure).heading == "STROKE PATTERN"


def test_an_alert_describes_its_episode_and_names_the_event_of_its_latest_calls(people, settings):
    """A card headed STROKE PATTERN read "referring physician: none" beside the latest photo: the payload
    names the episode's referring physician and pattern; each call has an event a screen sounds once."""
    from alerts.fanout import alert_payload

    settings.ALERT_ACK_DEADLINE_MINUTES = {"urgent": 5, "severe": 5, "moderate": 15, "mild": 30, "none": 60}
    start = timezone.now()
    first = factories.ScanResultFactory(
        scan__patient=people.patient, scan__referring_physician=people.dr_alice, pattern="central", severity="severe"
    )
    alert = alert_raise(scan=first.scan, result=first, now=start)
    later = flagged_scan(people.patient, pattern="peripheral", severity="severe")
    alert_raise(scan=later.scan, result=later, now=start + timedelta(minutes=1))
    payload = alert_payload(alert.id)
    assert payload["heading"] == "STROKE PATTERN" and payload["referring_physician"] == "Dr Alice"
    assert payload["pattern"] == "central" and payload["latest_scan"]["pattern"] == "peripheral"
    raised = payload["latest_call"]
    assert raised["kind"] == "raised" and raised["words"] == ""

    calls = []
    for minutes in (6, 12, 23, 34):  # lead physician, triage desk, then the desk again twice
        services.alert_sweep(now=start + timedelta(minutes=minutes))
        calls.append(alert_payload(alert.id)["latest_call"])
    assert len({call["event_id"] for call in [raised, *calls]}) == 5
    assert calls[0]["words"] == "Not acknowledged in time: escalated to the lead physician."
    assert calls[3]["words"] == "Still not acknowledged: the triage desk is called again (repeat 2)."

    alert_acknowledge(alert_id=alert.id, user=people.alice, source="web")
    worse = flagged_scan(people.patient, label="paralysis", pattern="central", severity="severe", score=0.99)
    Alert.objects.filter(id=alert.id).update(severity="moderate")  # so that the severe photo is worse
    alert_raise(scan=worse.scan, result=worse, now=start + timedelta(minutes=40))
    reopened = alert_payload(alert.id)
    assert reopened["status"] == "open" and reopened["escalation_tier"] == "triage desk"
    assert reopened["latest_call"]["kind"] == "reopened"
    assert reopened["latest_call"]["words"].startswith("Called again: a worse photo")
