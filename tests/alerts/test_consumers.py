"""The WebSocket consumer with the in-memory channel layer (per process; the worker -> browser path
over Redis is in tests/integration)."""

from __future__ import annotations

import json

import pytest
from channels.testing import WebsocketCommunicator
from knox.models import AuthToken

from alerts.models import Alert
from alerts.services import alert_acknowledge, alert_raise
from portal.asgi import application
from portal.credentials import issue_token
from tests import factories

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("in_memory_channels")]

FRAME_KEYS = {
    "id",
    "last_event_id",
    "kind",
    "heading",  # from the strongest evidence of the episode (Alert.heading)
    "urgent",
    "pattern",
    "pattern_display",
    "referring_physician",  # the episode's
    "onset_at",  # when the person was last seen without this weakness (issue 41), null: not known
    "advice",
    "status",
    "severity",
    "score",
    "created_at",
    "patient",
    "scan",
    "latest_scan",
    "scan_count",
    "escalation_level",
    "escalation_tier",
    "next_escalation_at",  # when an unclaimed alert's next call goes out (the feed shows it)
    "repeat_count",
    "call_round",
    "call_reason",
    "latest_call",  # the event of its latest calls: a screen sounds once for each
    "acknowledged_by",
    "acknowledged_at",
    "resolved_by",
    "resolved_at",
    "outcome",
    "disclaimer",
}


async def connect(user=None, query: str = "", headers=None):
    from asgiref.sync import sync_to_async

    path = "/ws/alerts/"
    params = []
    if user is not None:
        _, token = await sync_to_async(issue_token)(user)
        params.append(f"token={token}")
    if query:
        params.append(query)
    if params:
        path += "?" + "&".join(params)
    communicator = WebsocketCommunicator(application, path, headers=headers or [])
    connected, code = await communicator.connect()
    return communicator, connected, code


def raise_alert_for(patient):
    result = factories.ScanResultFactory(scan__patient=patient)
    return alert_raise(scan=result.scan, result=result)


async def test_it_refuses_an_anonymous_socket(people):
    communicator, connected, _ = await connect(None, headers=[(b"origin", b"http://testserver")])
    assert not connected
    await communicator.disconnect()


async def test_it_refuses_a_browser_socket_from_a_foreign_origin(people):
    communicator, connected, _ = await connect(people.alice, headers=[(b"origin", b"https://evil.example")])
    assert not connected
    await communicator.disconnect()


async def test_an_alert_reaches_the_care_team_caregiver_and_staff_but_not_outsiders(people):
    from asgiref.sync import sync_to_async

    sockets = {}
    for persona in ("triage", "alice", "carol", "bob", "dave"):
        communicator, connected, _ = await connect(getattr(people, persona))
        assert connected, persona
        sockets[persona] = communicator
    alert = await sync_to_async(raise_alert_for)(people.patient)
    try:
        for persona in ("triage", "alice", "carol"):
            frame = await sockets[persona].receive_json_from(timeout=3)
            assert frame["type"] == "alert.created"
            assert frame["alert"]["id"] == alert.id
            assert set(frame["alert"]) == FRAME_KEYS
            assert json.loads(json.dumps(frame)) == frame
        for persona in ("bob", "dave"):
            assert await sockets[persona].receive_nothing(timeout=0.3), persona
    finally:
        for communicator in sockets.values():
            await communicator.disconnect()


async def test_a_reconnecting_client_gets_the_alerts_it_missed_in_order(settings, people):
    settings.ALERT_EPISODE_HOURS = 0  # one alert per scan here, not one per episode
    from asgiref.sync import sync_to_async

    first = await sync_to_async(raise_alert_for)(people.patient)
    missed = [await sync_to_async(raise_alert_for)(people.patient) for _ in range(3)]
    await sync_to_async(raise_alert_for)(people.other_patient)  # not alice's: never replayed to her
    communicator, connected, _ = await connect(people.alice, query=f"after={first.id}")
    assert connected
    replayed = [await communicator.receive_json_from(timeout=3) for _ in missed]
    assert [frame["alert"]["id"] for frame in replayed] == [alert.id for alert in missed]
    assert all(frame["replayed"] for frame in replayed)
    assert await communicator.receive_nothing(timeout=0.3)
    await communicator.disconnect()


