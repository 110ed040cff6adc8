"""REST API for scans: upload (202 at once), list, detail, the permission-checked image files, and the
FHIR R4 export of a finished scan and of a patient's record (scans/fhir.py)."""

from __future__ import annotations

import django_filters
from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import FileResponse, Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from fhir.resources.R4B.resource import Resource
from rest_framework import generics, status
from rest_framework.exceptions import APIException, Throttled, ValidationError
from rest_framework.exceptions import PermissionDenied as DRFPermissionDenied
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from inference.engine.imaging import ImageRejected
from portal.api_common import IdFilter, error_responses
from portal.models import Physician
from portal.selectors import patient_get_visible, patient_list_for_user
from scans.analysis import OnsetNotAllowed, scan_onset_update
from scans.fhir import FHIR_JSON, patient_record_bundle, scan_report_bundle
from scans.models import Scan, ScanPose
from scans.selectors import patient_finished_scans, patient_timeline, scan_get_visible, scan_list_for_user
from scans.serializers import ScanCreateSerializer, ScanOnsetSerializer, ScanSerializer, TimelinePointSerializer
from scans.services import read_upload, scan_create, upload_inspect
from scans.throttling import UploadLimitReached, admit_upload


class ScanFilter(django_filters.FilterSet):
    patient = IdFilter(field_name="patient_id")
    status = django_filters.ChoiceFilter(choices=Scan.Status.choices)
    label = django_filters.CharFilter(field_name="result__label")

    class Meta:
        model = Scan
        fields = ["patient", "status", "label"]


@extend_schema_view(
    get=extend_schema(responses={200: ScanSerializer(many=True), **error_responses(400, 401, 404)}),
)
class ScanListApi(generics.ListAPIView):
    serializer_class = ScanSerializer
    filterset_class = ScanFilter
    parser_classes = [MultiPartParser, FormParser]

    def get_queryset(self):
        return scan_list_for_user(user=self.request.user)

    @extend_schema(
        request={"multipart/form-data": ScanCreateSerializer},
        responses={202: ScanSerializer, **error_responses(400, 401, 429)},
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                required=False,
                description="The client's key for this upload: a repeat answers the scan it made.",
            ),
            OpenApiParameter(
                "Location",
                OpenApiTypes.URI,
                OpenApiParameter.HEADER,
                required=True,
                response=[202],
                description="The new scan's URL (as `url` in the body).",
            ),
        ],
        description="Upload a facial photo. Answers 202 at once; the analysis follows (poll the scan "
        "URL or listen on /ws/alerts/ for scan.updated).\n\n"
        "The photo: a relaxed face at rest (not smiling), looking straight at the camera, the whole face "
        "from forehead to chin filling most of the frame, in even light, with the phone level with the eyes "
        "and glasses off if possible. Example: /static/scans/framing-example.svg. A photo that cannot be "
        "measured ends `rejected`, with `status_reason` saying how to retake it.\n\n"
        "A guided exam sends, beside that photo at rest, the same face raising the eyebrows (`brows_raised`), "
        "closing the eyes tightly (`eyes_closed`) and smiling (`smile`), each optional and repeated for 1-3 "
        "frames: the result then names the pattern from the forehead in motion (`result.exam`).\n\n"
        "`Idempotency-Key` (request header, at most 100 characters): a retried upload with the same key "
        "answers the first scan instead of making a second one.",
    )
    def post(self, request, *args, **kwargs):
        form = ScanCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        physician = None
        if data.get("referring_physician") is not None:
            physician = Physician.objects.filter(id=data["referring_physician"]).first()
            if physician is None:
                raise ValidationError({"referring_physician": ["Unknown physician."]})
        raw = read_upload(data["image"], max_bytes=settings.SCAN_MAX_UPLOAD_BYTES)
        key = request.headers.get("Idempotency-Key", "").strip()
        if len(key) > 100:
            raise ValidationError({"Idempotency-Key": ["At most 100 characters."]})
        if key:
            earlier = (
                scan_list_for_user(user=request.user).filter(uploaded_by=request.user, idempotency_key=key).first()
            )
            if earlier is not None:  # a retried upload: the scan it made, nothing charged again
                body = ScanSerializer(earlier, context={"request": request}).data
                return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["url"]})
        poses = {}
        for pose in ScanPose.Pose.values:
            frames = []
            for upload in data.get(pose) or []:
                frame = read_upload(upload, max_bytes=settings.SCAN_MAX_UPLOAD_BYTES)
                try:
                    admit_upload(request, frame, upload_inspect)
                except ImageRejected as exc:
                    raise ValidationError({pose: [str(exc)]}) from None
                except UploadLimitReached as exc:
                    raise Throttled(wait=exc.wait, detail=str(exc)) from None
                frames.append(frame)
            if frames:
                poses[pose] = frames
        try:
            header = admit_upload(request, raw, upload_inspect)
            scan = scan_create(
                user=request.user,
                patient_id=data["patient"],
                image_bytes=raw,
                header=header,
                referring_physician=physician,
                note=data.get("note", ""),
                onset_at=data.get("onset_at"),
                poses=poses,
                idempotency_key=key,
            )
        except UploadLimitReached as exc:
            raise Throttled(wait=exc.wait, detail=str(exc)) from None
        except ImageRejected as exc:
            raise ValidationError({"image": [str(exc)]}) from None
        except DjangoPermissionDenied:
            # The same answer whether the patient does not exist or is someone else's.
            raise ValidationError({"patient": ["Unknown patient."]}) from None
        # The scan as saved: scan_create checked that the user sees its patient and holds every row the
        # answer names (a re-read through the visibility query was a third of an upload's time).
        body = ScanSerializer(scan, context={"request": request}).data
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["url"]})


