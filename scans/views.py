"""Dashboard pages for scans: new scan, history (positives in red), one scan with its result."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from alerts.selectors import alert_list_active_for_patient
from inference.engine.imaging import ImageRejected
from portal.ids import parse_id
from portal.models import UserRole
from portal.selectors import patient_get_visible, patient_list_for_user, user_role
from scans.analysis import OnsetNotAllowed, scan_onset_update
from scans.charts import asymmetry_trend_svg
from scans.forms import NewScanForm, OnsetForm
from scans.models import Scan, ScanResult
from scans.selectors import latest_change, patient_timeline, scan_get_visible, scan_list_for_user
from scans.services import (
    photo_held,
    photo_hold,
    photo_release,
    read_upload,
    scan_create,
    upload_inspect,
)
from scans.throttling import UploadLimitReached, admit_upload
from scans.wording import care_team_news, lay_advice


@login_required
def new_scan(request):
    """The New Scan form. Sent back with an error, it says so at its top and keeps a photo that passed
    its checks (scans.services.photo_hold), so that correcting the patient does not mean choosing the
    photo again."""
    form = NewScanForm(
        request.POST or None, request.FILES or None, user=request.user, initial={"patient": request.GET.get("patient")}
    )
    status = 400 if request.method == "POST" else 200
    kept = None  # the photo kept for the corrected form: {"bytes", "name"}
    if request.method == "POST" and form.is_valid():
        if form.cleaned_data["image"]:
            upload = form.cleaned_data["image"]
            raw, name = read_upload(upload, max_bytes=settings.SCAN_MAX_UPLOAD_BYTES), upload.name
        else:
            raw, name = form.held["bytes"], form.held["name"]
        try:
            poses = {}
            for pose, uploads in form.pose_files().items():
                frames = []
                for upload in uploads:
                    frame = read_upload(upload, max_bytes=settings.SCAN_MAX_UPLOAD_BYTES)
                    try:
                        admit_upload(request, frame, upload_inspect)
                    except ImageRejected as exc:
                        raise PoseRejected(pose, exc) from None
                    frames.append(frame)
                poses[pose] = frames
            header = admit_upload(request, raw, upload_inspect)
            scan = scan_create(
                user=request.user,
                patient_id=form.cleaned_data["patient"].id,
                image_bytes=raw,
                header=header,
                referring_physician=form.cleaned_data["referring_physician"],
                note=form.cleaned_data["note"],
                onset_at=form.cleaned_data["onset_at"],
                poses=poses,
            )
        except PoseRejected as exc:
            form.add_error(exc.pose, f"This photo could not be used: {exc.reason}")
            kept = _keep_photo(request, form, raw, name)
        except UploadLimitReached as exc:
            form.add_error(None, str(exc))
            status = 429
            kept = _keep_photo(request, form, raw, name)
        except ImageRejected as exc:
            form.add_error("image", str(exc))
        except PermissionDenied:
            # The patient left the user's care between the form's choices and the upload.
            form.add_error("patient", "Unknown patient.")
            kept = _keep_photo(request, form, raw, name)
        else:
            if form.cleaned_data["held_photo"]:
                photo_release(user=request.user, token=form.cleaned_data["held_photo"])
            return redirect(scan)
    elif request.method == "POST" and "image" not in form.errors and request.FILES.get("image"):
        upload = request.FILES["image"]
        raw = read_upload(upload, max_bytes=settings.SCAN_MAX_UPLOAD_BYTES)
        try:
            upload_inspect(raw)
        except ImageRejected as exc:
            form.add_error("image", str(exc))
        else:
            kept = _keep_photo(request, form, raw, upload.name)
    if kept is None and form.is_bound:
        # Sent back with a kept photo and no new one: clean() has read it already, or (a new photo was
        # refused) the form still refers to the earlier one.
        kept = form.held or photo_held(user=request.user, token=form["held_photo"].value() or "")
    return render(request, "scans/new.html", {"form": form, "kept": kept}, status=status)


def _keep_photo(request, form: NewScanForm, raw: bytes, name: str) -> dict:
    """Keep the photo for the corrected form (its token in the form's held_photo field): what is kept."""
    if form.held:  # already kept: the form refers to it
        return form.held
    token, held = photo_hold(user=request.user, image_bytes=raw, name=name)
    form.data = form.data.copy()
    form.data["held_photo"] = token
    return held


@login_required
def history(request):
    scans = scan_list_for_user(user=request.user)
    label = request.GET.get("label", "")
    if label in ScanResult.Label.values:
        scans = scans.filter(result__label=label)
    status = request.GET.get("status", "")
    if status in Scan.Status.values:
        scans = scans.filter(status=status)
    patient_id = request.GET.get("patient", "")
    if patient_id:
        wanted = parse_id(patient_id)
        if wanted is None:
            return HttpResponseBadRequest("The patient filter must be a patient's id (a whole number).")
        scans = scans.filter(patient_id=wanted)
    page = Paginator(scans, 25).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "scans/history.html",
        {
            "page": page,
            "label": label,
            "labels": ScanResult.Label.choices,
            "status": status,
            "statuses": Scan.Status.choices,
            "patient_id": patient_id,
            "query": query.urlencode(),
            "patients": patient_list_for_user(user=request.user),
        },
    )


