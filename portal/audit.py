"""The audit trail of patient data: a middleware records every request that reads or writes it.

One place decides what counts as patient data: the URL routes below. Each request to one of them
(allowed or refused, by anyone) becomes an AuditEvent after the response is known.
"""

from __future__ import annotations

import logging

from django.apps import apps
from django.db import DatabaseError, connection
from django.urls import Resolver404, resolve

from portal.auth import client_ip
from portal.ids import parse_id
from portal.models import AuditEvent

logger = logging.getLogger(__name__)

# route name -> (object type, which kwarg holds its id)
PATIENT_ROUTES: dict[str, tuple[str, str | None]] = {
    "api:patient-list": ("patient", None),
    "api:patient-detail": ("patient", "pk"),
    "api:patient-timeline": ("patient", "pk"),
    "api:patient-fhir": ("patient", "pk"),
    "api:scan-list": ("scan", None),
    "api:scan-detail": ("scan", "pk"),
    "api:scan-file": ("scan", "pk"),
    "api:scan-fhir": ("scan", "pk"),
    "api:alert-list": ("alert", None),
    "api:alert-acknowledge": ("alert", "pk"),
    "api:alert-resolve": ("alert", "pk"),
    "home": ("scan", None),
    "scans:history": ("scan", None),
    "scans:new": ("scan", None),
    "scans:detail": ("scan", "pk"),
    "scans:patient": ("patient", "pk"),
    "alerts:feed": ("alert", None),
}
# object type -> the model (by label: the audit is the base the apps build on, and imports none of
# them) whose rows carry a patient_id.
PATIENT_OBJECTS = {"scan": "scans.Scan", "alert": "alerts.Alert"}
ADMIN_MODELS = {
    "portal/patient",
    "portal/caregiver",
    "scans/scan",
    "scans/fhirpush",
    "alerts/alert",
    "portal/auditevent",
}


def _action(route: str, method: str, has_id: bool, kind: str = "") -> str:
    if route.endswith("acknowledge"):
        return "acknowledge"
    if route.endswith("resolve"):
        return "resolve"
    if route == "api:scan-file":
        # `kind` is whatever the URL said (an unknown one is answered 404, and audited too): cut to the
        # column, which a fuzzer's long unicode kind overflowed (a 500 on PostgreSQL).
        return f"download {kind}"[: AuditEvent._meta.get_field("action").max_length].strip()
    if route in {"api:scan-fhir", "api:patient-fhir"}:
        return "export fhir"
    if method in {"POST", "PUT", "PATCH"}:
        return "create" if not has_id else "update"
    if method == "DELETE":
        return "delete"
    return "view" if has_id else "list"


def _patient_id(object_type: str, object_id: str | None) -> int | None:
    # Ids come from the URL: anything that cannot be a row id touches no patient.
    if parse_id(object_id or "") is None:
        return None
    if object_type == "patient":
        return int(object_id)
    label = PATIENT_OBJECTS.get(object_type)
    if label is None:
        return None
    model = apps.get_model(label)
    return model.objects.filter(id=int(object_id)).values_list("patient_id", flat=True).first()


def classify(path: str, method: str) -> dict | None:
    """What a request touches, or None when it touches no patient data."""
    try:
        match = resolve(path)
    except Resolver404:
        return None
    route = f"{match.namespace}:{match.url_name}" if match.namespace else (match.url_name or "")
    if route in PATIENT_ROUTES:
        object_type, key = PATIENT_ROUTES[route]
        object_id = str(match.kwargs.get(key, ""))[:40] if key else ""
        return {
            "route": route,
            "object_type": object_type,
            "object_id": object_id,
            "action": _action(route, method, bool(object_id), match.kwargs.get("kind", "")),
        }
    parts = path.strip("/").split("/")
    if parts[0] == "admin" and len(parts) >= 3 and f"{parts[1]}/{parts[2]}" in ADMIN_MODELS:
        object_id = parts[3][:40] if len(parts) > 3 and parts[3].isdigit() else ""
        return {
            "route": f"admin:{parts[1]}/{parts[2]}",
            "object_type": parts[2],
            "object_id": object_id,
            "action": "admin " + _action("admin", method, bool(object_id)),
        }
    return None


class AuditMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        touched = classify(request.path_info, request.method)
        if touched is not None:
            self._record(request, response, touched)
        return response

    @staticmethod
    def _record(request, response, touched: dict) -> None:
        # DRF authenticates inside the view: its user is on the response's renderer context.
        user = getattr(getattr(response, "renderer_context", {}).get("request", None), "user", None) or request.user
        authenticated = bool(user and user.is_authenticated)
        if not authenticated:
            # Refused before any patient data was read (401 or a redirect to the login page): not a
            # read of patient data, and rows nobody can delete must not be written by anyone at all.
            return
        try:
            AuditEvent.objects.create(
                user=user,
                username=user.get_username(),
                method=request.method,
                path=request.get_full_path()[:500],
                status_code=response.status_code,
                patient_id=_patient_id(touched["object_type"], touched["object_id"]),
                remote_addr=client_ip(request),
                user_agent=request.META.get("HTTP_USER_AGENT", "")[:300],
                **touched,
            )
        except DatabaseError:
            # The request already happened; losing its audit row must be loud, not a 500.
            logger.exception("could not write the audit event for %s %s", request.method, request.path)


def socket_audit_base(*, user, scope, remote_addr: str) -> dict:
    """What every audit row of one WebSocket shares (alerts/consumers.py adds, per frame or action,
    the time, route, action, object and status)."""
    headers = dict(scope.get("headers", []))
    return {
        "user_id": user.id,
        "username": user.get_username(),
        "method": "WS",
        "path": scope.get("path", "")[:500],
        "remote_addr": remote_addr or None,
        "user_agent": headers.get(b"user-agent", b"").decode("latin-1")[:300],
    }


def record_audit_rows(rows: list[dict]) -> None:
    """Write a batch of audit rows; a failure is logged loudly (the frames were already sent).

    On PostgreSQL with COPY: a busy web node writes thousands of socket rows a minute, and building a
    model instance for each (bulk_create) took a fifth of its time."""
    try:
        if connection.vendor == "postgresql":
            _copy_rows(rows)
        else:
            AuditEvent.objects.bulk_create([AuditEvent(**row) for row in rows])
    except DatabaseError:
        logger.exception("could not write %d socket audit events", len(rows))


def _copy_rows(rows: list[dict]) -> None:
    fields = [field for field in AuditEvent._meta.concrete_fields if not field.primary_key]
    names = [field.attname for field in fields]
    missing = {field.attname: field.get_default() for field in fields if field.attname not in rows[0]}
    columns = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    table = connection.ops.quote_name(AuditEvent._meta.db_table)
    with connection.cursor() as cursor, cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([row[name] if name in row else missing[name] for name in names])