@extend_schema_view(
    get=extend_schema(responses={200: ScanSerializer, **error_responses(401, 404, id_in_path=True)}),
)
class ScanDetailApi(generics.RetrieveAPIView):
    serializer_class = ScanSerializer

    def get_queryset(self):
        return scan_list_for_user(user=self.request.user)


class ScanOnsetApi(APIView):
    """The care team corrects when the person was last seen without this weakness."""

    @extend_schema(
        request=ScanOnsetSerializer,
        responses={200: ScanSerializer, **error_responses(400, 401, 403, 404, id_in_path=True)},
        description="Set (or clear, with null: not known) the scan's time of onset. The result's urgency is "
        "decided again; one that becomes a possible stroke makes its alert urgent and calls the care team again. "
        "Clinicians of the patient and the triage desk only.",
    )
    def put(self, request, pk: int):
        form = ScanOnsetSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            scan = scan_onset_update(user=request.user, scan_id=pk, onset_at=form.validated_data["onset_at"])
        except Scan.DoesNotExist:
            raise Http404 from None
        except OnsetNotAllowed as exc:
            raise DRFPermissionDenied(str(exc)) from None
        return Response(ScanSerializer(scan, context={"request": request}).data)


class ScanFileApi(APIView):
    """The photo and its overlays: health data, sent only to users who may see the patient."""

    KINDS = ("image", "overlay", "heatmap")

    @extend_schema(
        parameters=[OpenApiParameter("kind", str, OpenApiParameter.PATH, enum=KINDS)],
        responses={(200, "image/jpeg"): OpenApiTypes.BINARY, **error_responses(401, 404, id_in_path=True)},
        operation_id="scans_file_retrieve",
    )
    def get(self, request, pk: int, kind: str):
        scan = scan_get_visible(user=request.user, scan_id=pk)
        # Only the file kinds: `kind` names an attribute below, and any other one (`scan`, `label`) was a 500.
        if scan is None or kind not in self.KINDS:
            raise Http404
        if kind == "image":
            field = scan.image
        else:
            result = getattr(scan, "result", None)
            field = getattr(result, kind, None) if result is not None else None
        if not field:
            raise Http404
        response = FileResponse(field.open("rb"), content_type="image/jpeg")
        response["Cache-Control"] = "private, no-store"
        response["Content-Disposition"] = f'inline; filename="scan-{scan.id}-{kind}.jpg"'
        return response


class PatientTimelineApi(APIView):
    """The patient's analysed scans, oldest first: label, severity and asymmetry index for a trend."""

    @extend_schema(
        responses={200: TimelinePointSerializer(many=True), **error_responses(401, 404, id_in_path=True)},
    )
    def get(self, request, pk: int):
        if not patient_list_for_user(user=request.user).filter(id=pk).exists():
            raise Http404
        return Response(TimelinePointSerializer(patient_timeline(user=request.user, patient_id=pk), many=True).data)


class FhirJsonRenderer(BaseRenderer):
    """FHIR resources in their own JSON (fhir.resources writes it); the error answers as DRF's {"detail"}."""

    media_type = FHIR_JSON
    format = "fhir"
    charset = None

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        if isinstance(data, Resource):
            return data.model_dump_json().encode()
        return JSONRenderer().render(data)