async def test_a_clinician_acknowledges_over_the_socket_and_everyone_sees_it_claimed(people):
    from asgiref.sync import sync_to_async

    alert = await sync_to_async(raise_alert_for)(people.patient)
    alice, _, _ = await connect(people.alice)
    triage, _, _ = await connect(people.triage)
    await alice.send_json_to({"type": "alert.acknowledge", "id": alert.id})
    for communicator in (alice, triage):
        frame = await communicator.receive_json_from(timeout=3)
        assert frame["type"] == "alert.updated"
        assert frame["alert"]["status"] == "acknowledged"
        assert frame["alert"]["acknowledged_by"] == "alice"
    await triage.send_json_to({"type": "alert.acknowledge", "id": alert.id})
    error = await triage.receive_json_from(timeout=3)
    assert error["type"] == "error" and "claimed by alice" in error["error"]
    assert (await sync_to_async(Alert.objects.get)(id=alert.id)).status == "acknowledged"
    await alice.disconnect()
    await triage.disconnect()


async def test_it_answers_a_malformed_frame_with_an_error_and_stays_open(people):
    communicator, _, _ = await connect(people.alice)
    await communicator.send_to(text_data="{not json")
    assert (await communicator.receive_json_from(timeout=3))["type"] == "error"
    await communicator.send_json_to({"type": "alert.acknowledge", "id": "7"})
    assert "integer" in (await communicator.receive_json_from(timeout=3))["error"]
    await communicator.disconnect()


async def test_a_clinician_resolves_over_the_socket_with_an_outcome(people):
    from asgiref.sync import sync_to_async

    alert = await sync_to_async(raise_alert_for)(people.patient)
    alice, _, _ = await connect(people.alice)
    await alice.send_json_to({"type": "alert.resolve", "id": alert.id, "outcome": "bogus"})
    assert "needs an outcome" in (await alice.receive_json_from(timeout=3))["error"]
    await alice.send_json_to({"type": "alert.resolve", "id": alert.id, "outcome": "referred", "note": "to neuro"})
    frame = await alice.receive_json_from(timeout=3)
    assert frame["type"] == "alert.updated" and frame["alert"]["status"] == "resolved"
    assert frame["alert"]["outcome"] == "referred" and frame["alert"]["resolved_by"] == "alice"
    await alice.disconnect()


async def test_an_escalation_is_pushed_to_everyone_who_sees_the_alert(people, settings):
    from datetime import timedelta

    from asgiref.sync import sync_to_async
    from django.utils import timezone

    from alerts.services import alert_escalate_overdue

    alert = await sync_to_async(raise_alert_for)(people.patient)
    alice, _, _ = await connect(people.alice)
    await sync_to_async(alert_escalate_overdue)(now=timezone.now() + timedelta(hours=2))
    frame = await alice.receive_json_from(timeout=3)
    assert frame["type"] == "alert.escalated"
    assert frame["alert"]["id"] == alert.id and frame["alert"]["escalation_tier"] == "lead physician"
    await alice.disconnect()


async def test_a_page_on_another_port_of_the_same_host_cannot_open_a_browser_socket(people):
    same_host = [(b"host", b"portal.test:8000")]
    from django.test import override_settings

    with override_settings(ALLOWED_HOSTS=["portal.test"], CSRF_TRUSTED_ORIGINS=[]):
        other_port, connected, _ = await connect(
            people.alice, headers=[*same_host, (b"origin", b"http://portal.test:9999")]
        )
        assert not connected
        await other_port.disconnect()
        other_scheme, connected, _ = await connect(
            people.alice, headers=[*same_host, (b"origin", b"https://portal.test:8000")]
        )
        assert connected  # the same host and port over TLS (a proxy in front) is the page's own
        await other_scheme.disconnect()
        own, connected, _ = await connect(people.alice, headers=[*same_host, (b"origin", b"http://portal.test:8000")])
        assert connected
        await own.disconnect()


@pytest.mark.parametrize(
    "frame",
    [
        {"bytes_data": b"\x00\x01binary"},
        {"text_data": "[" * 100_000 + "]" * 100_000},
        {"text_data": '{"type": "alert.acknowledge", "id": 1, "note": "' + "x" * 10_000 + '"}'},
        {"text_data": "not json"},
    ],
    ids=["binary", "deeply-nested", "oversized", "not-json"],
)
async def test_a_malformed_frame_gets_an_error_frame_and_the_socket_stays_open(people, frame):
    communicator, connected, _ = await connect(people.alice)
    assert connected
    await communicator.send_to(**frame)
    answer = await communicator.receive_json_from(timeout=3)
    assert answer["type"] == "error"
    await communicator.send_json_to({"type": "alert.acknowledge", "id": 10**6})  # still served
    assert (await communicator.receive_json_from(timeout=3))["type"] == "error"
    await communicator.disconnect()


