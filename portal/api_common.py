"""What every app's REST API shares: the documented error answers, absolute URLs, id filters."""

from __future__ import annotations

import django_filters
from django import forms
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema_field
from rest_framework import serializers

from portal.ids import ID_MAX, parse_id


class ErrorSerializer(serializers.Serializer):
    """DRF's error body: {"detail": "..."}."""

    detail = serializers.CharField()


_ERRORS = {
    400: OpenApiResponse(
        OpenApiTypes.OBJECT,
        description="Invalid input: {field: [messages]}, or {detail} when the body cannot be parsed.",
    ),
    401: OpenApiResponse(ErrorSerializer, description="No credentials, or an unknown token."),
    403: OpenApiResponse(ErrorSerializer, description="Signed in, but this role may not do this."),
    404: OpenApiResponse(
        ErrorSerializer, description="Not found, or not visible to this user (the two answers are the same on purpose)."
    ),
    409: OpenApiResponse(ErrorSerializer, description="The object is not in a state that allows this step."),
    429: OpenApiResponse(ErrorSerializer, description="Too many requests: retry after the Retry-After seconds."),
    503: OpenApiResponse(ErrorSerializer, description="The service (or this part of it) is not available."),
}
# A path id that is not a number matches no URL, so Django's own 404 page answers it, as HTML.
_NOT_FOUND_BY_ID = OpenApiResponse(
    ErrorSerializer,
    description=_ERRORS[404].description + " An id that is not "
    "a number matches no URL: Django's HTML 404 page answers it.",
)
_NOT_FOUND_PAGE = OpenApiResponse(OpenApiTypes.STR, description=_NOT_FOUND_BY_ID.description)


def error_responses(*codes: int, id_in_path: bool = False) -> dict:
    """The documented error answers, for extend_schema(responses={200: ..., **error_responses(401, 404)})."""
    responses = {}
    for code in codes:
        if code == 404 and id_in_path:
            responses[(404, "application/json")] = _NOT_FOUND_BY_ID
            responses[(404, "text/html")] = _NOT_FOUND_PAGE
        else:
            responses[code] = _ERRORS[code]
    return responses


def absolute_url(request, path: str) -> str:
    return request.build_absolute_uri(path) if request is not None else path


class IdField(forms.IntegerField):
    """ASCII digits only (portal.ids.parse_id): int() also reads '٣' and other Unicode digits."""

    def to_python(self, value):
        if value not in self.empty_values and parse_id(str(value).strip()) is None:
            raise forms.ValidationError("Enter a row id: ASCII digits, at most 2**63 - 1.", code="invalid")
        return super().to_python(value)


class IdFilter(django_filters.NumberFilter):
    """An id in the query string: a whole number the database can hold, else a 400.

    (A plain NumberFilter takes any decimal, and one past 64 bits reached the database: a 500.)
    """

    field_class = IdField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 0)
        kwargs.setdefault("max_value", ID_MAX)
        super().__init__(*args, **kwargs)
        schema = {"type": "integer", "minimum": 0, "maximum": ID_MAX}
        if self.label:
            schema["description"] = str(self.label)
        extend_schema_field(schema)(self)
