"""One channel-layer subscription per web process, shared by all its sockets.

A socket used to be its own member of its groups: an alert for a care team with 250 clinicians
connected to one web process became 250 messages in that process, each decoded, queued, woken and
dispatched by its own consumer task: nearly a third of a web process's CPU per frame (one web node,
250 sockets, 40 alerts: 359 us per frame before, 246 us after; py-spy during bench/load.py showed
the same share). Here the process joins each group once, on one channel of its own (`Hub`); one
task receives each event once, with the alert its publisher rendered (alerts/events.py; read here
once, by `rendered_alert`, only when that rendering failed), and offers it to each of the process's
sockets in the group in turn (`AlertConsumer.offer`, which checks the socket's rights in memory, as
before).

Order per socket holds: a socket is offered everything in the order this process received it, and
an event that needs the socket's own work first (a rights change, which re-reads its verdict; a scan
read through its user's visibility check; its replay at connect) holds every later frame for that
socket behind it (alerts/consumers.py, the outbox). One event published to several groups (staff and
the team, say) reaches this process once per group and each socket once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import OrderedDict

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections

from alerts.models import Alert
from alerts.selectors import with_last_event
from alerts.serializers import AlertSerializer
from scans.models import Scan
from scans.selectors import SCAN_RELATED
from scans.serializers import ScanSerializer

logger = logging.getLogger(__name__)

ALERT_EVENTS = frozenset({"alert.created", "alert.updated", "alert.escalated", "alert.repeated"})
# The queue layer forgets a group membership after its group_expiry (a day): the hub joins its
# groups again well before that.
REFRESH_SECONDS = 3600
# Events offered recently, with the sockets each reached: the copies of one event that come by its
# other groups reach only the sockets not reached yet.
RECENT_KEEP = 256
# What tells one copy of an event from another: neither its group nor the payload rendered for all.
UNKEYED = frozenset({"group", "payload"})


class Hub:
    """This process's member of the groups of its open sockets, on one channel-layer channel."""

    def __init__(self, layer) -> None:
        self.layer = layer
        self.loop = asyncio.get_running_loop()
        self.channel: str | None = None
        self.members: dict[str, set] = {}  # group -> the sockets here that belong to it
        self.recent: OrderedDict[tuple, set] = OrderedDict()
        # Joins and leaves take turns: a group's last socket leaving must not unsubscribe the
        # process while another socket of the group is joining it.
        self.lock = asyncio.Lock()
        self.task: asyncio.Task | None = None
        self.reads_ahead: set[asyncio.Task] = set()
        self.refreshed_at = time.monotonic()

    async def join(self, consumer, groups: list[str]) -> None:
        async with self.lock:
            if self.channel is None:
                self.channel = await self.layer.new_channel()
                self.task = self.loop.create_task(self._run())
            for group in groups:
                if group not in self.members:
                    await self.layer.group_add(group, self.channel)
                    self.members[group] = set()
                self.members[group].add(consumer)

    async def leave(self, consumer, groups: list[str]) -> None:
        async with self.lock:
            for group in groups:
                members = self.members.get(group)
                if members is None:
                    continue
                members.discard(consumer)
                if not members:
                    del self.members[group]
                    await self.layer.group_discard(group, self.channel)

    async def refresh(self) -> None:
        """Join every group again: the queue layer forgets a membership after its group_expiry (a
        day), and a Redis that restarted has forgotten them all."""
        async with self.lock:
            self.refreshed_at = time.monotonic()
            for group in list(self.members):
                await self.layer.group_add(group, self.channel)

    async def refresh_when_due(self) -> None:
        """Called by the process's socket watch (alerts/consumers.py) at each tick."""
        if time.monotonic() - self.refreshed_at >= REFRESH_SECONDS:
            await self.refresh()

    async def _run(self) -> None:
        """Receive events and hand them, in order, to the task that delivers them; an alert that came
        without its payload is read as it arrives, so that the read overlaps the delivery of the events
        before it."""
        inbox: asyncio.Queue = asyncio.Queue()
        delivering = self.loop.create_task(self._deliver_each(inbox))
        try:
            while True:
                try:
                    event = await self.layer.receive(self.channel)
                except asyncio.CancelledError:
                    raise
                except Exception:  # noqa: BLE001 - Redis away: try again; sockets catch up by replay
                    logger.exception("the web process's channel-layer receive failed; retrying")
                    await asyncio.sleep(1)
                    with contextlib.suppress(Exception):
                        await self.refresh()  # a Redis that restarted has forgotten the memberships
                    continue
                if (
                    event.get("type") in ALERT_EVENTS
                    and event.get("version") is not None
                    and carried_payload(event) is None
                    and self.members.get(event.get("group", ""))
                ):
                    prefetch = self.loop.create_task(_read_ahead(event["alert_id"], event["version"]))
                    self.reads_ahead.add(prefetch)
                    prefetch.add_done_callback(self.reads_ahead.discard)
                inbox.put_nowait(event)
        finally:
            delivering.cancel()

    async def _deliver_each(self, inbox: asyncio.Queue) -> None:
        while True:
            event = await inbox.get()
            try:
                await self.deliver(event)
            except Exception:  # noqa: BLE001 - one bad event must not stop the process's live frames
                logger.exception("could not deliver %s", event.get("type"))

    async def deliver(self, event: dict) -> None:
        members = self.members.get(event.get("group", ""))
        if not members:
            return
        sockets = list(members)
        payload = None
        if event["type"] in ALERT_EVENTS:
            # An alert goes to the staff desk, its team and its caregivers: one copy per group, the
            # same but for the group. A socket in two of them gets its frame once.
            key = tuple(sorted((name, repr(value)) for name, value in event.items() if name not in UNKEYED))
            reached = self.recent.get(key)
            if reached is None:
                reached = self.recent[key] = set()
                while len(self.recent) > RECENT_KEEP:
                    self.recent.popitem(last=False)
            sockets = [consumer for consumer in sockets if consumer not in reached]
            if not sockets:
                return
            reached.update(sockets)
            # Rendered once by its publisher (alerts/events.py); read here only when that failed.
            payload = carried_payload(event) or await rendered_alert(event["alert_id"], event.get("version"))
            if payload is None:
                return  # the alert is gone
        batch = settings.SOCKET_FANOUT_BATCH
        for index, consumer in enumerate(sockets, start=1):
            try:
                await consumer.offer(event, payload)
            except Exception:  # noqa: BLE001 - a socket that went away must not cost the others their frame
                logger.warning("could not offer %s to a socket", event.get("type"), exc_info=True)
            if index % batch == 0:
                await asyncio.sleep(0)  # let HTTP requests and the frames queued so far go out


