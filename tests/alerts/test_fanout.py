"""One channel-layer subscription per web process (alerts/fanout.py): each event is received once per
process and offered to each of its sockets in turn, in order, once."""

from __future__ import annotations

import asyncio
import os
import uuid

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer

from alerts import events, fanout
from alerts.events import STAFF_GROUP, team_group
from tests import factories
from tests.alerts.test_consumers import connect, raise_alert_for

pytestmark = [pytest.mark.django_db(transaction=True)]


def team_members(people, count: int) -> list:
    users = []
    for index in range(count):
        user = factories.UserFactory(username=f"team-clinician-{index}")
        factories.add_to_team(factories.PhysicianFactory(user=user), people.team)
        users.append(user)
    return users


async def connect_all(users) -> list:
    sockets = []
    for user in users:
        communicator, connected, _ = await connect(user)
        assert connected
        sockets.append(communicator)
    return sockets


async def each_gets_one_alert_created(sockets, alert, *, timeout: float, then_quiet: float) -> None:
    for communicator in sockets:
        frame = await communicator.receive_json_from(timeout=timeout)
        assert (frame["type"], frame["alert"]["id"]) == ("alert.created", alert.id)
        assert await communicator.receive_nothing(timeout=then_quiet)


@pytest.mark.usefixtures("in_memory_channels")
async def test_a_web_process_joins_each_group_once_however_many_of_its_sockets_belong(people):
    users = await sync_to_async(team_members)(people, 4)
    sockets = await connect_all(users)
    layer = get_channel_layer()
    hub = fanout.current_hub()
    assert list(layer.groups[team_group(people.team.id)]) == [hub.channel]
    assert len(hub.members[team_group(people.team.id)]) == 4

    alert = await sync_to_async(raise_alert_for)(people.patient)
    await each_gets_one_alert_created(sockets, alert, timeout=3, then_quiet=0.2)

    for communicator in sockets:
        await communicator.disconnect()
    # The last socket of the group gone, the process leaves it.
    assert team_group(people.team.id) not in hub.members
    assert hub.channel not in layer.groups.get(team_group(people.team.id), {})


@pytest.mark.usefixtures("in_memory_channels")
async def test_a_socket_in_two_of_an_alerts_groups_gets_its_frame_once(people):
    """Staff who are also on the patient's team: the alert comes by the staff group and the team
    group, one copy each; the socket is sent one frame."""

    def staff_on_the_team():
        factories.add_to_team(factories.PhysicianFactory(user=people.triage), people.team)

    await sync_to_async(staff_on_the_team)()
    communicator, connected, _ = await connect(people.triage)
    assert connected
    hub = fanout.current_hub()
    assert communicator_user_in(hub, STAFF_GROUP) and communicator_user_in(hub, team_group(people.team.id))

    alert = await sync_to_async(raise_alert_for)(people.patient)
    frame = await communicator.receive_json_from(timeout=3)
    assert frame["alert"]["id"] == alert.id
    assert await communicator.receive_nothing(timeout=0.5)
    await communicator.disconnect()


def communicator_user_in(hub, group: str) -> bool:
    return bool(hub.members.get(group))


@pytest.mark.usefixtures("in_memory_channels")
async def test_a_live_alert_raised_during_the_replay_is_sent_after_it(people, monkeypatch):
    """A reconnecting client's replay comes first: a live frame offered meanwhile waits in the
    socket's outbox, so the client never sees a newer alert before the older ones it missed."""
    from channels.db import database_sync_to_async

    from alerts.consumers import AlertConsumer

    older = await sync_to_async(raise_alert_for)(people.patient)
    read_replay = AlertConsumer.__dict__["_replay_changes"].func
    live = {}

    def replay_then_raise(self, after_event):
        changes = read_replay(self, after_event)
        live["alert"] = raise_alert_for(people.patient)  # published (on commit) while the replay is read
        return changes

    monkeypatch.setattr(AlertConsumer, "_replay_changes", database_sync_to_async(replay_then_raise))
    communicator, connected, _ = await connect(people.alice, query="after_event=0")
    assert connected
    first = await communicator.receive_json_from(timeout=3)
    assert (first["alert"]["id"], first.get("replayed")) == (older.id, True)
    second = await communicator.receive_json_from(timeout=3)
    assert (second["alert"]["id"], second.get("replayed")) == (live["alert"].id, None)
    await communicator.disconnect()


@pytest.mark.usefixtures("in_memory_channels")
async def test_a_socket_that_fails_to_send_does_not_cost_the_others_their_frame(people):
    users = await sync_to_async(team_members)(people, 3)
    sockets = await connect_all(users)
    hub = fanout.current_hub()
    broken = next(iter(hub.members[team_group(people.team.id)]))

    async def gone(*args, **kwargs):
        raise ConnectionResetError("the client went away")

    broken.send = gone
    alert = await sync_to_async(raise_alert_for)(people.patient)
    for user, communicator in zip(users, sockets):
        if user.id == broken.user.id:
            assert await communicator.receive_nothing(timeout=0.5)
        else:
            assert (await communicator.receive_json_from(timeout=3))["alert"]["id"] == alert.id
    for communicator in sockets:
        await communicator.disconnect()


