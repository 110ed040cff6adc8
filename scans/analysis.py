"""Writes to scans in the worker: claim a scan, decode its photo, analyse it, record the result.

Called by the task (scans/tasks.py); a finished positive or inconclusive result raises its alert
(alerts.services.alert_raise) in the same transaction, and with FHIR_ENDPOINT set every finished result
is owed to the hospital's FHIR server in that transaction too (scans/fhir_push.py).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from alerts.events import publish_scan_updated
from alerts.services import alert_make_urgent, alert_raise
from inference.engine.decide import CENTRAL, PERIPHERAL
from inference.engine.imaging import ImageRejected, decode_upload
from scans.fhir_push import fhir_push_queue
from scans.models import Scan, ScanPose, ScanResult
from scans.urgency import urgency_of

logger = logging.getLogger(__name__)

FAILED_REASON = "The analysis failed because of a fault on our side; the team has been told. Please upload again later."
GAVE_UP_REASON = (
    "The analysis was tried {attempts} times and stopped each time before the end; the team has been "
    "told. Please send the photo again, as the camera saved it."
)


def scan_clean_photo(*, scan: Scan) -> bytes:
    """The worker's full decode of the upload (under the task's time limit): the clean JPEG replaces
    the file as sent, which is deleted. Returns the clean bytes. Raises ImageRejected."""
    if scan.image:
        with scan.image.open("rb") as handle:
            return handle.read()
    with scan.upload.open("rb") as handle:
        raw = handle.read()
    try:
        clean = decode_upload(raw, max_bytes=settings.SCAN_MAX_UPLOAD_BYTES, max_pixels=settings.SCAN_MAX_PIXELS)
    except ImageRejected:
        scan.upload.delete(save=False)
        Scan.objects.filter(id=scan.id).update(upload="")
        raise
    scan.image.save("photo.jpg", ContentFile(clean.data), save=False)
    sent = scan.upload.name
    scan.upload = ""
    scan.image_sha256, scan.image_width, scan.image_height = clean.sha256, clean.width, clean.height
    scan.save(update_fields=["image", "upload", "image_sha256", "image_width", "image_height"])
    scan.upload.storage.delete(sent)
    return clean.data


def scan_clean_poses(*, scan: Scan) -> tuple[dict[str, list[bytes]], list[dict]]:
    """A guided exam's pose photos decoded as the photo at rest is (scan_clean_photo): {pose: [frames]},
    and a refusal for each frame that is not a usable image (the exam goes on without it)."""
    poses: dict[str, list[bytes]] = {}
    refused = []
    for row in ScanPose.objects.filter(scan=scan).order_by("pose", "frame"):
        if row.image:
            with row.image.open("rb") as handle:
                poses.setdefault(row.pose, []).append(handle.read())
            continue
        if not row.upload:
            continue
        with row.upload.open("rb") as handle:
            sent = handle.read()
        try:
            clean = decode_upload(sent, max_bytes=settings.SCAN_MAX_UPLOAD_BYTES, max_pixels=settings.SCAN_MAX_PIXELS)
        except ImageRejected as exc:
            refused.append(
                {"pose": row.pose, "reason": f"frame {row.frame + 1} could not be read: {exc}", "retake": True}
            )
            continue
        finally:
            row.upload.delete(save=False)
        row.image.save("pose.jpg", ContentFile(clean.data), save=False)
        row.upload = ""
        row.save(update_fields=["image", "upload"])
        poses.setdefault(row.pose, []).append(clean.data)
    return poses, refused


def scan_claim(*, scan_id: int) -> bool:
    """Claim a scan for analysis; False when another worker holds it or it is finished.

    A scan stuck in `processing` past the stall limit (its worker died) may be claimed again.
    """
    now = timezone.now()
    stale = now - timedelta(seconds=settings.SCAN_STALL_SECONDS)
    claimable = Q(status=Scan.Status.QUEUED) | Q(status=Scan.Status.PROCESSING, started_at__lt=stale)
    with transaction.atomic():
        claimed = Scan.objects.filter(claimable, id=scan_id).update(
            status=Scan.Status.PROCESSING, started_at=now, status_reason="", attempts=F("attempts") + 1
        )
        if claimed == 1:
            scan = Scan.objects.filter(id=scan_id).values("uploaded_by_id", "patient_id").first()
            publish_scan_updated(
                scan_id=scan_id,
                patient_id=scan["patient_id"],
                uploader_id=scan["uploaded_by_id"],
                status=Scan.Status.PROCESSING,
            )
    return claimed == 1


def scan_analyze(*, scan_id: int) -> None:
    if not scan_claim(scan_id=scan_id):
        logger.info("scan %s is not claimable (finished or held by another worker)", scan_id)
        return
    scan = Scan.objects.get(id=scan_id)
    from inference.runtime import current_pipeline, loaded_version_of

    if scan.attempts > settings.SCAN_MAX_ATTEMPTS:
        # Each earlier try ended without a word (the worker killed at the time limit, or crashed):
        # the same photo would do it again, forever. Stop, and tell the uploader.
        logger.error("scan %s: giving up after %d attempts", scan_id, scan.attempts - 1)
        scan_finish(scan=scan, status=Scan.Status.FAILED, reason=GAVE_UP_REASON.format(attempts=scan.attempts - 1))
        return

    exam: dict = {}
    try:
        raw = scan_clean_photo(scan=scan)
        pipeline, version = current_pipeline()
        poses, unreadable = scan_clean_poses(scan=scan)
        if poses:
            # A guided exam: the photo at rest analysed as alone, each pose measured against it.
            examined = pipeline.analyze_exam_bytes(raw, poses)
            analysis = examined.rest
            if examined.exam is not None:
                exam = examined.exam.to_dict()
                exam["refusals"] = [*unreadable, *exam.get("refusals", [])]
        else:
            analysis = pipeline.analyze_bytes(raw)
    except ImageRejected as exc:
        scan_finish(scan=scan, status=Scan.Status.REJECTED, reason=str(exc))
        return
    except SoftTimeLimitExceeded:
        scan_finish(scan=scan, status=Scan.Status.FAILED, reason=FAILED_REASON)
        raise
    except Exception:
        logger.exception("analysis of scan %s failed", scan_id)
        scan_finish(scan=scan, status=Scan.Status.FAILED, reason=FAILED_REASON)
        return
    if analysis.status == "rejected":
        scan_finish(scan=scan, status=Scan.Status.REJECTED, reason=analysis.reason)
        return
    scan_record_result(scan=scan, analysis=analysis, model_version=loaded_version_of(pipeline, version), exam=exam)


def scan_finish(*, scan: Scan, status: str, reason: str) -> None:
    """End a scan without a result (refused or failed). The file as sent, if it is still stored (the
    analysis stopped before its full decode replaced it with the clean JPEG), is deleted: it may carry
    the camera's metadata (GPS), and nothing will read it again."""
    raw = Scan.objects.filter(id=scan.id).values_list("upload", flat=True).first()
    if raw:
        Scan.objects.filter(id=scan.id).update(upload="")
        scan.upload.storage.delete(raw)
    with transaction.atomic():
        Scan.objects.filter(id=scan.id, status=Scan.Status.PROCESSING).update(
            status=status, status_reason=reason[:300], finished_at=timezone.now()
        )
        publish_scan_updated(
            scan_id=scan.id, patient_id=scan.patient_id, uploader_id=scan.uploaded_by_id, status=status
        )


