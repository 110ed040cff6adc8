"""Escalation as a state machine, under random sequences of events (hypothesis).

Events: photos flagged (any severity, pattern, positive or review) that raise an alert or join it
(re-opening a claimed one, or making an open one worse), claims, resolutions, the clock moving, sweeps
(escalation, lapsed claims, team moves, calls nobody is making), the patient moved to another team or
out of any, and the notification tasks delivered late, out of order or twice. The stand-in for a call
fails the way a real one does: cut off before it reached anyone, or after (a soft time limit, a killed
worker), and the task that was making it is then delivered again, or lost.

Invariants, after every event: nothing raises; an active alert always has a next deadline (an open
one's next step, a claimed one's lapse); its tier is never past the top and never goes down; every
call is of an open alert and, in each calling round, first made in order: the care team, the lead
physician, the triage desk, then repeats of the triage desk. A call is made again only after an
attempt that was cut off. At the end, with every queued task delivered and the calls nobody is making
queued again, every call of an open alert's current round is made: each tier up to its current one,
and its latest repeat.
"""

from __future__ import annotations

from datetime import timedelta

from celery.exceptions import SoftTimeLimitExceeded
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from alerts import notify, services
from alerts.models import TOP_TIER, Alert
from alerts.services import (
    AlertConflict,
    AlertNotFound,
    alert_acknowledge,
    alert_raise,
    alert_requeue_unmade_calls,
    alert_resolve,
    alert_sweep,
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
        st.tuples(st.just("move")),  # the patient moves to the other team, or out of any, and back
        st.tuples(st.just("cut"), st.sampled_from(["before", "after"]), st.booleans()),  # the next call fails
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
        self.other_team = factories.CareTeamFactory(name="Neurology")
        factories.add_to_team(
            factories.PhysicianFactory(user=factories.UserFactory(username="neurologist")), self.other_team
        )

    @settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(events=events, with_team=st.booleans())
    def test_every_call_is_made_in_order_at_least_once_and_nothing_stops(self, events, with_team):
        patient = factories.PatientFactory(care_team=self.team if with_team else None)
        queue: list[tuple[int, int, str]] = []
        made: dict[tuple[int, int], list[tuple[int, int]]] = {}  # (alert, round) -> first makings, in order
        cut_off: set[tuple[int, int, int, int]] = set()  # calls whose last attempt was cut off
        failing: list[str] = []  # "before" / "after": how the next call is cut off
        levels: dict[int, int] = {}
        task_ids = iter(range(1_000_000))
        originals = services.notify_on_commit, notify.call_tier

        def stand_in_call(alert, level, *, repeat=0):
            row = Alert.objects.get(id=alert.id)
            assert row.status == Alert.Status.OPEN, f"a {row.status} alert was called"
            key, call = (alert.id, row.call_round), (level, repeat)
            if failing and failing[0] == "before":
                failing.pop(0)
                cut_off.add((*key, *call))
                raise SoftTimeLimitExceeded()
            seq = made.setdefault(key, [])
            if call in seq:
                assert (*key, *call) in cut_off, f"alert {alert.id}: {call} made twice, never cut off: {seq}"
            elif seq:
                tier, last_repeat = seq[-1]
                ok = call == (tier + 1, 0) if tier < TOP_TIER else level == TOP_TIER and repeat > last_repeat
                assert ok, f"alert {alert.id} round {row.call_round}: call {call} after {seq}"
                seq.append(call)
            else:
                assert call == (0, 0), f"alert {alert.id} round {row.call_round} first called at {call}"
                seq.append(call)
            if failing and failing[0] == "after":  # reached its people, cut off before it was marked made
                failing.pop(0)
                cut_off.add((*key, *call))
                raise SoftTimeLimitExceeded()
            cut_off.discard((*key, *call))
            return {"pushed": 0, "mailed": 0, "people": 1}

        def deliver(alert_id: int, level: int, task_id: str) -> bool:
            """True when the task ended; False when it was cut off."""
            try:
                notify.notify_alert(alert_id, level, task_id=task_id)
            except SoftTimeLimitExceeded:
                return False
            return True

        services.notify_on_commit = lambda alert_id, level: queue.append((alert_id, level, f"t{next(task_ids)}"))
        notify.call_tier = stand_in_call
        try:
            now = timezone.now()
            for event in events:
                kind = event[0]
                if kind == "flag":
                    _, severity, pattern, label = event
                    result = factories.ScanResultFactory(
                        scan__patient=patient, label=label, pattern=pattern, severity=severity
                    )
                    alert_raise(scan=result.scan, result=result, now=now)
                elif kind in ("claim", "resolve"):
                    alert = Alert.objects.filter(patient=patient, status__in=Alert.ACTIVE_STATUSES).first()
                    actor = self.member if patient.care_team_id == self.team.id else self.desk
                    if alert is not None:
                        try:
                            if kind == "claim":
                                alert_acknowledge(alert_id=alert.id, user=actor, source="api")
                            else:
                                alert_resolve(alert_id=alert.id, user=actor, outcome="confirmed", source="api")
                        except (AlertConflict, AlertNotFound):
                            pass
                elif kind == "undo":
                    alert = Alert.objects.filter(patient=patient, status=Alert.Status.RESOLVED).order_by("-id").first()
                    if alert is not None:
                        try:
                            alert_undo_resolve(alert_id=alert.id, user=alert.resolved_by, source="api")
                        except (AlertConflict, AlertNotFound):
                            pass
                        active = Alert.objects.filter(patient=patient, status__in=Alert.ACTIVE_STATUSES)
                        assert active.count() <= 1, "an undo made two active alerts for one patient"
                elif kind == "advance":
                    now += timedelta(minutes=event[1])
                elif kind == "sweep":
                    alert_sweep(now=now)
                elif kind == "tick":
                    now += timedelta(minutes=event[1])
                    alert_sweep(now=now)
                elif kind == "move":
                    patient.care_team = self.other_team if patient.care_team_id == self.team.id else self.team
                    patient.save()
                elif kind == "cut":
                    failing.append(event[1])
                elif kind == "deliver" and queue:
                    position = event[1] % len(queue)
                    task = queue[position] if event[2] else queue.pop(position)  # twice, or once and late
                    if not deliver(*task) and event[2] is False and len(failing) % 2:
                        queue.append(task)  # cut off, then redelivered (acks late) rather than lost
                for alert in Alert.objects.filter(status__in=Alert.ACTIVE_STATUSES):
                    assert alert.next_escalation_at is not None, f"active alert {alert.id} has no next deadline"
                    assert alert.escalation_level <= TOP_TIER
                    assert alert.escalation_level >= levels.get(alert.id, 0), f"alert {alert.id} went down a tier"
                    levels[alert.id] = alert.escalation_level
            failing.clear()
            for _ in range(3):  # what was queued, then what the sweep finds nobody is making
                while queue:
                    deliver(*queue.pop())
                alert_requeue_unmade_calls(now=timezone.now() + timedelta(seconds=notify.call_lease_seconds() + 1))
            for alert in Alert.objects.filter(status=Alert.Status.OPEN):
                due = set(alert.calls.filter(round=alert.call_round).values_list("tier", "repeat"))
                assert {(tier, 0) for tier in range(alert.escalation_level + 1)} <= due
                if alert.escalation_level == TOP_TIER and alert.repeat_count:
                    assert (TOP_TIER, alert.repeat_count) in due
                reached = set(made.get((alert.id, alert.call_round), []))
                assert due <= reached, f"alert {alert.id}: calls that reached nobody: {sorted(due - reached)}"
                unmade = alert.calls.filter(round=alert.call_round, made_at__isnull=True)
                assert not unmade.exists(), f"alert {alert.id}: calls never marked made: {list(unmade)}"
        finally:
            services.notify_on_commit, notify.call_tier = originals