@pytest.mark.usefixtures("in_memory_channels")
async def test_the_process_joins_its_groups_again_when_the_layer_forgot_them(people, settings, monkeypatch):
    """The queue layer forgets a membership after a day, and a restarted Redis forgets all: the
    socket watch has the process join its groups again."""
    settings.SOCKET_RIGHTS_CHECK_SECONDS = 1
    monkeypatch.setattr(fanout, "REFRESH_SECONDS", 0)
    communicator, connected, _ = await connect(people.alice)
    assert connected
    layer = get_channel_layer()
    del layer.groups[team_group(people.team.id)]
    await asyncio.sleep(2.5)  # a tick or two of the watch
    assert fanout.current_hub().channel in layer.groups[team_group(people.team.id)]
    alert = await sync_to_async(raise_alert_for)(people.patient)
    assert (await communicator.receive_json_from(timeout=3))["alert"]["id"] == alert.id
    await communicator.disconnect()


@pytest.mark.parametrize(
    "backend", ["channels_redis.pubsub.RedisPubSubChannelLayer", "channels_redis.core.RedisChannelLayer"]
)
async def test_each_redis_layer_carries_an_alert_to_every_socket_of_the_process_once(people, settings, backend):
    """Both CHANNEL_LAYER choices, on the real Redis of the test run."""
    if not os.environ.get("REDIS_URL"):
        pytest.skip("no Redis: run the suite through `make test` (python -m stack.embedded)")
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": backend,
            "CONFIG": {"hosts": [os.environ["REDIS_URL"]], "prefix": f"test-fanout-{uuid.uuid4().hex[:8]}"},
        }
    }
    users = await sync_to_async(team_members)(people, 3)
    sockets = await connect_all([*users, people.triage])
    hub = fanout.current_hub()
    assert hub.layer is get_channel_layer()
    assert len(hub.members[team_group(people.team.id)]) == 3
    alert = await sync_to_async(raise_alert_for)(people.patient)
    await each_gets_one_alert_created(sockets, alert, timeout=5, then_quiet=0.3)
    for communicator in sockets:
        await communicator.disconnect()


def counting_reads(monkeypatch) -> list:
    """Each read of an alert by this web process (the hub's fallback), recorded."""
    reads, read = [], fanout._read_alert

    async def counted(alert_id):
        reads.append(alert_id)
        return await read(alert_id)

    monkeypatch.setattr(fanout, "_read_alert", counted)
    return reads


@pytest.mark.usefixtures("in_memory_channels")
async def test_a_live_alert_reaches_every_socket_with_no_read_on_the_web_process(people, monkeypatch):
    """The publisher renders the alert once, after its commit, and the event carries it."""
    users = await sync_to_async(team_members)(people, 3)
    sockets = await connect_all(users)
    reads = counting_reads(monkeypatch)
    alert = await sync_to_async(raise_alert_for)(people.patient)
    await each_gets_one_alert_created(sockets, alert, timeout=3, then_quiet=0.2)
    assert reads == []
    for communicator in sockets:
        await communicator.disconnect()


@pytest.mark.usefixtures("in_memory_channels")
async def test_an_alert_whose_rendering_failed_is_read_once_by_the_web_process(people, monkeypatch, caplog):
    users = await sync_to_async(team_members)(people, 3)
    sockets = await connect_all([*users, people.triage])
    reads = counting_reads(monkeypatch)

    def broken(alert_id):
        raise RuntimeError("the serializer failed")

    monkeypatch.setattr(events, "alert_payload", broken)  # the publisher's renderer, not the hub's read
    alert = await sync_to_async(raise_alert_for)(people.patient)
    await each_gets_one_alert_created(sockets, alert, timeout=3, then_quiet=0.2)
    assert reads == [alert.id]  # once for the process: the staff and team copies, four sockets
    assert "could not render alert.created" in caplog.text
    for communicator in sockets:
        await communicator.disconnect()


def test_an_alert_event_carries_the_alert_as_a_web_process_would_read_it(people, django_capture_on_commit_callbacks):
    from unittest import mock

    with mock.patch.object(events, "_send_all") as send_all, django_capture_on_commit_callbacks(execute=True):
        alert = raise_alert_for(people.patient)
    event = send_all.call_args.args[1]
    assert event["payload"] == fanout.alert_payload(alert.id)
    assert (event["payload"]["id"], event["payload"]["patient"]["id"]) == (alert.id, people.patient.id)
    assert event["version"] == event["payload"]["last_event_id"]