@pytest.mark.parametrize("revoke", ["deactivate", "demote", "delete-token"])
async def test_a_socket_is_closed_within_seconds_when_its_users_rights_are_removed(people, settings, revoke):
    from asgiref.sync import sync_to_async

    settings.SOCKET_RIGHTS_CHECK_SECONDS = 1
    communicator, connected, _ = await connect(people.triage)
    assert connected

    def take_away():
        user = people.triage
        if revoke == "deactivate":
            user.is_active = False
            user.save(update_fields=["is_active"])
        elif revoke == "demote":
            user.is_staff = False
            user.save(update_fields=["is_staff"])
        else:
            AuthToken.objects.filter(user=user).delete()

    await sync_to_async(take_away)()
    closed = await communicator.receive_output(timeout=4)
    assert closed == {"type": "websocket.close", "code": 4403}
    await communicator.disconnect()


async def test_a_deactivated_users_socket_is_closed_at_once_and_cannot_acknowledge_an_alert(people, settings):
    from asgiref.sync import sync_to_async

    settings.SOCKET_RIGHTS_CHECK_SECONDS = 60  # the change is pushed: no waiting for the watch
    communicator, connected, _ = await connect(people.alice)
    assert connected
    alert = await sync_to_async(raise_alert_for)(people.patient)
    await communicator.receive_json_from(timeout=3)  # the alert.created frame
    people.alice.is_active = False
    await sync_to_async(people.alice.save)(update_fields=["is_active"])
    await communicator.send_json_to({"type": "alert.acknowledge", "id": alert.id})
    assert await communicator.receive_output(timeout=3) == {"type": "websocket.close", "code": 4403}
    await sync_to_async(alert.refresh_from_db)()
    assert alert.status == "open"
    await communicator.disconnect()


async def test_when_the_push_is_lost_the_action_itself_still_refuses_a_deactivated_user(people, settings):
    from asgiref.sync import sync_to_async

    from alerts.rights import on_rights_changed
    from portal.credentials import rights_changed

    settings.SOCKET_RIGHTS_CHECK_SECONDS = 60
    communicator, connected, _ = await connect(people.alice)
    assert connected
    alert = await sync_to_async(raise_alert_for)(people.patient)
    await communicator.receive_json_from(timeout=3)
    rights_changed.disconnect(dispatch_uid="alerts.rights.on_rights_changed")
    try:
        people.alice.is_active = False
        await sync_to_async(people.alice.save)(update_fields=["is_active"])
        await communicator.send_json_to({"type": "alert.acknowledge", "id": alert.id})
        answer = await communicator.receive_json_from(timeout=3)
    finally:
        rights_changed.connect(on_rights_changed, dispatch_uid="alerts.rights.on_rights_changed")
    assert answer == {"type": "error", "id": alert.id, "error": "Your account is no longer active."}
    await sync_to_async(alert.refresh_from_db)()
    assert alert.status == "open"
    await communicator.disconnect()


async def test_a_client_that_reconnects_gets_the_claims_and_resolutions_it_missed(people):
    from asgiref.sync import sync_to_async

    from alerts.services import alert_resolve

    communicator, connected, _ = await connect(people.alice)
    assert connected
    older = await sync_to_async(raise_alert_for)(people.patient)
    seen = (await communicator.receive_json_from(timeout=3))["alert"]["last_event_id"]
    await communicator.disconnect()

    # While the client is away: someone claims the alert, then resolves it, and a new one is raised.
    await sync_to_async(alert_acknowledge)(alert_id=older.id, user=people.triage, source="api")
    await sync_to_async(alert_resolve)(alert_id=older.id, user=people.triage, outcome="confirmed", source="api")
    another_patient = await sync_to_async(factories.PatientFactory)(care_team=people.team)
    newer = await sync_to_async(raise_alert_for)(another_patient)

    again, connected, _ = await connect(people.alice, query=f"after_event={seen}")
    assert connected
    frames = [await again.receive_json_from(timeout=3) for _ in range(2)]
    assert [(f["type"], f["alert"]["id"], f["alert"]["status"], f["replayed"]) for f in frames] == [
        ("alert.updated", older.id, "resolved", True),
        ("alert.created", newer.id, "open", True),
    ]
    assert frames[0]["alert"]["last_event_id"] > seen
    assert await again.receive_nothing(timeout=0.3)
    await again.disconnect()


