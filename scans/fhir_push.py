"""Sending finished results to the hospital's FHIR server (settings.FHIR_ENDPOINT) as transaction Bundles.

Nothing lost: a FhirPush row is saved in the transaction that records the result; its task sends it
with retries and exponential backoff, and the beat sweep (scans/tasks.py) queues again any push that
ran out of retries or whose task never reached the broker.

Nothing sent twice: the row records that the server accepted the bundle, and a task run again for a
sent row returns at once; one worker sends a row at a time (a claim with a conditional UPDATE, like
the scans' own claim); and a bundle the server stored without answering (a timeout, a 5xx after the
commit) adds nothing when it is sent again, because each of its entries is a conditional create on a
stable identifier (scans/fhir.py).
"""

from __future__ import annotations

import logging
from datetime import timedelta

import requests
from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from portal.outbound import guarded_session
from scans.fhir import FHIR_JSON, scan_result_transaction
from scans.models import FhirPush, Scan, ScanResult

logger = logging.getLogger(__name__)

# 4xx answers worth trying again: a credential that expired or is not yet allowed (401, 403: someone
# fixes FHIR_AUTH_HEADER or the server's grants), a timeout, or a server busy right now. Every 5xx is
# tried again too. Any other 4xx refuses the bundle itself: sending it again would be refused again.
RETRIABLE_STATUSES = {401, 403, 408, 425, 429}


class FhirPushFailed(Exception):
    """The bundle did not get through this time (network, timeout, 5xx, 401, 403, 408, 429): the task
    tries again."""


def fhir_push_configured() -> bool:
    return bool(settings.FHIR_ENDPOINT)


def _send_lease() -> timedelta:
    # A send still marked as in progress after this long died with its worker: another may take it.
    # A live one ends well before: the connection and the answer each wait FHIR_TIMEOUT_SECONDS at most,
    # and the bundle is built from a handful of rows.
    return timedelta(seconds=2 * settings.FHIR_TIMEOUT_SECONDS + 10)


def _claim_left_seconds(push_id: int) -> float:
    """How long the claim on a row still holds (0 when it has run out or there is none)."""
    since = FhirPush.objects.filter(id=push_id).values_list("sending_since", flat=True).first()
    if since is None:
        return 0.0
    return max(0.0, (since + _send_lease() - timezone.now()).total_seconds())


def fhir_push_queue(*, result: ScanResult) -> FhirPush | None:
    """Owe this result to the FHIR server (when one is configured) and queue its push once committed.
    Called inside the transaction that records the result."""
    if not fhir_push_configured():
        return None
    push = FhirPush.objects.create(result=result)

    def send() -> None:
        try:
            push_fhir_result.delay(push.id)
        except Exception:  # noqa: BLE001 - the broker is down: the sweep sends it later
            logger.exception("could not queue the FHIR push of result %s; the sweep will", result.id)

    transaction.on_commit(send)
    return push


def fhir_push_send(*, push_id: int) -> str:
    """Send one result's transaction Bundle. Returns what happened: "sent", "already sent", "busy" (another
    worker is sending it), "refused" (the server rejected the bundle itself; not tried again) or "off".
    Raises FhirPushFailed when trying again may help."""
    if not fhir_push_configured():
        return "off"
    now = timezone.now()
    claimed = FhirPush.objects.filter(
        Q(sending_since__isnull=True) | Q(sending_since__lt=now - _send_lease()),
        id=push_id,
        sent_at__isnull=True,
        refused=False,
    ).update(sending_since=now, last_tried_at=now, attempts=F("attempts") + 1)
    if claimed != 1:
        state = FhirPush.objects.filter(id=push_id).values("sent_at", "refused").first()
        if state is None or state["sent_at"] is not None:
            return "already sent"
        return "refused" if state["refused"] else "busy"

    # From the claim on, every way out records what happened: a send that raised anything (a bug in
    # the bundle, a time limit, a worker shutting down) releases its claim, so the next task or the
    # sweep takes the row at once instead of after the lease.
    push = FhirPush.objects.get(id=push_id)
    try:
        response = _post(push)
    except requests.RequestException as exc:
        _release(push_id, error=f"{type(exc).__name__}: {exc}")
        raise FhirPushFailed(str(exc)) from exc
    except BaseException as exc:
        _release(push_id, error=f"{type(exc).__name__}: {exc}")
        raise

    if 200 <= response.status_code < 300:
        FhirPush.objects.filter(id=push_id).update(sent_at=timezone.now(), sending_since=None, last_error="")
        logger.info("FHIR push of result %s accepted (HTTP %s)", push.result_id, response.status_code)
        return "sent"
    error = f"HTTP {response.status_code}: {response.text[:400]}"
    if response.status_code >= 500 or response.status_code in RETRIABLE_STATUSES:
        if response.status_code in {401, 403}:
            logger.error("the FHIR server did not accept our credentials (check FHIR_AUTH_HEADER): %s", error)
        _release(push_id, error=error)
        raise FhirPushFailed(error)
    # 400, 404, 409, 412, 422...: the same bundle would be refused again. Loud, and left for a person
    # (the admin's banner and FHIR pushes list, scans/admin.py).
    FhirPush.objects.filter(id=push_id).update(refused=True, sending_since=None, last_error=error[:500])
    logger.error("the FHIR server refused the push of result %s: %s", push.result_id, error)
    return "refused"