class FhirNegotiation(BaseContentNegotiation):
    """A FHIR endpoint answers FHIR JSON whatever the client accepts (application/json, */*, or nothing),
    as FHIR servers do, instead of a 406."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class ScanNotFinished(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "This scan has no finished result yet."
    default_code = "not_finished"


# The outline of what the FHIR endpoints return; each resource inside follows FHIR R4 (docs/fhir.md).
FHIR_BUNDLE_SCHEMA = {
    "type": "object",
    "description": "A FHIR R4 Bundle (type collection): see docs/fhir.md for its resources and codes.",
    "properties": {
        "resourceType": {"type": "string", "enum": ["Bundle"]},
        "type": {"type": "string", "enum": ["collection"]},
        "timestamp": {"type": "string", "format": "date-time"},
        "entry": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "fullUrl": {"type": "string"},
                    "resource": {
                        "type": "object",
                        "properties": {"resourceType": {"type": "string"}},
                        "required": ["resourceType"],
                    },
                },
                "required": ["fullUrl", "resource"],
            },
        },
    },
    "required": ["resourceType", "type"],
}


def json_error_responses(*codes: int, id_in_path: bool = False) -> dict:
    """error_responses, said to come as application/json: an error body is DRF's {"detail"}, not FHIR."""
    return {
        key if isinstance(key, tuple) else (key, "application/json"): answer
        for key, answer in error_responses(*codes, id_in_path=id_in_path).items()
    }


class FhirApiView(APIView):
    renderer_classes = [FhirJsonRenderer]
    content_negotiation_class = FhirNegotiation

    def finalize_response(self, request, response, *args, **kwargs):
        if isinstance(response, Response) and response.status_code >= 400:
            # {"detail": ...} is not a FHIR resource: say it is plain JSON.
            request.accepted_renderer, request.accepted_media_type = JSONRenderer(), "application/json"
        return super().finalize_response(request, response, *args, **kwargs)

    @staticmethod
    def bundle_response(bundle, *, filename: str) -> Response:
        response = Response(bundle, content_type=FHIR_JSON)
        response["Cache-Control"] = "private, no-store"
        # The scan page's "Download FHIR" saves it under this name.
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response


class ScanFhirApi(FhirApiView):
    """A finished scan's report as a FHIR R4 Bundle, for the hospital's record system."""

    @extend_schema(
        responses={
            (200, FHIR_JSON): OpenApiResponse(FHIR_BUNDLE_SCHEMA, description="The report as a FHIR R4 Bundle."),
            **json_error_responses(401, 404, 409, id_in_path=True),
        },
        description="A finished scan as a FHIR R4 Bundle (`application/fhir+json`): the Patient (MRN as identifier), "
        "the referring Practitioner, the DiagnosticReport with its Observations (asymmetry index, regional "
        "measurements in mm and degrees, score, pattern, severity, classifier probability), the Device (model "
        "version and decision rule) and the photo as Media pointing at the permission-checked image URL. "
        "409 while the scan has no result (queued, analysing, refused or failed). Codes: docs/fhir.md.",
    )
    def get(self, request, pk: int):
        scan = scan_get_visible(user=request.user, scan_id=pk)
        if scan is None:
            raise Http404
        if scan.status != Scan.Status.DONE or getattr(scan, "result", None) is None:
            raise ScanNotFinished(f"This scan has no finished result ({scan.get_status_display().lower()}).")
        bundle = scan_report_bundle(scan=scan, base_url=request.build_absolute_uri("/"))
        return self.bundle_response(bundle, filename=f"scan-{scan.id}-fhir.json")


class PatientFhirApi(FhirApiView):
    """A patient's record as a FHIR R4 Bundle: the Patient and every finished scan's report, oldest first."""

    @extend_schema(
        responses={
            (200, FHIR_JSON): OpenApiResponse(FHIR_BUNDLE_SCHEMA, description="The record as a FHIR R4 Bundle."),
            **json_error_responses(401, 404, id_in_path=True),
        },
        description="The patient's record as a FHIR R4 Bundle (`application/fhir+json`): the Patient, then each "
        "finished scan's report (as in /api/v1/scans/{id}/fhir/) in the order the photos were taken; scans "
        "without a result are left out. Codes: docs/fhir.md.",
    )
    def get(self, request, pk: int):
        patient = patient_get_visible(user=request.user, patient_id=pk)
        if patient is None:
            raise Http404
        bundle = patient_record_bundle(
            patient=patient,
            scans=patient_finished_scans(user=request.user, patient_id=pk),
            base_url=request.build_absolute_uri("/"),
        )
        return self.bundle_response(bundle, filename=f"patient-{patient.id}-fhir.json")