async def test_a_replay_that_must_be_cut_sends_the_newest_changes_and_says_it_was_cut(people, monkeypatch):
    """More changes than REPLAY_LIMIT while the client was away: the newest are what it needs (what
    happened last, a new alert), oldest first among them, and a frame says the rest is in the REST list."""
    from asgiref.sync import sync_to_async

    monkeypatch.setattr("alerts.consumers.REPLAY_LIMIT", 2)
    patients = [await sync_to_async(factories.PatientFactory)(care_team=people.team) for _ in range(4)]
    alerts = [await sync_to_async(raise_alert_for)(patient) for patient in patients]
    for since, kind in ((0, "after_event"), (0, "after")):
        communicator, connected, _ = await connect(people.alice, query=f"{kind}={since}")
        assert connected
        frames = [await communicator.receive_json_from(timeout=3) for _ in range(3)]
        assert [frame["alert"]["id"] for frame in frames[:2]] == [alerts[2].id, alerts[3].id]
        assert frames[2] == {"type": "replay.cut", "sent": 2, "rest": f"/api/v1/alerts/?{kind}={since}"}
        assert await communicator.receive_nothing(timeout=0.3)
        await communicator.disconnect()


def test_the_api_lists_the_alerts_that_changed_after_an_event(people, api):
    from alerts.services import alert_acknowledge as acknowledge

    first = raise_alert_for(people.patient)
    mark = api(people.alice).get("/api/v1/alerts/").json()["results"][0]["last_event_id"]
    acknowledge(alert_id=first.id, user=people.alice, source="api")
    changed = api(people.alice).get("/api/v1/alerts/", {"after_event": mark}).json()["results"]
    assert [(a["id"], a["status"]) for a in changed] == [(first.id, "acknowledged")]
    assert (
        api(people.alice).get("/api/v1/alerts/", {"after_event": changed[0]["last_event_id"]}).json()["results"] == []
    )


async def test_a_browser_socket_is_closed_when_its_session_logs_out(people, settings):
    from asgiref.sync import sync_to_async
    from django.test import Client

    settings.SOCKET_RIGHTS_CHECK_SECONDS = 1
    settings.ALLOWED_HOSTS = ["portal.test"]
    browser = Client()
    await sync_to_async(browser.force_login)(people.alice)
    cookie = f"{settings.SESSION_COOKIE_NAME}={browser.cookies[settings.SESSION_COOKIE_NAME].value}".encode()
    communicator = WebsocketCommunicator(
        application,
        "/ws/alerts/",
        headers=[(b"host", b"portal.test"), (b"origin", b"http://portal.test"), (b"cookie", cookie)],
    )
    connected, _ = await communicator.connect()
    assert connected
    await sync_to_async(browser.logout)()  # the session row is deleted, as the dashboard's log-out does
    assert await communicator.receive_output(timeout=4) == {"type": "websocket.close", "code": 4403}
    await communicator.disconnect()


async def test_a_demoted_staff_socket_gets_no_frame_raised_after_the_demotion(people, settings):
    """The change is pushed in order with the frames: the alert raised right after the demotion (which
    only staff may see) is never sent; the socket closes instead."""
    from asgiref.sync import sync_to_async

    settings.SOCKET_RIGHTS_CHECK_SECONDS = 60
    communicator, connected, _ = await connect(people.triage)
    assert connected

    def demote_then_raise():
        people.triage.is_staff = False
        people.triage.save(update_fields=["is_staff"])
        raise_alert_for(people.other_patient)

    await sync_to_async(demote_then_raise)()
    assert await communicator.receive_output(timeout=3) == {"type": "websocket.close", "code": 4403}
    assert await communicator.receive_nothing(timeout=0.5)
    await communicator.disconnect()


