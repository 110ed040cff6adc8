"""Writes to scans on upload: check the file's headers, keep it, save the scan, queue its analysis.

The worker's side (claim, decode, analyse, record the result) is scans/analysis.py."""

from __future__ import annotations

import logging
import secrets

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction

from inference.engine.imaging import UploadHeader, inspect_upload
from portal.models import Physician
from portal.selectors import patient_get_visible
from scans.models import Scan, ScanPose
from scans.tasks import analyze_scan

logger = logging.getLogger(__name__)


def read_upload(upload, *, max_bytes: int) -> bytes:
    """Read at most max_bytes + 1 bytes, so a huge upload is refused without holding all of it."""
    upload.seek(0)
    return upload.read(max_bytes + 1)


def upload_inspect(image_bytes: bytes) -> UploadHeader:
    """The upload's headers checked (format, frames, size, progressive scans), no pixel decoded:
    raises ImageRejected with the reason. Its `cost` is what the per-user upload limit counts."""
    return inspect_upload(image_bytes, max_bytes=settings.SCAN_MAX_UPLOAD_BYTES, max_pixels=settings.SCAN_MAX_PIXELS)


def scan_create(
    *,
    user,
    patient_id: int,
    image_bytes: bytes,
    header: UploadHeader | None = None,
    referring_physician: Physician | None = None,
    note: str = "",
    onset_at=None,
    poses: dict[str, list[bytes]] | None = None,
    idempotency_key: str = "",
) -> Scan:
    """Check the upload's headers, keep the file, save the scan as queued, and enqueue its analysis
    on commit (the worker decodes the photo: scans.analysis.scan_analyze).

    A guided exam brings its pose photos (``poses``: {pose: [1-3 frames]}), kept beside the photo at
    rest and analysed against it. An ``idempotency_key`` the uploader used before answers that scan:
    a retried upload never makes two.

    The one check that the uploader may see the patient, for the API and the form alike. Raises
    PermissionDenied (no such patient, or not visible to the user) or ImageRejected (bad image).
    Nothing is written unless everything succeeds.
    """
    patient = patient_get_visible(user=user, patient_id=patient_id)
    if patient is None:
        raise PermissionDenied("You may not upload scans for this patient.")
    header = header or upload_inspect(image_bytes)
    if idempotency_key:
        earlier = Scan.objects.filter(uploaded_by=user, idempotency_key=idempotency_key).first()
        if earlier is not None:
            return earlier
    scan = Scan(
        idempotency_key=idempotency_key,
        patient=patient,
        uploaded_by=user,
        referring_physician=referring_physician,
        note=note.strip()[:2000],
        pose_frames={pose: len(frames) for pose, frames in (poses or {}).items() if frames},
        onset_at=onset_at,
        onset_recorded_by=user if onset_at is not None else None,
        image_width=header.width,
        image_height=header.height,
    )
    scan.upload.save("upload.bin", ContentFile(image_bytes), save=False)
    pose_rows = [
        ScanPose(pose=pose, frame=frame) for pose, frames in (poses or {}).items() for frame in range(len(frames))
    ]
    for row in pose_rows:
        row.upload.save("upload.bin", ContentFile(poses[row.pose][row.frame]), save=False)
    try:
        if pose_rows or idempotency_key:
            with transaction.atomic():  # a savepoint: a clash on the key leaves the caller's transaction usable
                scan.save()
                for row in pose_rows:
                    row.scan = scan
                ScanPose.objects.bulk_create(pose_rows)
        else:
            scan.save()  # one INSERT: no transaction of its own to open and commit around it
    except Exception as exc:
        # The rows were not saved: do not leave orphaned patient photos on disk.
        scan.upload.delete(save=False)
        for row in pose_rows:
            row.upload.delete(save=False)
        if idempotency_key and isinstance(exc, IntegrityError):
            # The same upload sent twice at once: the other one made the scan.
            earlier = Scan.objects.filter(uploaded_by=user, idempotency_key=idempotency_key).first()
            if earlier is not None:
                return earlier
        raise
    # Queued once the row is committed: at once on its own, or when a caller's transaction commits.
    transaction.on_commit(lambda: _enqueue(scan.id))
    return scan


def _enqueue(scan_id: int) -> None:
    try:
        analyze_scan.delay(scan_id)
    except Exception:
        # Broker down: the scan stays queued and the beat sweeper enqueues it again later.
        logger.exception("could not enqueue scan %s; the sweeper will retry", scan_id)


# --- a photo kept while the New Scan form is corrected -------------------------------------------
# A form sent back for another field (the patient) used to lose the chosen photo: a caregiver had to
# find it or take it again. The checked photo waits in the shared cache, for its uploader only.
HELD_PHOTO_SECONDS = 30 * 60


def _held_key(user_id: int, token: str) -> str:
    return f"held-photo:{user_id}:{token}"


def photo_hold(*, user, image_bytes: bytes, name: str) -> tuple[str, dict]:
    """Keep a checked photo for HELD_PHOTO_SECONDS: the token the form sends back for it, and what
    photo_held() will give for it."""
    token = secrets.token_urlsafe(16)
    held = {"bytes": image_bytes, "name": name[:120]}
    cache.set(_held_key(user.id, token), held, HELD_PHOTO_SECONDS)
    return token, held


def photo_held(*, user, token: str) -> dict | None:
    """{"bytes", "name"} of the user's kept photo, or None (another user's, expired, or no such token)."""
    if not token or len(token) > 64:
        return None
    return cache.get(_held_key(user.id, token))


def photo_release(*, user, token: str) -> None:
    cache.delete(_held_key(user.id, token))
