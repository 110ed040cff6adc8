"""Request bodies judged by their cost before they are parsed.

JSON: at most API_JSON_MAX_BYTES (413) and API_JSON_MAX_DEPTH levels of nesting (400), both checked on
the raw bytes before json.loads, whose recursion on a body nested 1,000 deep was a 500.
"""

from __future__ import annotations

import io

from django.conf import settings
from rest_framework import status
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import JSONParser


class BodyTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "too_large"


def json_nesting(text: str | bytes) -> int:
    """How deep JSON brackets nest in ``text`` (an upper bound: brackets inside strings count too)."""
    if isinstance(text, bytes):
        text = text.decode("latin-1")  # brackets are ASCII in every encoding JSON allows here
    depth = deepest = 0
    for char in text:
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


class BoundedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.API_JSON_MAX_BYTES
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise BodyTooLarge(f"JSON body too large: at most {limit} bytes.")
        if json_nesting(raw) > settings.API_JSON_MAX_DEPTH:
            raise ParseError(f"JSON nested too deeply: at most {settings.API_JSON_MAX_DEPTH} levels.")
        return super().parse(io.BytesIO(raw), media_type, parser_context)