async def test_a_change_made_in_sql_behind_djangos_back_still_closes_the_socket(people, settings):
    from asgiref.sync import sync_to_async
    from django.contrib.auth import get_user_model

    settings.SOCKET_RIGHTS_CHECK_SECONDS = 1
    settings.SOCKET_RIGHTS_RECHECK_SECONDS = 2
    communicator, connected, _ = await connect(people.triage)
    assert connected
    await sync_to_async(get_user_model().objects.filter(id=people.triage.id).update)(is_active=False)  # no signal
    assert await communicator.receive_output(timeout=5) == {"type": "websocket.close", "code": 4403}
    await communicator.disconnect()


async def test_a_lost_push_is_caught_by_the_watch_through_the_cached_rights_version(people, settings):
    from asgiref.sync import sync_to_async
    from django.contrib.auth import get_user_model
    from django.core.cache import cache

    settings.SOCKET_RIGHTS_CHECK_SECONDS = 1
    settings.SOCKET_RIGHTS_RECHECK_SECONDS = 600  # not the periodic re-read
    communicator, connected, _ = await connect(people.triage)
    assert connected

    def demote_without_a_push():
        get_user_model().objects.filter(id=people.triage.id).update(is_staff=False)
        cache.add(f"rights-version:{people.triage.id}", 0, timeout=None)
        cache.incr(f"rights-version:{people.triage.id}")

    await sync_to_async(demote_without_a_push)()
    assert await communicator.receive_output(timeout=4) == {"type": "websocket.close", "code": 4403}
    await communicator.disconnect()


async def test_frames_are_checked_against_the_remembered_verdict_not_the_database(people, monkeypatch):
    from asgiref.sync import sync_to_async

    from alerts.consumers import AlertConsumer

    reads = []
    read_from_database = AlertConsumer._verdict_now

    def counting(self):
        reads.append(1)
        return read_from_database(self)

    monkeypatch.setattr(AlertConsumer, "_verdict_now", counting)
    communicator, connected, _ = await connect(people.alice)
    assert connected
    for _ in range(10):
        await sync_to_async(lambda: raise_alert_for(factories.PatientFactory(care_team=people.team)))()
        assert (await communicator.receive_json_from(timeout=3))["type"] == "alert.created"
    assert len(reads) == 1  # at connect only
    await communicator.disconnect()


async def test_a_socket_whose_session_idles_out_is_closed(people, settings):
    import time

    from asgiref.sync import sync_to_async
    from django.test import Client

    from portal.credentials import ACTIVE_AT

    settings.SOCKET_RIGHTS_CHECK_SECONDS = 1
    settings.ALLOWED_HOSTS = ["portal.test"]
    browser = Client()
    await sync_to_async(browser.force_login)(people.alice)

    def nearly_idle():
        session = browser.session
        session[ACTIVE_AT] = time.time() - settings.SESSION_IDLE_MINUTES * 60 + 2  # two seconds left
        session.save()

    await sync_to_async(nearly_idle)()
    cookie = f"{settings.SESSION_COOKIE_NAME}={browser.cookies[settings.SESSION_COOKIE_NAME].value}".encode()
    communicator = WebsocketCommunicator(
        application,
        "/ws/alerts/",
        headers=[(b"host", b"portal.test"), (b"origin", b"http://portal.test"), (b"cookie", cookie)],
    )
    connected, _ = await communicator.connect()
    assert connected
    assert await communicator.receive_output(timeout=5) == {"type": "websocket.close", "code": 4403}
    await communicator.disconnect()


async def test_a_user_may_hold_only_so_many_open_sockets(people, settings):
    settings.SOCKETS_PER_USER = 2
    first, connected_1, _ = await connect(people.alice)
    second, connected_2, _ = await connect(people.alice)
    assert connected_1 and connected_2
    third, connected_3, _ = await connect(people.alice)
    assert connected_3  # accepted only to say why it closes
    refusal = await third.receive_json_from(timeout=3)
    assert refusal["type"] == "error" and "Too many open connections" in refusal["error"]
    assert await third.receive_output(timeout=3) == {"type": "websocket.close", "code": 4429}
    other, connected_other, _ = await connect(people.bob)  # the cap is per user
    assert connected_other
    await first.disconnect()
    again, connected_again, _ = await connect(people.alice)
    assert connected_again
    for communicator in (second, other, again):
        await communicator.disconnect()


