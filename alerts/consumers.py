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
import time
from collections import deque
from dataclasses import dataclass

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone

from alerts.auth import query_param, scope_client_ip
from alerts.events import STAFF_GROUP, team_group, user_group
from alerts.fanout import ALERT_EVENTS, RENDERED_KEEP, carried_payload, current_hub, hub_for, on_thread_pool
from alerts.models import Alert, AlertEvent
from alerts.rights import refresh_sockets, register_socket, rights_version, unregister_socket
from alerts.selectors import alert_changes_for_user, alert_list_for_user
from alerts.serializers import AlertSerializer
from alerts.services import AlertConflict, AlertForbidden, AlertNotFound, alert_acknowledge, alert_resolve
from portal.audit import record_audit_rows, socket_audit_base
from portal.credentials import stored_session_state, token_state
from portal.parsers import json_nesting
from portal.selectors import user_team_ids
from scans.selectors import scan_get_visible
from scans.serializers import ScanSerializer

logger = logging.getLogger(__name__)

REPLAY_LIMIT = 500
# What each socket action is called in the audit trail.
ACTIONS = {alert_acknowledge: "acknowledge", alert_resolve: "resolve"}
# A client frame is a small JSON object ({"type", "id", "outcome", "note"}): anything far larger, or
# nested deeper, is refused with an error frame before it is parsed further.
MAX_FRAME_CHARS = 4096
MAX_FRAME_DEPTH = 8
# Close code for a socket that sends frames faster than SOCKET_FRAMES_PER_SECOND (as for too many sockets).
TOO_MANY = 4429


