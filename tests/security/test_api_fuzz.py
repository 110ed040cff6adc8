"""API fuzzing: schemathesis drives every operation of the portal's own OpenAPI schema (/api/schema/).

No request may end in a server error, and every answer (status code, content type, headers, body)
must be one the schema documents. The app runs in-process through Django's WSGI handler, so the
requests share the test's database transaction: nothing is committed, `on_commit` never fires, and
no analysis task reaches a Celery broker.

Every operation in the schema is fuzzed; none is excluded. Deterministic for CI: Hypothesis is
derandomized (the same cases on every run, until this test, the schema or a library version
changes), keeps no example database, and each operation gets a bounded number of generated cases.
"""

from __future__ import annotations

import pytest
import schemathesis
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from alerts.services import alert_raise
from portal.credentials import issue_token
from scans.models import Scan
from tests import factories
from tests.faces import astronaut, jpeg_bytes

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]

# Generated cases per operation and generation mode (positive and negative), on top of the schema's
# coverage cases (boundary values, missing required fields, wrong types).
MAX_EXAMPLES = 25

APP = WSGIHandler()
schema = schemathesis.openapi.from_wsgi(
    "/api/schema/",
    APP,
    config=schemathesis.config.SchemathesisConfig.from_dict({"generation": {"database": "none"}}),
)

# Ids of the objects the fixture made, per kind: the hooks below mix them into the generated path
# parameters and bodies, so the fuzzer reaches real objects (200s, 409s) and not only 404s.
KNOWN: dict[str, list] = {}


@pytest.fixture
def _shared_connection():
    """Keep the test's database connection open across requests, as django.test.Client does.

    A real WSGI handler closes the connection when a request starts and ends, which would end the
    test's transaction (and its rows) after the first request.
    """
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture(params=["triage", "alice", "carol"])
def persona(request, people, settings, in_memory_channels, _shared_connection):
    """Who calls, with data to see: the triage desk (staff: every patient, every alert), a clinician
    (her care team's patients) and a caregiver (her own patient; no alert actions). Each sees other
    answers (403s, 404s, empty lists), and each must be one the schema documents."""
    # Throttle counters in memory: no Redis needed, no state between tests.
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "api-fuzz"}}
    # Web Push configured, so that its endpoints answer for real (without keys they answer 503).
    settings.VAPID_PRIVATE_KEY, settings.VAPID_PUBLIC_KEY = "test-private-key", "test-public-key"
    queued = factories.ScanFactory(
        patient=people.patient, uploaded_by=people.carol, referring_physician=people.dr_alice, note="droop at breakfast"
    )
    analysed = factories.ScanResultFactory(
        scan__patient=people.patient,
        scan__referring_physician=people.dr_bob,
        overlay=ContentFile(b"\xff\xd8overlay", name="overlay.jpg"),
    )
    other = factories.ScanResultFactory(scan__patient=people.other_patient)
    alerts = [alert_raise(scan=r.scan, result=r) for r in (analysed, other)]
    KNOWN.clear()
    KNOWN.update(
        patients=[people.patient.id, people.other_patient.id],
        scans=[queued.id, analysed.scan.id, other.scan.id],
        alerts=[a.id for a in alerts],
        physicians=[people.dr_alice.id, people.dr_bob.id],
        teams=[people.team.id, people.other_team.id],
        caregivers=[people.patient.caregivers.first().id],
    )
    yield {"Authorization": f"Token {issue_token(getattr(people, request.param))[1]}"}
    KNOWN.clear()


def _kind_of(path: str) -> str | None:
    for prefix, kind in (
        ("/api/v1/patients/{id}", "patients"),
        ("/api/v1/scans/{id}", "scans"),
        ("/api/v1/alerts/{id}", "alerts"),
    ):
        if path.startswith(prefix):
            return kind
    return None


def flatmap_path_parameters(ctx, path_parameters):
    """Half the time, point the generated `id` (and file `kind`) at an object that exists."""
    kind = _kind_of(ctx.operation.path)
    if kind is None or not isinstance(path_parameters.get("id"), int):
        return st.just(path_parameters)
    real = {"id": st.sampled_from(KNOWN[kind])}
    if "kind" in path_parameters:
        # Besides the file kinds, names of other attributes of a scan result: the view once looked
        # `kind` up with getattr, and these answered 500.
        real["kind"] = st.sampled_from(
            [path_parameters["kind"], "image", "overlay", "heatmap", "scan", "label", "measurements", "_state"]
        )
    return st.one_of(st.just(path_parameters), _with(path_parameters, real))


def flatmap_body(ctx, body):
    """Half the time, point generated foreign keys at real rows, so validation gets past them."""
    if not isinstance(body, dict):
        return st.just(body)
    real = {}
    for field, kind in (("patient", "patients"), ("referring_physician", "physicians"), ("care_team", "teams")):
        if isinstance(body.get(field), int):
            real[field] = st.sampled_from(KNOWN[kind])
    if isinstance(body.get("caregivers"), list):
        real["caregivers"] = st.lists(st.sampled_from(KNOWN["caregivers"]), max_size=1)
    if not real:
        return st.just(body)
    return st.one_of(st.just(body), _with(body, real))


def _with(values: dict, replacements: dict) -> st.SearchStrategy:
    """The generated values, with some of them drawn from `replacements` (strategies) instead."""
    return st.fixed_dictionaries({**{key: st.just(value) for key, value in values.items()}, **replacements})


@pytest.mark.django_db
@schema.hooks.apply(flatmap_path_parameters)
@schema.hooks.apply(flatmap_body)
@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    # The persona's rows are made once per operation and shared by its cases, on purpose; and a
    # timing-based check has no place in a CI run on a shared machine.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_the_api_answers_every_generated_request_as_its_schema_says(case, persona):
    # Empty throttle counters for each request: past the login rate (20/min) every token request
    # would be a 429 and the endpoint's own answers would go untested. (429 stays documented.)
    cache.clear()
    case.call_and_validate(headers=persona, checks=CHECKS)


@pytest.mark.django_db
def test_a_real_photo_upload_answers_202_as_documented(persona, django_capture_on_commit_callbacks):
    """The fuzzer cannot make a decodable face photo, so the 202 path gets one explicit case."""
    case = schema["/api/v1/scans/"]["POST"].Case(
        body={"patient": KNOWN["patients"][0], "image": jpeg_bytes(astronaut()), "note": "left side"},
        media_type="multipart/form-data",
    )
    with django_capture_on_commit_callbacks() as enqueued:
        response = case.call_and_validate(headers=persona, checks=CHECKS)
    assert response.status_code == 202
    assert Scan.objects.filter(id=response.json()["id"], status=Scan.Status.QUEUED).exists()
    assert len(enqueued) == 1  # the analysis task: captured, never sent to a broker
