"""REST API for alerts: the feed (with replay after an id), acknowledge and resolve."""

from __future__ import annotations

import django_filters
from django.conf import settings
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import generics, serializers
from rest_framework.exceptions import APIException, NotFound, PermissionDenied, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from alerts.models import Alert, AlertEvent, PushSubscription
from alerts.notify import push_configured
from alerts.selectors import alert_list_for_user, changed_after
from alerts.serializers import AlertResolveSerializer, AlertSerializer
from alerts.services import (
    AlertConflict,
    AlertForbidden,
    AlertNotFound,
    PushEndpointRefused,
    alert_acknowledge,
    alert_resolve,
    alert_undo_resolve,
    push_subscription_save,
)
from portal.api_common import IdFilter, error_responses
from portal.auth import client_ip


class AlertFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=Alert.Status.choices)
    after = IdFilter(field_name="id", lookup_expr="gt", label="Only alerts with a larger id")
    after_event = IdFilter(
        method="filter_after_event", label="Only alerts that changed after this event (an alert's last_event_id)"
    )
    patient = IdFilter(field_name="patient_id")

    class Meta:
        model = Alert
        fields = ["status", "after", "after_event", "patient"]

    def filter_after_event(self, queryset, name, value):
        return changed_after(queryset, after_event=value)


@extend_schema_view(
    get=extend_schema(responses={200: AlertSerializer(many=True), **error_responses(400, 401, 404)}),
)
class AlertListApi(generics.ListAPIView):
    serializer_class = AlertSerializer
    filterset_class = AlertFilter

    def get_queryset(self):
        alerts = alert_list_for_user(user=self.request.user)
        # Replay after an id comes oldest first (after_event orders by change), so a client can apply it in turn.
        return alerts.order_by("id") if "after" in self.request.query_params else alerts


class _Conflict(APIException):
    status_code = 409
    default_code = "conflict"


class AlertAcknowledgeApi(APIView):
    @extend_schema(
        request=None, responses={200: AlertSerializer, **error_responses(401, 403, 404, 409, id_in_path=True)}
    )
    def post(self, request, pk: int):
        alert = _run(
            lambda: alert_acknowledge(
                alert_id=pk, user=request.user, source=AlertEvent.Source.API, remote_addr=client_ip(request)
            )
        )
        return Response(AlertSerializer(alert, context={"request": request}).data)


class AlertResolveApi(APIView):
    @extend_schema(
        request=AlertResolveSerializer,
        responses={200: AlertSerializer, **error_responses(400, 401, 403, 404, 409, id_in_path=True)},
    )
    def post(self, request, pk: int):
        form = AlertResolveSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        alert = _run(
            lambda: alert_resolve(
                alert_id=pk,
                user=request.user,
                source=AlertEvent.Source.API,
                outcome=form.validated_data["outcome"],
                note=form.validated_data.get("note", ""),
                remote_addr=client_ip(request),
            )
        )
        return Response(AlertSerializer(alert, context={"request": request}).data)


class AlertUndoResolveApi(APIView):
    """Take back one's own resolution within UNDO_RESOLVE_SECONDS (alerts.services.alert_undo_resolve)."""

    @extend_schema(
        request=None, responses={200: AlertSerializer, **error_responses(401, 403, 404, 409, id_in_path=True)}
    )
    def post(self, request, pk: int):
        alert = _run(
            lambda: alert_undo_resolve(
                alert_id=pk, user=request.user, source=AlertEvent.Source.API, remote_addr=client_ip(request)
            )
        )
        return Response(AlertSerializer(alert, context={"request": request}).data)


def _run(action):
    try:
        return action()
    except AlertNotFound:
        raise NotFound("Alert not found.") from None
    except AlertForbidden as exc:
        raise PermissionDenied(str(exc)) from None
    except AlertConflict as exc:
        raise _Conflict(str(exc)) from None


class PushKeySerializer(serializers.Serializer):
    public_key = serializers.CharField(help_text="The server's VAPID public key (applicationServerKey).")


class PushSubscriptionSerializer(serializers.Serializer):
    """A browser's PushSubscription.toJSON(): its endpoint and keys."""

    endpoint = serializers.URLField(max_length=1000)
    keys = serializers.DictField(child=serializers.CharField(max_length=200))

    def validate_keys(self, keys: dict) -> dict:
        if not keys.get("p256dh") or not keys.get("auth"):
            raise serializers.ValidationError("keys needs p256dh and auth.")
        return keys


class PushSubscriptionApi(APIView):
    """This device's Web Push subscription: alerts that call its user reach it with the portal closed."""

    @extend_schema(responses={200: PushKeySerializer, **error_responses(401, 503)}, tags=["push"])
    def get(self, request):
        if not push_configured():
            raise PushOff()
        return Response({"public_key": settings.VAPID_PUBLIC_KEY})

    @extend_schema(
        request=PushSubscriptionSerializer, responses={201: None, **error_responses(400, 401, 503)}, tags=["push"]
    )
    def post(self, request):
        if not push_configured():
            raise PushOff()
        data = PushSubscriptionSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            push_subscription_save(
                user=request.user,
                endpoint=data.validated_data["endpoint"],
                p256dh=data.validated_data["keys"]["p256dh"],
                auth=data.validated_data["keys"]["auth"],
                user_agent=request.META.get("HTTP_USER_AGENT", ""),
            )
        except PushEndpointRefused as exc:
            raise ValidationError({"endpoint": [str(exc)]}) from exc
        return Response(status=201)

    @extend_schema(
        request=PushSubscriptionSerializer, responses={204: None, **error_responses(400, 401)}, tags=["push"]
    )
    def delete(self, request):
        endpoint = request.data.get("endpoint") if isinstance(request.data, dict) else None
        if not isinstance(endpoint, str):
            raise ValidationError({"endpoint": ["The subscription's endpoint is required."]})
        PushSubscription.objects.filter(user=request.user, endpoint=endpoint).delete()
        return Response(status=204)


class PushOff(APIException):
    status_code = 503
    default_detail = "Web Push is not set up on this server (VAPID keys); alerts still reach the dashboard."
