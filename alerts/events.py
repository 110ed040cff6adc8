"""The only fan-out point: every channel-layer send goes through `publish_on_commit` (or
`publish_now`, for a caller already past its commit).

Who may see an alert is decided here, from the database, when it is published: it goes to the staff
desk, the patient's care team (one group per team, however many clinicians are connected: one send per
web process, not one per person) and its caregivers. The event names the team and the caregivers, and
each socket checks them, with its own user's current rights, in memory before it sends the frame
(alerts/consumers.py, alerts/rights.py). A scan event goes to its uploader only, naming the same
audience. Sends happen after the transaction commits, so no client is told about a row it cannot read
yet (Zulip's send_event_on_commit).

An alert or scan event carries its frame's payload, rendered once by its publisher after the commit
(as the REST API shows it, for no one user), so that no web process reads the database to send it:
those reads were a third of a web node's time in an upload burst (py-spy during bench/load.py, 500
sockets on two web nodes), time an upload's request waited for. When rendering fails the event goes
without it, and each web process reads the row itself (alerts/fanout.py, alerts/consumers.py).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from alerts.fanout import alert_payload, scan_payload
from portal.selectors import patient_audience

logger = logging.getLogger(__name__)

STAFF_GROUP = "staff"


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def team_group(team_id: int) -> str:
    return f"team.{team_id}"


def publish_on_commit(groups: Iterable[str], event: dict, *, render: Callable[[], dict | None] | None = None) -> None:
    """``render``, called after the commit, gives the payload the event carries."""
    group_list = sorted(set(groups))

    def send() -> None:
        try:
            publish_now(group_list, _with_payload(event, render))
        except Exception:
            # The database already holds the change; clients catch up by replay on reconnect.
            logger.exception("could not publish %s to %d groups", event.get("type"), len(group_list))

    transaction.on_commit(send)


def _with_payload(event: dict, render: Callable[[], dict | None] | None) -> dict:
    if render is None:
        return event
    try:
        payload = render()
    except Exception:
        logger.exception("could not render %s; each web process reads it instead", event.get("type"))
        return event
    return event if payload is None else {**event, "payload": payload}


def publish_now(groups: Iterable[str], event: dict) -> None:
    """Send at once, for a caller already past its commit (alerts/rights.py); raises if Redis is away.
    One event loop run for the whole fan-out, not one per group."""
    async_to_sync(_send_all)(sorted(set(groups)), event)


async def _send_all(groups: list[str], event: dict) -> None:
    layer = get_channel_layer()
    for group in groups:
        # Each web process receives one copy per group it belongs to, and hands it to that group's
        # sockets (alerts/fanout.py): the copy names its group.
        await layer.group_send(group, {**event, "group": group})


def publish_alert(*, event_type: str, alert_id: int, patient_id: int, version: int, reopened: bool = False) -> None:
    """`version` (the id of the alert's latest event row) names the change: a web process that must
    read the alert itself reads it once per change, however many of its sockets receive it."""
    team, caregivers = patient_audience(patient_id=patient_id)
    # Who may receive it travels with it: a socket in the team's group checks its own teams.
    event = {
        "type": event_type,
        "alert_id": alert_id,
        "version": version,
        "team": team,
        "caregivers": sorted(caregivers),
    }
    if reopened:
        event["reopened"] = True
    groups = [STAFF_GROUP, *([team_group(team)] if team else []), *(user_group(user_id) for user_id in caregivers)]
    publish_on_commit(groups, event, render=functools.partial(alert_payload, alert_id))


def publish_scan_updated(*, scan_id: int, patient_id: int, uploader_id: int | None, status: str) -> None:
    """The uploader hears of each step of their scan. Like an alert's, the event names who may see its
    patient, which the socket checks in memory against its user's current rights before it sends it."""
    if uploader_id is None:
        return
    team, caregivers = patient_audience(patient_id=patient_id)
    event = {
        "type": "scan.updated",
        "scan_id": scan_id,
        "status": status,
        "team": team,
        "caregivers": sorted(caregivers),
    }
    publish_on_commit([user_group(uploader_id)], event, render=functools.partial(scan_payload, scan_id))