async def test_socket_deliveries_and_actions_are_in_the_audit_trail(people):
    from asgiref.sync import sync_to_async

    from portal.models import AuditEvent

    communicator, connected, _ = await connect(people.alice)
    assert connected
    alert = await sync_to_async(raise_alert_for)(people.patient)
    await communicator.receive_json_from(timeout=3)
    await communicator.send_json_to({"type": "alert.acknowledge", "id": alert.id})
    await communicator.receive_json_from(timeout=3)  # the alert.updated frame of the claim
    await communicator.disconnect()
    rows = await sync_to_async(
        lambda: list(
            AuditEvent.objects.filter(username="alice", method="WS")
            .order_by("id")
            .values("action", "route", "object_id", "patient_id", "status_code")
        )
    )()
    assert {
        "action": "receive",
        "route": "ws:alert.created",
        "object_id": str(alert.id),
        "patient_id": people.patient.id,
        "status_code": 200,
    } in rows
    assert {
        "action": "acknowledge",
        "route": "ws:alert.acknowledge",
        "object_id": str(alert.id),
        "patient_id": people.patient.id,
        "status_code": 200,
    } in rows
    assert {
        "action": "receive",
        "route": "ws:alert.updated",
        "object_id": str(alert.id),
        "patient_id": people.patient.id,
        "status_code": 200,
    } in rows


async def test_the_process_watch_writes_socket_audit_rows_with_the_time_each_frame_was_sent(people, settings):
    """Rows of every socket are written together at each tick of the process's watch (the socket
    stays open), each stamped when its frame went out, not when the batch was written."""
    import asyncio

    from asgiref.sync import sync_to_async
    from django.utils import timezone

    from portal.models import AuditEvent

    settings.SOCKET_RIGHTS_CHECK_SECONDS = 1
    communicator, connected, _ = await connect(people.alice)
    assert connected
    alert = await sync_to_async(raise_alert_for)(people.patient)
    await communicator.receive_json_from(timeout=3)
    received_at = timezone.now()
    await asyncio.sleep(2.5)  # two ticks; no close, which would write the rows at once
    rows = await sync_to_async(
        lambda: list(AuditEvent.objects.filter(username="alice", method="WS", object_id=str(alert.id)).values("at"))
    )()
    await communicator.disconnect()
    assert len(rows) == 1
    assert rows[0]["at"] <= received_at


async def test_a_repeat_positive_is_pushed_as_alert_repeated_and_says_when_it_reopened(people):
    from asgiref.sync import sync_to_async

    communicator, connected, _ = await connect(people.alice)
    assert connected
    alert = await sync_to_async(raise_alert_for)(people.patient)
    await communicator.receive_json_from(timeout=3)
    await sync_to_async(alert_acknowledge)(alert_id=alert.id, user=people.alice, source="api")
    assert (await communicator.receive_json_from(timeout=3))["type"] == "alert.updated"

    def worse_positive():
        result = factories.ScanResultFactory(scan__patient=people.patient, severity="severe", score=0.99)
        return alert_raise(scan=result.scan, result=result)

    await sync_to_async(worse_positive)()
    frame = await communicator.receive_json_from(timeout=3)
    assert frame["type"] == "alert.repeated" and frame["reopened"] is True
    assert frame["alert"]["status"] == "open" and frame["alert"]["severity"] == "severe"
    await communicator.disconnect()


async def test_a_clinician_taken_off_the_care_team_gets_no_frame_raised_after(people, settings):
    """Sockets hear their teams' alerts through one group per team; leaving the team is pushed in
    order with the frames, like any other change of rights."""
    from asgiref.sync import sync_to_async

    from portal.models import CareTeamMembership

    settings.SOCKET_RIGHTS_CHECK_SECONDS = 60
    communicator, connected, _ = await connect(people.alice)
    assert connected

    def leave_then_raise():
        CareTeamMembership.objects.filter(physician=people.dr_alice, care_team=people.team).delete()
        raise_alert_for(people.patient)

    await sync_to_async(leave_then_raise)()
    assert await communicator.receive_output(timeout=3) == {"type": "websocket.close", "code": 4403}
    assert await communicator.receive_nothing(timeout=0.5)
    await communicator.disconnect()