def scan_record_result(*, scan: Scan, analysis, model_version, exam: dict | None = None) -> ScanResult:
    """Store the result and mark the scan done; a positive or inconclusive result raises its alert in
    the same transaction, so an alert never exists without its result nor such a result without one.

    With a guided exam (``exam``, inference/engine/exam.py) whose brow raise named the pattern, the
    result's pattern and side are the measured ones (the guess at rest is kept in its measurements), and
    the forehead's finding decides the urgency with the time of onset (scans/urgency.py)."""
    with transaction.atomic():
        locked = Scan.objects.select_for_update().get(id=scan.id)
        if locked.status != Scan.Status.PROCESSING or hasattr(locked, "result"):
            logger.warning("scan %s changed state during analysis; result discarded", scan.id)
            return getattr(locked, "result", None)
        result = ScanResult(
            scan=locked,
            label=analysis.label,
            score=analysis.score,
            severity=analysis.severity,
            affected_side=analysis.affected_side,
            pattern=analysis.pattern,
            measurements=analysis.measurements,
            quality=analysis.quality,
            classifier=analysis.classifier,
            decision=analysis.decision,
            model_version=model_version,
            engine_version=analysis.engine_version,
            exam=exam or {},
        )
        if exam and exam.get("pattern") in (CENTRAL, PERIPHERAL) and result.label != ScanResult.Label.NO_PARALYSIS:
            result.measurements = {
                **(result.measurements or {}),
                "pattern_at_rest": result.pattern,
                "forehead_involved": exam["pattern"] == PERIPHERAL,
            }
            result.pattern = exam["pattern"]
            result.affected_side = exam.get("affected_side") or result.affected_side
        decided = urgency_of(result, now=timezone.now(), window_hours=settings.STROKE_WINDOW_HOURS)
        result.urgent, result.urgency_reason = decided.urgent, decided.reason[:300]
        if analysis.overlay_jpeg:
            result.overlay.save("overlay.jpg", ContentFile(analysis.overlay_jpeg), save=False)
        if analysis.heatmap_jpeg:
            result.heatmap.save("heatmap.jpg", ContentFile(analysis.heatmap_jpeg), save=False)
        result.save()
        locked.status = Scan.Status.DONE
        locked.finished_at = timezone.now()
        locked.save(update_fields=["status", "finished_at"])
        # Registered first, so the uploader sees the result before the alert it raised.
        publish_scan_updated(
            scan_id=locked.id, patient_id=locked.patient_id, uploader_id=locked.uploaded_by_id, status=locked.status
        )
        if result.needs_clinician:
            alert_raise(scan=locked, result=result)
        fhir_push_queue(result=result)
    return result