def _post(push: FhirPush) -> requests.Response:
    scan = Scan.objects.select_related("patient", "referring_physician", "result", "result__model_version").get(
        result__id=push.result_id
    )
    body = scan_result_transaction(scan=scan, base_url=settings.PORTAL_BASE_URL).model_dump_json().encode()
    headers = {"Content-Type": FHIR_JSON, "Accept": FHIR_JSON}
    if settings.FHIR_AUTH_HEADER:
        headers["Authorization"] = settings.FHIR_AUTH_HEADER
    # Only to a public address (a private one with FHIR_ALLOW_PRIVATE_NETWORK), checked as it connects,
    # and no redirect followed (portal/outbound.py): a 3xx is an answer like any other 4xx below.
    with guarded_session(allow_private=settings.FHIR_ALLOW_PRIVATE_NETWORK) as session:
        return session.post(settings.FHIR_ENDPOINT, data=body, headers=headers, timeout=settings.FHIR_TIMEOUT_SECONDS)


def _release(push_id: int, *, error: str) -> None:
    FhirPush.objects.filter(id=push_id).update(sending_since=None, last_error=error[:500])
    logger.warning("FHIR push %s failed, to be tried again: %s", push_id, error)


def fhir_push_requeue(*, push_ids: list[int]) -> int:
    """Send again pushes not sent yet, refused ones included (an admin fixed the cause); returns how many."""
    pending = list(FhirPush.objects.filter(id__in=push_ids, sent_at__isnull=True).values_list("id", flat=True))
    FhirPush.objects.filter(id__in=pending).update(refused=False)
    for push_id in pending:
        transaction.on_commit(lambda push_id=push_id: push_fhir_result.delay(push_id))
    return len(pending)


def fhir_push_due_ids(*, limit: int = 500) -> list[int]:
    """Pushes owed and left alone: never tried (their task never reached the broker), last tried longer
    ago than the longest wait between two retries (their task gave up), or claimed by a send that
    outlived its lease (its worker died mid-send). One still retrying or being sent is not taken."""
    now = timezone.now()
    quiet_since = now - timedelta(seconds=2 * settings.FHIR_RETRY_BACKOFF_MAX_SECONDS)
    left_alone = Q(sending_since__isnull=True) & (
        Q(last_tried_at__lt=quiet_since) | Q(last_tried_at__isnull=True, created_at__lt=quiet_since)
    )
    return list(
        FhirPush.objects.filter(sent_at__isnull=True, refused=False)
        .filter(left_alone | Q(sending_since__lt=now - _send_lease()))
        .order_by("id")
        .values_list("id", flat=True)[:limit]
    )


def fhir_push_problems() -> str:
    """What an admin must see about the pushes: results the FHIR server refused, waiting for a person."""
    refused = FhirPush.objects.filter(refused=True, sent_at__isnull=True).count()
    if not refused:
        return ""
    return (
        f"The hospital's FHIR server refused {refused} result(s): they will not be sent again until the "
        "cause is fixed and they are sent again from FHIR pushes (filter: refused)."
    )


# The task lives beside its work, so scans/analysis.py can queue it without importing scans/tasks.py
# (which imports analysis); scans/tasks.py imports it so the worker registers it.
@shared_task(
    name="scans.tasks.push_fhir_result",
    ignore_result=True,
    autoretry_for=(FhirPushFailed,),
    retry_backoff=5,
    retry_backoff_max=settings.FHIR_RETRY_BACKOFF_MAX_SECONDS,
    retry_jitter=True,
    max_retries=settings.FHIR_PUSH_MAX_RETRIES,
    bind=True,
)
def push_fhir_result(self, push_id: int) -> str:
    outcome = fhir_push_send(push_id=push_id)
    if outcome == "busy":
        # Another send holds the row. This is a message redelivered after its worker died mid-send
        # (acks_late), or a duplicate: look again once the claim has run out; by then the other send
        # has finished ("already sent") or died, and this one takes the row over.
        raise self.retry(countdown=_claim_left_seconds(push_id) + 1)
    return outcome
