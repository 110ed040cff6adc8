"""REST API for scans: upload (202 at once), list, detail, and the permission-checked image files."""

from __future__ import annotations

import django_filters
from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import FileResponse, Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import generics, status
from rest_framework.exceptions import Throttled, ValidationError
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from inference.engine.imaging import ImageRejected
from portal.api_common import IdFilter, error_responses
from portal.models import Physician
from portal.selectors import patient_list_for_user
from scans.models import Scan
from scans.selectors import patient_timeline, scan_get_visible, scan_list_for_user
from scans.serializers import ScanCreateSerializer, ScanSerializer, TimelinePointSerializer
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
                "Location",
                OpenApiTypes.URI,
                OpenApiParameter.HEADER,
                required=True,
                response=[202],
                description="The new scan's URL (as `url` in the body).",
            )
        ],
        description="Upload a facial photo. Answers 202 at once; the analysis follows (poll the scan "
        "URL or listen on /ws/alerts/ for scan.updated).\n\n"
        "The photo: a relaxed face at rest (not smiling), looking straight at the camera, the whole face "
        "from forehead to chin filling most of the frame, in even light, with the phone level with the eyes "
        "and glasses off if possible. Example: /static/scans/framing-example.svg. A photo that cannot be "
        "measured ends `rejected`, with `status_reason` saying how to retake it.",
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
        try:
            header = admit_upload(request, raw, upload_inspect)
            scan = scan_create(
                user=request.user,
                patient_id=data["patient"],
                image_bytes=raw,
                header=header,
                referring_physician=physician,
                note=data.get("note", ""),
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