class AlertConsumer(AsyncJsonWebsocketConsumer):
    """Every frame it sends and every action it takes first checks the user's current rights
    (alerts/rights.py): a deactivated, demoted or signed-out user's socket sends nothing more and
    closes with 4403. Deliveries and actions are written to the audit trail.

    Live events reach it from its web process's one subscription (alerts/fanout.py) through `offer`,
    in the order the process received them, not on the socket's own channel.

    However the socket ends (a disconnect, or daphne cancelling its task on a slow shutdown or after
    `application_close_timeout`, which runs no `disconnect()`), `_leave` runs once: the socket stops
    counting against its user's cap, leaves the hub and the watch, and sends nothing more."""

    async def __call__(self, scope, receive, send):
        try:
            await super().__call__(scope, receive, send)
        finally:
            # Shielded: a cancelled socket (CancelledError already delivered) still cleans up.
            await asyncio.shield(self._leave())

    async def connect(self):
        self.task = asyncio.current_task()
        self.closed = False
        self.frame_allowance = float(settings.SOCKET_FRAME_BURST)
        self.frame_allowance_at = time.monotonic()
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        self.user = user
        self.revoked = False
        self.client_ip = scope_client_ip(self.scope)
        # One trip to the worker thread: hundreds of sockets reconnecting at once (a web node went
        # away) queue there, and each extra trip would put every socket behind all the others again.
        self.version, self.verdict = await self._read_rights()
        if not self.verdict.allowed(time.time()):
            await self.close(code=4401)  # the session or token ended before the socket opened
            return
        if not await register_socket(user.id, self.channel_name):
            await self.accept()
            await self.send_json(
                {
                    "type": "error",
                    "error": f"Too many open connections for this account "
                    f"(at most {settings.SOCKETS_PER_USER}): close another tab or app.",
                }
            )
            await self.close(code=4429)
            return
        self.registered = True
        # Live events offered before the replay below is sent wait in the outbox, behind it.
        self.outbox: deque[tuple[dict, dict | None]] = deque()
        self.outbox_task: asyncio.Task | None = None
        self.live = False
        self.recheck_task = None
        # Staff hear every patient's alerts; a clinician those of each care team (one group per team).
        self.groups_joined = [user_group(user.id)] + ([STAFF_GROUP] if self.verdict.staff else [])
        self.groups_joined += [team_group(team) for team in sorted(self.verdict.teams)]
        self.hub = hub_for(self.channel_layer)
        await self.hub.join(self, self.groups_joined)
        await self.accept()
        _watch(self)
        after_event = _query_int(self.scope, "after_event")
        after = _query_int(self.scope, "after")
        replayed, cut = [], False
        if after_event is not None:
            replayed, cut = await self._replay_changes(after_event)
        elif after is not None:
            replayed, cut = await self._replay(after)
        for frame_type, payload in replayed:
            await self._send_alert_frame(frame_type, payload, replayed=True)
        if cut:  # the oldest changes were left out: the client fetches them from the REST list
            query = f"after_event={after_event}" if after_event is not None else f"after={after}"
            await self.send(
                text_data=json.dumps({"type": "replay.cut", "sent": len(replayed), "rest": f"/api/v1/alerts/?{query}"})
            )
        self.live = True
        self._pump()

    async def disconnect(self, code):
        await self._leave()

    async def _leave(self) -> None:
        """Forget this socket everywhere, once (from disconnect, the end of its task, or the watch)."""
        if getattr(self, "left", False):
            return
        self.left = self.closed = True
        _watched.pop(self, None)
        for task in (getattr(self, "recheck_task", None), getattr(self, "outbox_task", None)):
            if task is not None and task is not asyncio.current_task():
                task.cancel()
        try:
            if getattr(self, "hub", None) is not None:
                await self.hub.leave(self, self.groups_joined)
            if getattr(self, "registered", False):
                # Redis unreachable: the entry stops counting once the watch no longer refreshes it.
                await unregister_socket(self.user.id, self.channel_name)
            await self._flush_audit()
        except Exception:  # noqa: BLE001 - the rest is forgotten anyway; the cap entry expires
            logger.exception("could not clean up after a socket of user %s", getattr(self.user, "id", None))

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        """A malformed frame gets an error frame and the socket stays open (channels itself raises on a
        binary frame, and json.loads on a deeply nested one: a traceback and a dropped socket)."""
        if self.closed:
            return  # closed for sending too fast: what was already on its way is not read
        if not self._frame_allowed():
            logger.warning("closing a socket of user %s: frames faster than allowed", self.user.id)
            await self.send_json(
                {
                    "type": "error",
                    "error": f"Too many frames: at most {settings.SOCKET_FRAMES_PER_SECOND} a second "
                    f"(bursts of {settings.SOCKET_FRAME_BURST}). Reconnect and slow down.",
                }
            )
            await self.close(code=TOO_MANY)
            self.closed = True
            return
        if text_data is None:
            await self.send_json({"type": "error", "error": "Send text frames of JSON; binary frames are not read."})
            return
        if len(text_data) > MAX_FRAME_CHARS:
            await self.send_json({"type": "error", "error": f"Frame too large: at most {MAX_FRAME_CHARS} characters."})
            return
        if json_nesting(text_data) > MAX_FRAME_DEPTH:
            await self.send_json({"type": "error", "error": "Frame nested too deeply."})
            return
        await self.receive_json(await self.decode_json(text_data), **kwargs)

    def _frame_allowed(self) -> bool:
        """A token bucket per socket: SOCKET_FRAME_BURST frames at once, refilled at
        SOCKET_FRAMES_PER_SECOND. A person clicking Acknowledge and Resolve stays far below it."""
        now = time.monotonic()
        self.frame_allowance = min(
            float(settings.SOCKET_FRAME_BURST),
            self.frame_allowance + (now - self.frame_allowance_at) * settings.SOCKET_FRAMES_PER_SECOND,
        )
        self.frame_allowance_at = now
        if self.frame_allowance < 1:
            return False
        self.frame_allowance -= 1
        return True

    async def receive_json(self, content, **kwargs):
        frame_type = content.get("type") if isinstance(content, dict) else None
        if frame_type not in {"alert.acknowledge", "alert.resolve"}:
            await self.send_json(
                {"type": "error", "error": "Unknown frame; expected alert.acknowledge or alert.resolve."}
            )
            return
        alert_id = content.get("id")
        if not isinstance(alert_id, int) or isinstance(alert_id, bool) or alert_id < 1:  # JSON true is an int
            await self.send_json({"type": "error", "error": f"{frame_type} needs a positive integer id."})
            return
        if not await self._still_allowed():
            return
        if frame_type == "alert.acknowledge":
            error = await self._act(alert_acknowledge, alert_id=alert_id)
        else:
            outcome, note = content.get("outcome"), content.get("note", "")
            if outcome not in Alert.Outcome.values or not isinstance(note, str):
                await self.send_json(
                    {
                        "type": "error",
                        "id": alert_id,
                        "error": f"alert.resolve needs an outcome: {', '.join(Alert.Outcome.values)}.",
                    }
                )
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

    # Live events -> frames, from the process's hub (alerts/fanout.py).
    # Alert events reach only the groups of people who may see the patient (decided from the database
    # when the event is published, alerts/events.py) and carry the alert as its publisher rendered it,
    # so the hub offers one payload to every socket here, instead of one database read per socket.
    async def offer(self, event: dict, payload: dict | None) -> None:
        """An event of one of this socket's groups. An alert frame goes out at once when nothing is
        waiting ahead of it and the rights read last still hold; anything else goes through the
        outbox, in order, so that nothing offered after a rights change is sent before it is read."""
        if self.outbox or not self.live or event["type"] not in ALERT_EVENTS or not self.verdict.allowed(time.time()):
            self.outbox.append((event, payload))
            self._pump()
            return
        if not self.revoked and self._may_receive(event):
            await self._send_live_alert(event, payload)

    def _pump(self) -> None:
        if self.live and self.outbox and (self.outbox_task is None or self.outbox_task.done()):
            self.outbox_task = asyncio.create_task(self._drain())

    async def _drain(self) -> None:
        while self.outbox:
            event, payload = self.outbox[0]
            try:
                if event["type"] in ALERT_EVENTS:
                    if await self._still_allowed() and self._may_receive(event):
                        await self._send_live_alert(event, payload)
                elif event["type"] == "scan.updated":
                    await self.scan_updated(event)
                elif event["type"] == "rights.changed":
                    await self.rights_changed(event)
            except Exception:  # noqa: BLE001 - the next event is still sent; the socket replays on reconnect
                logger.exception("could not send %s to a socket of user %s", event["type"], self.user.id)
            finally:
                if self.outbox:
                    self.outbox.popleft()

    async def _send_live_alert(self, event: dict, payload: dict) -> None:
        await self._send_alert_frame(
            event["type"], payload, version=event.get("version"), reopened=event.get("reopened", False)
        )

    async def scan_updated(self, event):
        """The event names the scan's patient's audience and carries the scan as its publisher rendered
        it (alerts/events.py), checked in memory against the user's rights. An event without it (its
        rendering failed) is read here, through the user's visibility check."""
        if not await self._still_allowed() or not self._may_receive(event):
            return
        payload = carried_payload(event) or await _read_scan(self.user, event["scan_id"])
        if payload is None or self.closed:
            return
        await self.send_json({"type": "scan.updated", "scan": payload})
        self._audit("scan", payload["id"], payload["patient"]["id"], "scan.updated")

    async def rights_changed(self, event):
        """Pushed when the user's rights changed (alerts/rights.py): read them now, before any frame
        offered after the change."""
        self.version = await sync_to_async(rights_version)(self.user.id)
        await self._recheck()

    def _may_receive(self, event: dict) -> bool:
        """The event names who may see its patient (alerts/events.py): staff, one care team, its
        caregivers. Checked against this socket's verdict, in memory, before every alert or scan frame."""
        if self.verdict.staff or self.user.id in event.get("caregivers", ()):
            return True
        return event.get("team") in self.verdict.teams

    async def _send_alert_frame(
        self,
        frame_type: str,
        payload: dict,
        *,
        version: int | None = None,
        replayed: bool = False,
        reopened: bool = False,
    ):
        """Sends one alert frame and records that it was shown: only a frame that went out is audited,
        and a socket that has closed sends (and records) nothing."""
        if self.closed:
            return
        await self.send(
            text_data=encoded_frame(frame_type, payload, version=version, replayed=replayed, reopened=reopened)
        )
        self._audit("alert", payload["id"], payload["patient"]["id"], frame_type)

    # Rights: checked in memory before every frame and action, re-read when they may have changed.

    async def _still_allowed(self) -> bool:
        if not self.revoked and not self.verdict.allowed(time.time()):
            await self._recheck()  # the session or token may have been extended since it was read
        return not self.revoked

    async def _recheck(self) -> None:
        if self.revoked:
            return
        verdict = await self._read_verdict()
        if not verdict.allowed(time.time()) or (verdict.active, verdict.staff, verdict.teams) != (
            self.verdict.active,
            self.verdict.staff,
            self.verdict.teams,
        ):
            # A client still allowed reconnects and joins what it may see now.
            logger.info("closing the socket of user %s: their rights changed", self.user.id)
            self.revoked = True
            await self.close(code=4403)
            return
        self.verdict = verdict

    def _after_tick(self, version: int | None, now: float) -> None:
        """The process's watch read the user's rights version (_tick): re-read the verdict when it
        moved (a push that was lost), when the credential ended, or when the last read is old."""
        if self.revoked or (self.recheck_task is not None and not self.recheck_task.done()):
            return
        if (
            version != self.version
            or not self.verdict.allowed(now)
            or now - self.verdict.read_at >= settings.SOCKET_RIGHTS_RECHECK_SECONDS
        ):
            self.version = version
            self.recheck_task = asyncio.create_task(self._recheck())

    @database_sync_to_async
    def _read_rights(self) -> tuple[int | None, Verdict]:
        """The cached rights version, read before the verdict it vouches for, and the verdict."""
        version = rights_version(self.user.id)
        return version, self._verdict_now()

    @database_sync_to_async
    def _read_verdict(self) -> Verdict:
        return self._verdict_now()

    def _verdict_now(self) -> Verdict:
        """Active, staff, care teams, and until when the socket's credential lasts, read from the database."""
        row = get_user_model().objects.filter(id=self.user.id).values_list("is_active", "is_staff").first()
        active, staff = row or (False, False)
        if "auth_token" in self.scope:
            digest = self.scope["auth_token"]
            until = token_state(digest) if digest else None
        else:
            session = self.scope.get("session")
            until = stored_session_state(session.session_key) if session is not None and session.session_key else None
        teams = user_team_ids(user=self.user)
        return Verdict(active=active, staff=staff, teams=teams, until=until, read_at=time.time())

    # The audit trail: what this socket showed and did. Rows of every socket of this process go into
    # one buffer, written together (one COPY on PostgreSQL) at each tick of the process's watch (and at
    # once for an action or a close), not one write per frame nor one per socket.

    def _audit(
        self,
        object_type: str,
        object_id: int,
        patient_id: int | None,
        route: str,
        action: str = "receive",
        status_code: int = 200,
    ) -> None:
        base = getattr(self, "audit_base", None)
        if base is None:
            base = self.audit_base = socket_audit_base(user=self.user, scope=self.scope, remote_addr=self.client_ip)
        _audit_buffer.append(
            {
                **base,
                "at": timezone.now(),
                "route": f"ws:{route}",
                "action": action,
                "object_type": object_type,
                "object_id": str(object_id)[:40],
                "patient_id": patient_id,
                "status_code": status_code,
            }
        )

    async def _flush_audit(self) -> None:
        await flush_audit_buffer()

    @database_sync_to_async
    def _replay(self, after: int):
        """([("alert.created", payload)...], cut): the alerts raised after ``after``, oldest first; past
        REPLAY_LIMIT the newest of them, and cut is True."""
        alerts, cut = _newest(alert_list_for_user(user=self.user, after=after).order_by("-id"))
        return [("alert.created", AlertSerializer(alert).data) for alert in alerts], cut

    @database_sync_to_async
    def _replay_changes(self, after_event: int):
        """What happened while the client was away: an alert raised since comes as alert.created, an
        older one that changed as alert.updated, each once, in its current state, in the order of their
        latest change; past REPLAY_LIMIT the latest changes (what happened last), and cut is True."""
        alerts, cut = _newest(
            alert_changes_for_user(user=self.user, after_event=after_event).order_by("-last_event_id")
        )
        frames = [
            ("alert.created" if alert.first_event_id > after_event else "alert.updated", AlertSerializer(alert).data)
            for alert in alerts
        ]
        return frames, cut

    async def _act(self, service, **arguments) -> str | None:
        error, status_code, patient_id = await self._run_action(service, **arguments)
        action = ACTIONS[service]
        self._audit(
            "alert", arguments["alert_id"], patient_id, f"alert.{action}", action=action, status_code=status_code
        )
        await self._flush_audit()  # an action is recorded at once, as the API records it
        return error

    @database_sync_to_async
    def _run_action(self, service, **arguments) -> tuple[str | None, int, int | None]:
        patient_id = Alert.objects.filter(id=arguments["alert_id"]).values_list("patient_id", flat=True).first()
        # The user as they are now, not as they were at connect: a deactivated or demoted user's
        # socket must not acknowledge (and so silence) an alert.
        user = get_user_model().objects.filter(id=self.user.id, is_active=True).first()
        if user is None:
            return "Your account is no longer active.", 403, patient_id
        try:
            service(user=user, source=AlertEvent.Source.SOCKET, remote_addr=self.client_ip or None, **arguments)
        except AlertNotFound as exc:
            return str(exc), 404, None
        except AlertForbidden as exc:
            return str(exc), 403, patient_id
        except AlertConflict as exc:
            return str(exc), 409, patient_id
        return None, 200, patient_id


