"""WebSocket /ws/alerts/: live alerts and scan updates, with replay for clients that were away.

Authentication: the session cookie (browser) or ?token= (mobile app). Replay: ?after_event=<the
largest last_event_id the client saw> sends every visible alert that changed since (new ones as
alert.created, the others as alert.updated: claims and resolutions are not lost), before live events;
the older ?after=<alert id> sends only alerts with a larger id.
"""

from __future__ import annotations

import asyncio
import json
import logging

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token

from alerts.auth import query_param
from alerts.events import STAFF_GROUP, user_group
from alerts.models import Alert, AlertEvent
from alerts.selectors import alert_changes_for_user, alert_list_for_user, with_last_event
from alerts.serializers import AlertSerializer
from alerts.services import AlertConflict, AlertForbidden, AlertNotFound, alert_acknowledge, alert_resolve
from scans.selectors import scan_get_visible
from scans.serializers import ScanSerializer

logger = logging.getLogger(__name__)

REPLAY_LIMIT = 500
# A client frame is a small JSON object ({"type", "id", "outcome", "note"}): anything far larger, or
# nested deeper, is refused with an error frame before it is parsed further.
MAX_FRAME_CHARS = 4096
MAX_FRAME_DEPTH = 8


class AlertConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        self.user = user
        self.rights = await self._rights()
        self.groups_joined = [user_group(user.id)] + ([STAFF_GROUP] if user.is_staff else [])
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        self.rights_watch = asyncio.create_task(self._watch_rights())
        after_event = _query_int(self.scope, "after_event")
        after = _query_int(self.scope, "after")
        if after_event is not None:
            for frame_type, payload in await self._replay_changes(after_event):
                await self.send_json({"type": frame_type, "alert": payload, "replayed": True})
        elif after is not None:
            for payload in await self._replay(after):
                await self.send_json({"type": "alert.created", "alert": payload, "replayed": True})

    async def disconnect(self, code):
        watch = getattr(self, "rights_watch", None)
        if watch is not None:
            watch.cancel()
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        """A malformed frame gets an error frame and the socket stays open (channels itself raises on a
        binary frame, and json.loads on a deeply nested one: a traceback and a dropped socket)."""
        if text_data is None:
            await self.send_json({"type": "error", "error": "Send text frames of JSON; binary frames are not read."})
            return
        if len(text_data) > MAX_FRAME_CHARS:
            await self.send_json({"type": "error", "error": f"Frame too large: at most {MAX_FRAME_CHARS} characters."})
            return
        if _nesting(text_data) > MAX_FRAME_DEPTH:
            await self.send_json({"type": "error", "error": "Frame nested too deeply."})
            return
        await self.receive_json(await self.decode_json(text_data), **kwargs)

    async def receive_json(self, content, **kwargs):
        frame_type = content.get("type") if isinstance(content, dict) else None
        if frame_type not in {"alert.acknowledge", "alert.resolve"}:
            await self.send_json({"type": "error", "error": "Unknown frame; expected alert.acknowledge or alert.resolve."})
            return
        alert_id = content.get("id")
        if not isinstance(alert_id, int):
            await self.send_json({"type": "error", "error": f"{frame_type} needs an integer id."})
            return
        if frame_type == "alert.acknowledge":
            error = await self._act(alert_acknowledge, alert_id=alert_id)
        else:
            outcome, note = content.get("outcome"), content.get("note", "")
            if outcome not in Alert.Outcome.values or not isinstance(note, str):
                await self.send_json({"type": "error", "id": alert_id,
                                      "error": f"alert.resolve needs an outcome: {', '.join(Alert.Outcome.values)}."})
                return
            error = await self._act(alert_resolve, alert_id=alert_id, outcome=outcome, note=note)
        if error:
            await self.send_json({"type": "error", "id": alert_id, "error": error})

    @classmethod
    async def decode_json(cls, text_data):
        try:
            return json.loads(text_data)
        except ValueError:
            return None

    # Channel-layer events -> frames. Each re-reads the row and re-checks permission.
    # Alert events reach only the groups of people who may see the patient (decided from the database
    # when the event is published, alerts/events.py), so the frame is rendered once per change per
    # process and shared by every socket here, instead of one database read per socket.
    async def alert_created(self, event):
        await self._send_alert("alert.created", event)

    async def alert_updated(self, event):
        await self._send_alert("alert.updated", event)

    async def alert_escalated(self, event):
        await self._send_alert("alert.escalated", event)

    async def scan_updated(self, event):
        payload = await self._scan_payload(event["scan_id"])
        if payload is not None:
            await self.send_json({"type": "scan.updated", "scan": payload})

    async def _send_alert(self, frame_type: str, event: dict):
        payload = await rendered_alert(event["alert_id"], event.get("version"))
        if payload is not None:
            await self.send_json({"type": frame_type, "alert": payload})

    async def _watch_rights(self):
        """Rights removed from a user reach their open sockets: the groups a socket joined and the
        user it acts as were read at connect, so when the account is deactivated, loses the staff
        flag, or its session or token ends, the socket is closed (code 4403); a client that is still
        allowed reconnects and joins what it may see now."""
        while True:
            await asyncio.sleep(settings.SOCKET_RIGHTS_CHECK_SECONDS)
            if await self._rights() != self.rights:
                logger.info("closing the socket of user %s: their rights changed", self.user.id)
                await self.close(code=4403)
                return

    @database_sync_to_async
    def _rights(self) -> tuple:
        """(active, staff, credential still valid), read from the database."""
        row = get_user_model().objects.filter(id=self.user.id).values_list("is_active", "is_staff").first()
        token = query_param(self.scope, "token")
        if token:
            valid = Token.objects.filter(key=token, user_id=self.user.id).exists()
        else:
            session = self.scope.get("session")
            valid = bool(session is not None and session.session_key and session.exists(session.session_key))
        return (*(row or (False, False)), valid)

    @database_sync_to_async
    def _scan_payload(self, scan_id: int):
        scan = scan_get_visible(user=self.user, scan_id=scan_id)
        return ScanSerializer(scan).data if scan is not None else None

    @database_sync_to_async
    def _replay(self, after: int):
        alerts = alert_list_for_user(user=self.user, after=after).order_by("id")[:REPLAY_LIMIT]
        return [AlertSerializer(alert).data for alert in alerts]

    @database_sync_to_async
    def _replay_changes(self, after_event: int):
        """What happened while the client was away: an alert raised since comes as alert.created, an
        older one that changed as alert.updated, each once, in its current state."""
        alerts = alert_changes_for_user(user=self.user, after_event=after_event)[:REPLAY_LIMIT]
        return [("alert.created" if alert.first_event_id > after_event else "alert.updated",
                 AlertSerializer(alert).data) for alert in alerts]

    @database_sync_to_async
    def _act(self, service, **arguments) -> str | None:
        client = self.scope.get("client") or [None]
        # The user as they are now, not as they were at connect: a deactivated or demoted user's
        # socket must not acknowledge (and so silence) an alert.
        user = get_user_model().objects.filter(id=self.user.id, is_active=True).first()
        if user is None:
            return "Your account is no longer active."
        try:
            service(user=user, source=AlertEvent.Source.SOCKET, remote_addr=client[0], **arguments)
        except (AlertNotFound, AlertForbidden, AlertConflict) as exc:
            return str(exc)
        return None


_rendered: dict[tuple[int, int | None], asyncio.Future] = {}
RENDERED_KEEP = 256


async def rendered_alert(alert_id: int, version: int | None):
    """The alert's frame payload at this version, read once per process however many sockets ask."""
    key = (alert_id, version)
    future = _rendered.get(key)
    if future is None or version is None:
        future = asyncio.get_running_loop().create_future()
        if version is not None:
            _rendered[key] = future
            while len(_rendered) > RENDERED_KEEP:
                _rendered.pop(next(iter(_rendered)))
        try:
            future.set_result(await _read_alert(alert_id))
        except Exception as exc:  # noqa: BLE001 - every waiter sees the same failure
            _rendered.pop(key, None)
            future.set_exception(exc)
    return await asyncio.shield(future)


@database_sync_to_async
def _read_alert(alert_id: int):
    alert = with_last_event(Alert.objects.filter(id=alert_id)).first()
    return AlertSerializer(alert).data if alert is not None else None


def _nesting(text: str) -> int:
    """How deep JSON brackets nest in ``text`` (an upper bound: brackets inside strings count too)."""
    depth = deepest = 0
    for char in text:
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _query_int(scope, name: str) -> int | None:
    value = query_param(scope, name)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