def carried_payload(event: dict) -> dict | None:
    """The alert or scan its publisher rendered into the event (alerts/events.py); None when it came
    without one, and must be read."""
    payload = event.get("payload")
    return payload if isinstance(payload, dict) else None


_hub: Hub | None = None


def hub_for(layer) -> Hub:
    """The hub of this process (one per event loop and channel layer: tests run one loop each)."""
    global _hub
    loop = asyncio.get_running_loop()
    if _hub is None or _hub.loop is not loop or _hub.layer is not layer:
        _hub = Hub(layer)
    return _hub


def current_hub() -> Hub | None:
    hub = _hub
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None
    return hub if hub is not None and hub.loop is loop else None


_rendered: dict[tuple[int, int | None], asyncio.Future] = {}
RENDERED_KEEP = 256


async def rendered_alert(alert_id: int, version: int | None):
    """The alert's frame payload at this version, read once per process however many sockets ask."""
    key = (alert_id, version)
    future = _rendered.get(key)
    if future is None or version is None or future.get_loop() is not asyncio.get_running_loop():
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


async def _read_ahead(alert_id: int, version: int) -> None:
    """Start the alert's one read of this process; its deliverer awaits the same read (or its error)."""
    with contextlib.suppress(Exception):
        await rendered_alert(alert_id, version)


def on_thread_pool(read):
    """The reads behind live frames run on the event loop's thread pool, not on the one thread that
    serialises a web node's sync work (every HTTP request among it): an upload burst must not hold
    back the frames, and one socket's read does not wait for another's. Each closes its connection
    itself, as database_sync_to_async would (channels' test communicator turns that off, and a pool
    thread's connection would outlive the test)."""

    @functools.wraps(read)
    def run(*args):
        close_old_connections()
        try:
            return read(*args)
        finally:
            close_old_connections()

    return sync_to_async(run, thread_sensitive=False)


def alert_payload(alert_id: int) -> dict | None:
    """An alert as its frames and the REST API show it (None: it is gone)."""
    alert = with_last_event(Alert.objects.filter(id=alert_id)).first()
    return AlertSerializer(alert).data if alert is not None else None


def scan_payload(scan_id: int) -> dict | None:
    """A scan as its scan.updated frames and the REST API show it (None: it is gone)."""
    scan = Scan.objects.select_related(*SCAN_RELATED).filter(id=scan_id).first()
    return ScanSerializer(scan).data if scan is not None else None


_read_alert = on_thread_pool(alert_payload)