class OnsetNotAllowed(Exception):
    """Only the patient's clinicians (and the triage desk) correct a scan's onset."""


def scan_onset_update(*, user, scan_id: int, onset_at):
    """The care team corrects when the person was last seen without this weakness (None: not known).
    The result's urgency is decided again (scans/urgency.py); one that becomes a possible stroke makes its
    active alert urgent, called again. One that no longer is leaves its alert as it is: a clinician
    resolves it. Returns the scan; raises OnsetNotAllowed, or Scan.DoesNotExist when the user may not see it."""
    from portal.selectors import user_role
    from scans.selectors import scan_get_visible

    scan = scan_get_visible(user=user, scan_id=scan_id)
    if scan is None:
        raise Scan.DoesNotExist
    if not user_role(user).is_clinical:
        raise OnsetNotAllowed("Only the patient's clinicians can correct the time of onset.")
    with transaction.atomic():
        locked = Scan.objects.select_for_update().get(id=scan.id)
        locked.onset_at, locked.onset_recorded_by = onset_at, user
        locked.save(update_fields=["onset_at", "onset_recorded_by"])
        result = ScanResult.objects.filter(scan=locked).select_related("scan__patient").first()
        if result is not None:
            was_urgent = result.urgent
            decided = urgency_of(result, now=timezone.now(), window_hours=settings.STROKE_WINDOW_HOURS)
            result.urgent, result.urgency_reason = decided.urgent, decided.reason[:300]
            result.save(update_fields=["urgent", "urgency_reason"])
            if decided.urgent and not was_urgent and locked.episode_alert_id:
                alert_make_urgent(
                    alert_id=locked.episode_alert_id,
                    reason=f"the time of onset was corrected by {user.get_username()}: {decided.reason}",
                )
        publish_scan_updated(
            scan_id=locked.id, patient_id=locked.patient_id, uploader_id=locked.uploaded_by_id, status=locked.status
        )
    return scan_get_visible(user=user, scan_id=scan.id)