@dataclass(frozen=True)
class Verdict:
    active: bool
    staff: bool
    teams: frozenset[int]  # the care teams whose patients the user sees as a clinician
    until: float | None  # when the session or token ends (Unix time); None: it has ended
    read_at: float

    def allowed(self, now: float) -> bool:
        return self.active and self.until is not None and now < self.until


_audit_buffer: list[dict] = []


async def flush_audit_buffer() -> None:
    rows = _audit_buffer[:]
    del _audit_buffer[:]
    if rows:
        await database_sync_to_async(record_audit_rows)(rows)


def _newest(alerts) -> tuple[list, bool]:
    """(the first REPLAY_LIMIT of a newest-first queryset turned oldest first, so that a client applies
    them in turn; whether there were more)."""
    newest = list(alerts[: REPLAY_LIMIT + 1])
    return newest[:REPLAY_LIMIT][::-1], len(newest) > REPLAY_LIMIT


# The open sockets of this process (and the event loop each runs on), watched by one task: every
# SOCKET_RIGHTS_CHECK_SECONDS it keeps them all counted against their users' caps and reads all
# their users' rights versions in one trip to Redis (not one per socket: at 500 sockets that was a
# tenth of a web node's time), starts a re-read for those that need one, and writes the audit rows
# of every socket together (record_audit_rows: one COPY on PostgreSQL).
_watched: dict[AlertConsumer, asyncio.AbstractEventLoop] = {}
_ticker: asyncio.Task | None = None