async def test_a_socket_sends_an_alert_only_for_a_team_it_belongs_to_whatever_group_it_came_by(people):
    """The per-send check: an event carries its patient's team and caregivers, and a socket compares
    them with its own verdict in memory before it sends anything."""
    from asgiref.sync import sync_to_async
    from channels.layers import get_channel_layer

    from alerts.events import team_group

    alert = await sync_to_async(raise_alert_for)(people.other_patient)  # Neurology's patient
    communicator, connected, _ = await connect(people.alice)  # Stroke Unit
    assert connected
    layer = get_channel_layer()
    event = {"type": "alert.created", "alert_id": alert.id, "version": None, "caregivers": []}
    await layer.group_send(
        team_group(people.team.id), {**event, "group": team_group(people.team.id), "team": people.other_team.id}
    )
    assert await communicator.receive_nothing(timeout=0.3)
    await layer.group_send(
        team_group(people.team.id), {**event, "group": team_group(people.team.id), "team": people.team.id}
    )
    frame = await communicator.receive_json_from(timeout=3)
    assert frame["type"] == "alert.created" and frame["alert"]["id"] == alert.id
    await communicator.disconnect()


def test_an_alert_is_sent_once_per_care_team_however_many_clinicians(people, django_capture_on_commit_callbacks):
    from unittest import mock

    from alerts import events

    for index in range(20):
        physician = factories.PhysicianFactory(user=factories.UserFactory(username=f"clinician-{index}"))
        factories.add_to_team(physician, people.team)
    with mock.patch.object(events, "_send_all") as send_all, django_capture_on_commit_callbacks(execute=True):
        raise_alert_for(people.patient)
    groups = send_all.call_args.args[0]
    carol = people.carol.id
    assert sorted(groups) == sorted(["staff", f"team.{people.team.id}", f"user.{carol}"])
    event = send_all.call_args.args[1]
    assert event["team"] == people.team.id and event["caregivers"] == [carol]


async def test_the_uploader_hears_each_step_of_their_scan_with_no_read_on_the_web_node(people, monkeypatch):
    """scan.updated names the scan, its status and its patient's audience, and carries the scan as its
    publisher rendered it after the commit (alerts/events.py)."""
    from asgiref.sync import sync_to_async
    from django.db import transaction

    from alerts import consumers
    from alerts.events import publish_scan_updated

    communicator, connected, _ = await connect(people.carol)
    assert connected
    reads = []

    async def read_scan(user, scan_id):
        reads.append(scan_id)

    monkeypatch.setattr(consumers, "_read_scan", read_scan)

    def upload_and_publish():
        scan = factories.ScanFactory(patient=people.patient, uploaded_by=people.carol, status="processing")
        with transaction.atomic():
            publish_scan_updated(
                scan_id=scan.id, patient_id=people.patient.id, uploader_id=people.carol.id, status=scan.status
            )
        return scan

    scan = await sync_to_async(upload_and_publish)()
    frame = await communicator.receive_json_from(timeout=3)
    assert frame["type"] == "scan.updated"
    assert (frame["scan"]["id"], frame["scan"]["status"], frame["scan"]["patient"]["id"]) == (
        scan.id,
        "processing",
        people.patient.id,
    )
    assert reads == []
    await communicator.disconnect()


async def test_a_scan_event_is_not_sent_to_a_socket_outside_its_patients_audience(people):
    """The event names its patient's audience as it is when published (a caregiver unlinked since the
    upload is not in it), and the socket checks it in memory. An event that came without the scan (its
    rendering failed) is read through the user's visibility check as well: wrongly addressed to the
    socket, it still shows nothing."""
    from asgiref.sync import sync_to_async
    from channels.layers import get_channel_layer

    from alerts.events import user_group
    from alerts.fanout import scan_payload

    scan = await sync_to_async(factories.ScanFactory)(patient=people.patient, uploaded_by=people.carol)
    communicator, connected, _ = await connect(people.dave)  # caregiver of other_patient only
    assert connected
    event = {"type": "scan.updated", "scan_id": scan.id, "status": "done"}
    layer = get_channel_layer()
    dave_group = {"group": user_group(people.dave.id)}
    await layer.group_send(
        user_group(people.dave.id), {**event, **dave_group, "team": people.team.id, "caregivers": []}
    )
    assert await communicator.receive_nothing(timeout=0.3)
    payload = await sync_to_async(scan_payload)(scan.id)
    await layer.group_send(
        user_group(people.dave.id),
        {**event, **dave_group, "team": people.team.id, "caregivers": [], "payload": payload},
    )
    assert await communicator.receive_nothing(timeout=0.3)
    await layer.group_send(
        user_group(people.dave.id), {**event, **dave_group, "team": None, "caregivers": [people.dave.id]}
    )
    assert await communicator.receive_nothing(timeout=0.5)
    await communicator.disconnect()

    carol, connected, _ = await connect(people.carol)
    assert connected
    carol_event = {**event, "group": user_group(people.carol.id), "team": None, "caregivers": [people.carol.id]}
    await layer.group_send(user_group(people.carol.id), carol_event)
    assert (await carol.receive_json_from(timeout=3))["scan"]["id"] == scan.id
    await carol.disconnect()


