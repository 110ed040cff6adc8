"""Escalation as a state machine, under random sequences of events (hypothesis).

Events: photos flagged (any severity, pattern, positive or review) that raise an alert or join it
(re-opening a claimed one, or making an open one stroke-urgent), claims, resolutions, the clock moving,
escalation sweeps, and the notification tasks delivered late, out of order or twice.

Invariants, after every event: nothing raises; an open alert always has a next deadline; its tier is
never past the top; every call (push and e-mail) is of an open alert and comes in order: the care team,
the lead physician, the triage desk, then repeats of the triage desk, each exactly once, starting
again from the care team only when the alert was re-opened or became urgent. At the end, with every
queued task delivered, every tier up to an open alert's current one has been called.
"""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from alerts import notify, services
from alerts.models import TOP_TIER, Alert
from alerts.services import (
    AlertConflict,
    alert_acknowledge,
    alert_escalate_overdue,
    alert_raise,
    alert_resolve,
    alert_undo_resolve,
)
from tests import factories

flag = st.tuples(
    st.just("flag"),
    st.sampled_from(["mild", "moderate", "severe"]),
    st.sampled_from(["central", "peripheral", "undetermined"]),
    st.sampled_from(["paralysis", "inconclusive"]),
)
events = st.lists(
    st.one_of(
        flag,
        st.tuples(st.just("claim")),
        st.tuples(st.just("resolve")),
        st.tuples(st.just("undo")),  # the resolver takes back the latest resolution
        st.tuples(st.just("advance"), st.integers(min_value=1, max_value=90)),
        st.tuples(st.just("sweep")),
        st.tuples(st.just("tick"), st.integers(min_value=1, max_value=120)),  # the clock moves, then a sweep
        st.tuples(st.just("deliver"), st.integers(min_value=0, max_value=50), st.booleans()),
    ),
    max_size=40,
)


class EscalationProperties(TestCase):
    def setUp(self):
        team = factories.CareTeamFactory(name="Stroke Unit")
        self.member = factories.UserFactory(username="member")
        factories.add_to_team(factories.PhysicianFactory(user=self.member), team)
        lead = factories.PhysicianFactory(user=factories.UserFactory(username="lead"))
        factories.add_to_team(lead, team, role="lead")
        self.desk = factories.UserFactory(username="desk", is_staff=True)
        self.team = team

    @settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(events=events, with_team=st.booleans())
    def test_every_tier_is_called_once_in_order_and_nothing_stops(self, events, with_team):
        patient = factories.PatientFactory(care_team=self.team if with_team else None)
        queue: list[tuple[int, int]] = []
        calls: dict[int, list[tuple[int, int]]] = {}
        resets: dict[int, int] = {}
        original_notify_on_commit, original_call_tier = services.notify_on_commit, notify.call_tier

        def record_call(alert, level, *, repeat=0):
            status = Alert.objects.get(id=alert.id).status
            assert status == Alert.Status.OPEN, f"a {status} alert was called"
            seq = calls.setdefault(alert.id, [])
            if (level, repeat) == (0, 0) and seq:
                assert resets.get(alert.id, 0) > 0, f"alert {alert.id} called from the care team again: {seq}"
                resets[alert.id] -= 1
                seq.clear()
            expected_first = (0, 0)
            if seq:
                tier, last_repeat = seq[-1]
                ok = (level, repeat) == (tier + 1, 0) if tier < TOP_TIER else level == TOP_TIER and repeat > last_repeat
                assert ok, f"alert {alert.id}: call {(level, repeat)} after {seq}"
            else:
                assert (level, repeat) == expected_first, f"alert {alert.id} first called at {(level, repeat)}"
            seq.append((level, repeat))
            return {"pushed": 0, "mailed": 0, "people": 1}

        services.notify_on_commit = lambda alert_id, level: queue.append((alert_id, level))
        notify.call_tier = record_call
        try:
            now = timezone.now()
            for event in events:
                kind = event[0]
                if kind == "flag":
                    _, severity, pattern, label = event
                    result = factories.ScanResultFactory(
                        scan__patient=patient, label=label, pattern=pattern, severity=severity
                    )
                    before = {a.id: a.called_level for a in Alert.objects.filter(patient=patient)}
                    alert = alert_raise(scan=result.scan, result=result, now=now)
                    alert.refresh_from_db()
                    if before.get(alert.id, -1) >= 0 and alert.called_level == -1:
                        resets[alert.id] = resets.get(alert.id, 0) + 1
                elif kind in ("claim", "resolve"):
                    alert = Alert.objects.filter(patient=patient, status__in=Alert.ACTIVE_STATUSES).first()
                    actor = self.member if with_team else self.desk  # the desk sees every patient
                    if alert is not None:
                        try:
                            if kind == "claim":
                                alert_acknowledge(alert_id=alert.id, user=actor, source="api")
                            else:
                                alert_resolve(alert_id=alert.id, user=actor, outcome="confirmed", source="api")
                        except AlertConflict:
                            pass
                elif kind == "undo":
                    alert = Alert.objects.filter(patient=patient, status=Alert.Status.RESOLVED).order_by("-id").first()
                    if alert is not None:
                        try:
                            alert_undo_resolve(alert_id=alert.id, user=alert.resolved_by, source="api")
                        except AlertConflict:
                            pass
                        active = Alert.objects.filter(patient=patient, status__in=Alert.ACTIVE_STATUSES)
                        assert active.count() <= 1, "an undo made two active alerts for one patient"
                elif kind == "advance":
                    now += timedelta(minutes=event[1])
                elif kind == "sweep":
                    alert_escalate_overdue(now=now)
                elif kind == "tick":
                    now += timedelta(minutes=event[1])
                    alert_escalate_overdue(now=now)
                elif kind == "deliver" and queue:
                    position = event[1] % len(queue)
                    task = queue[position] if event[2] else queue.pop(position)  # twice, or once and late
                    notify.notify_alert(*task)
                for alert in Alert.objects.filter(status=Alert.Status.OPEN):
                    assert alert.next_escalation_at is not None, f"open alert {alert.id} has no next deadline"
                    assert alert.escalation_level <= TOP_TIER
            while queue:
                notify.notify_alert(*queue.pop())
            for alert in Alert.objects.filter(status=Alert.Status.OPEN):
                assert alert.called_level == alert.escalation_level, f"alert {alert.id}: a tier never called"
                if alert.escalation_level == TOP_TIER:
                    assert alert.called_repeats == alert.repeat_count
        finally:
            services.notify_on_commit, notify.call_tier = original_notify_on_commit, original_call_tier