def _watch(consumer: AlertConsumer) -> None:
    global _ticker
    loop = asyncio.get_running_loop()
    _watched[consumer] = loop
    if _ticker is None or _ticker.done() or _ticker.get_loop() is not loop:
        _ticker = loop.create_task(_tick_forever())


async def _tick_forever() -> None:
    while True:
        await asyncio.sleep(settings.SOCKET_RIGHTS_CHECK_SECONDS)
        try:
            await _tick()
        except Exception:  # noqa: BLE001 - the next tick tries again; frames are checked in memory meanwhile
            logger.exception("the socket watch tick failed")


async def _tick() -> None:
    loop = asyncio.get_running_loop()
    for consumer in [consumer for consumer, its_loop in _watched.items() if its_loop is not loop]:
        del _watched[consumer]  # a loop that ended (tests run one per test); production has one
    for consumer in [consumer for consumer in _watched if consumer.task.done()]:
        # Its task ended without its cleanup (which runs in a finally): never kept counted or fed.
        await consumer._leave()
    sockets = [consumer for consumer in _watched if not consumer.revoked]
    if sockets:
        versions = await refresh_sockets([(consumer.user.id, consumer.channel_name) for consumer in sockets])
        now = time.time()
        for consumer in sockets:
            consumer._after_tick(versions.get(consumer.user.id), now)
    await flush_audit_buffer()
    hub = current_hub()
    if hub is not None:
        await hub.refresh_when_due()


_encoded: dict[tuple, str] = {}


def encoded_frame(
    frame_type: str, payload: dict, *, version: int | None = None, replayed: bool = False, reopened: bool = False
) -> str:
    """An alert frame as JSON text. A live one (with the change's version) is encoded once per change
    per process, however many sockets here send it; a replayed one, for its one socket."""
    key = (frame_type, payload["id"], version, reopened)
    cached = version is not None and not replayed
    text = _encoded.get(key) if cached else None
    if text is None:
        flags = {**({"replayed": True} if replayed else {}), **({"reopened": True} if reopened else {})}
        text = json.dumps({"type": frame_type, "alert": payload, **flags})
        if cached:
            _encoded[key] = text
            while len(_encoded) > RENDERED_KEEP:
                _encoded.pop(next(iter(_encoded)))
    return text


@on_thread_pool
def _read_scan(user, scan_id: int):
    scan = scan_get_visible(user=user, scan_id=scan_id)
    return ScanSerializer(scan).data if scan is not None else None


def _query_int(scope, name: str) -> int | None:
    value = query_param(scope, name)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