async def _audited_frames(username: str) -> list[str]:
    from asgiref.sync import sync_to_async

    from alerts.consumers import flush_audit_buffer
    from portal.models import AuditEvent

    await flush_audit_buffer()
    return await sync_to_async(
        lambda: list(
            AuditEvent.objects.filter(username=username, method="WS", action="receive").values_list("route", flat=True)
        )
    )()


async def test_a_socket_whose_task_is_killed_without_disconnect_leaves_no_trace(people, settings):
    """daphne cancels a socket's task on a slow shutdown, or when it outlives application_close_timeout,
    and runs no disconnect(): it must stop counting against the cap, be fed nothing, audit nothing."""
    import asyncio
    import contextlib

    from asgiref.sync import sync_to_async

    from alerts.consumers import _tick, _watched

    settings.SOCKETS_PER_USER = 2
    ghosts = [await connect(people.alice) for _ in range(2)]
    assert all(connected for _, connected, _ in ghosts)
    for communicator, _, _ in ghosts:
        communicator.future.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await communicator.future
    await _tick()  # the process's watch: must not keep the ghosts counted
    assert not [consumer for consumer in _watched if consumer.user.id == people.alice.id]

    await sync_to_async(raise_alert_for)(people.patient)
    await asyncio.sleep(0.2)
    assert await _audited_frames("alice") == []  # nobody received it: nothing recorded as shown
    assert all(communicator.output_queue.empty() for communicator, _, _ in ghosts)  # nothing sent to them

    fresh = [await connect(people.alice) for _ in range(2)]  # the cap counts only the living
    assert all(connected for _, connected, _ in fresh)
    for communicator, _, _ in fresh:
        await communicator.disconnect()


async def test_a_socket_sending_frames_too_fast_is_told_why_and_closed(people, settings):
    settings.SOCKET_FRAME_BURST = 5
    settings.SOCKET_FRAMES_PER_SECOND = 1
    communicator, connected, _ = await connect(people.alice)
    assert connected
    for _ in range(8):
        await communicator.send_json_to({"type": "alert.acknowledge", "id": 999_999})
    answers = [await communicator.receive_json_from(timeout=3) for _ in range(6)]
    assert [answer["error"] for answer in answers[:5]] == [answers[0]["error"]] * 5  # no such alert
    assert answers[5]["type"] == "error" and "Too many frames: at most 1 a second" in answers[5]["error"]
    assert await communicator.receive_output(timeout=3) == {"type": "websocket.close", "code": 4429}
    assert await communicator.receive_nothing(timeout=0.3)  # the frames after it are not read
    await communicator.disconnect()


async def test_a_socket_at_a_humans_pace_is_never_limited(people, settings):
    import asyncio

    settings.SOCKET_FRAME_BURST = 3
    settings.SOCKET_FRAMES_PER_SECOND = 20
    communicator, connected, _ = await connect(people.alice)
    assert connected
    for _ in range(10):
        await communicator.send_json_to({"type": "alert.acknowledge", "id": 999_999})
        answer = await communicator.receive_json_from(timeout=3)
        assert "Too many frames" not in answer["error"]
        await asyncio.sleep(0.06)
    await communicator.disconnect()


@pytest.mark.parametrize("alert_id", [True, False, 1.0, "1", None, 0, -1])
async def test_an_action_frame_needs_an_integer_id_not_one_that_passes_for_one(people, alert_id):
    from asgiref.sync import sync_to_async

    alert = await sync_to_async(raise_alert_for)(people.patient)
    communicator, connected, _ = await connect(people.alice)
    assert connected
    await communicator.send_json_to({"type": "alert.acknowledge", "id": alert_id})
    answer = await communicator.receive_json_from(timeout=3)
    assert answer == {"type": "error", "error": "alert.acknowledge needs a positive integer id."}
    await communicator.disconnect()
    await sync_to_async(alert.refresh_from_db)()
    assert alert.status == Alert.Status.OPEN
