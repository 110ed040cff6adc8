"""REST API for people: token login, patients, physicians."""

from __future__ import annotations

from django.contrib.auth.signals import user_logged_in
from django.db import IntegrityError, transaction
from drf_spectacular.utils import extend_schema, extend_schema_view
from knox.views import LogoutAllView, LogoutView
from rest_framework import generics, serializers, status
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.api_common import error_responses
from portal.credentials import issue_token
from portal.models import CareTeam, Patient, UserRole
from portal.selectors import patient_list_for_user, physician_list, user_role
from portal.serializers import PatientSerializer, PhysicianSerializer
from portal.throttling import AnonymousThrottleAuthentication, CountedTokenAuthentication, FailOpenScopedRateThrottle


class TokenResponseSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Send as `Authorization: Token <token>`; shown only once.")
    expiry = serializers.DateTimeField(
        help_text="When the token ends unless used again (each use extends it, up to API_TOKEN_MAX_DAYS after sign-in)."
    )


class TokenApi(APIView):
    """Username and password for an expiring API token (django-rest-knox)."""

    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = [FailOpenScopedRateThrottle]
    throttle_scope = "login"

    @extend_schema(
        request=AuthTokenSerializer,
        responses={200: TokenResponseSerializer, **error_responses(400, 429)},
        tags=["auth"],
    )
    def post(self, request, *args, **kwargs):
        # The login lock (django-axes, portal/auth.py) marks the request it authenticates, and its
        # middleware answers 429 from that mark: it must be Django's request, not DRF's wrapper.
        serializer = AuthTokenSerializer(data=request.data, context={"request": request._request})
        serializer.is_valid(raise_exception=True)
        user = serializer.validated_data["user"]
        instance, token = issue_token(user)
        user_logged_in.send(sender=user.__class__, request=request._request, user=user)
        return Response(TokenResponseSerializer({"token": token, "expiry": instance.expiry}).data)


@extend_schema_view(post=extend_schema(request=None, responses={204: None, **error_responses(401)}, tags=["auth"]))
class TokenLogoutApi(LogoutView):
    """Ends the token that authenticates this request."""

    # Tokens only (knox's own choice), and a request without a valid one counts as anonymous.
    authentication_classes = [CountedTokenAuthentication, AnonymousThrottleAuthentication]


@extend_schema_view(post=extend_schema(request=None, responses={204: None, **error_responses(401)}, tags=["auth"]))
class TokenLogoutAllApi(LogoutAllView):
    """Ends every API token of this user (a lost phone)."""

    authentication_classes = [CountedTokenAuthentication, AnonymousThrottleAuthentication]


@extend_schema_view(
    get=extend_schema(responses={200: PatientSerializer(many=True), **error_responses(401, 404)}),
    post=extend_schema(responses={201: PatientSerializer, **error_responses(400, 401, 403)}),
)
class PatientListApi(generics.ListCreateAPIView):
    serializer_class = PatientSerializer
    filterset_fields = ["mrn"]

    def get_queryset(self):
        return patient_list_for_user(user=self.request.user).prefetch_related("caregivers")

    def create(self, request, *args, **kwargs):
        role = user_role(request.user)
        if not role.is_clinical:
            raise PermissionDenied("Only clinicians and staff can register patients.")
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        care_team = serializer.validated_data.get("care_team")
        if role == UserRole.CLINICIAN and serializer.validated_data.get("caregivers"):
            # Attaching a caregiver lets that person see the patient's photos: the staff desk checks
            # who the caregiver is first.
            raise PermissionDenied("Only the staff desk can attach caregivers to a patient.")
        if role == UserRole.CLINICIAN:
            own_teams = CareTeam.objects.filter(memberships__physician__user=request.user)
            if care_team is None:
                care_team = own_teams.first()
            elif not own_teams.filter(id=care_team.id).exists():
                raise PermissionDenied("You can only register patients for your own care team.")
        mrn = serializer.validated_data["mrn"]
        if Patient.objects.filter(mrn=mrn, care_team=care_team).exists():
            # Only the team's own records are compared: whether another team knows this MRN is
            # never told (that team gets a record of its own, portal/models.py Patient).
            raise ValidationError({"mrn": ["A patient with this MRN is already registered in this care team."]})
        try:
            with transaction.atomic():
                patient = Patient.objects.create(
                    mrn=mrn,
                    full_name=serializer.validated_data["full_name"],
                    date_of_birth=serializer.validated_data.get("date_of_birth"),
                    care_team=care_team,
                    known_palsy_side=serializer.validated_data.get("known_palsy_side", ""),
                    known_palsy_severity=serializer.validated_data.get("known_palsy_severity", ""),
                    known_palsy_since=serializer.validated_data.get("known_palsy_since"),
                )
                patient.caregivers.set(serializer.validated_data.get("caregivers", []))
        except IntegrityError:  # the same registration sent twice at once
            raise ValidationError(
                {"mrn": ["A patient with this MRN is already registered in this care team."]}
            ) from None
        return Response(self.get_serializer(patient).data, status=status.HTTP_201_CREATED)


@extend_schema_view(get=extend_schema(responses={200: PatientSerializer, **error_responses(401, 404, id_in_path=True)}))
class PatientDetailApi(generics.RetrieveAPIView):
    serializer_class = PatientSerializer

    def get_queryset(self):
        return patient_list_for_user(user=self.request.user).prefetch_related("caregivers")


@extend_schema_view(get=extend_schema(responses={200: PhysicianSerializer(many=True), **error_responses(401, 404)}))
class PhysicianListApi(generics.ListAPIView):
    serializer_class = PhysicianSerializer

    def get_queryset(self):
        return physician_list()