class PoseRejected(Exception):
    def __init__(self, pose: str, reason: Exception):
        super().__init__(str(reason))
        self.pose, self.reason = pose, str(reason)


@login_required
def detail(request, pk: int):
    scan = scan_get_visible(user=request.user, scan_id=pk)
    if scan is None:
        raise Http404("No such scan.")
    result = getattr(scan, "result", None) if scan.status == Scan.Status.DONE else None
    # A caregiver reads plain words with a number to call; clinicians read the label, pattern and advice.
    caregiver = user_role(request.user) == UserRole.CAREGIVER
    lay = lay_advice(result) if result is not None and caregiver else None
    news = care_team_news(scan.episode_alert) if lay else ""
    onset_form = OnsetForm(initial={"onset_at": scan.onset_at}) if user_role(request.user).is_clinical else None
    return render(
        request,
        "scans/detail.html",
        {"scan": scan, "result": result, "lay": lay, "team_news": news, "onset_form": onset_form},
    )


@login_required
@require_POST
def onset(request, pk: int):
    """The care team corrects when the person was last seen without this weakness (the scan page's form)."""
    form = OnsetForm(request.POST)
    if not form.is_valid():
        scan = scan_get_visible(user=request.user, scan_id=pk)
        if scan is None:
            raise Http404("No such scan.")
        result = getattr(scan, "result", None) if scan.status == Scan.Status.DONE else None
        context = {"scan": scan, "result": result, "lay": None, "team_news": "", "onset_form": form}
        return render(request, "scans/detail.html", context, status=400)
    try:
        scan_onset_update(user=request.user, scan_id=pk, onset_at=form.cleaned_data["onset_at"])
    except Scan.DoesNotExist:
        raise Http404("No such scan.") from None
    except OnsetNotAllowed as exc:
        raise PermissionDenied(str(exc)) from None
    return redirect("scans:detail", pk=pk)


@login_required
def patient(request, pk: int):
    person = patient_get_visible(user=request.user, patient_id=pk)
    if person is None:
        raise Http404("No such patient.")
    timeline = patient_timeline(user=request.user, patient_id=pk)
    return render(
        request,
        "scans/patient.html",
        {
            "patient": person,
            "trend_svg": asymmetry_trend_svg(timeline),
            "latest_change": latest_change(timeline),
            "timeline": timeline,
            "scans": scan_list_for_user(user=request.user).filter(patient_id=pk)[:50],
            "open_alerts": alert_list_active_for_patient(user=request.user, patient_id=pk),
        },
    )
