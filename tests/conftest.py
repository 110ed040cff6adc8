"""Fixtures: the personas of the access tests, API clients, a private media folder, eager Celery.

Personas (like healthchecks' alice/bob/charlie):
- triage: staff, the triage desk; sees every patient.
- alice: clinician on the care team of `patient`.
- bob: clinician on another team (not on `patient`'s).
- carol: caregiver of `patient`.
- dave: caregiver of `other_patient` only.
"""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest
from rest_framework.test import APIClient

from portal.credentials import issue_token
from tests import factories

# The tests' push service, SMTP and FHIR sinks listen on 127.0.0.1: outbound requests may reach
# loopback there (portal/outbound.py), in this process and in every stack process it starts.
TEST_OUTBOUND = {"OUTBOUND_ALLOW_LOOPBACK": "1"}
os.environ.update(TEST_OUTBOUND)


@pytest.fixture(autouse=True)
def _outbound_to_test_sinks(settings):
    settings.OUTBOUND_ALLOW_LOOPBACK = True


@pytest.fixture(scope="session")
def media_root(tmp_path_factory):
    return tmp_path_factory.mktemp("private-media")


@pytest.fixture(autouse=True)
def _private_media(settings, media_root):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(media_root), "base_url": None},
        },
    }


@pytest.fixture(autouse=True)
def _fresh_rate_limits(monkeypatch):
    """Each test counts requests from nothing: rate-limit counters live in Redis, which outlives a
    test, and a suite makes more requests from 127.0.0.1 in a minute than any limit allows."""
    import uuid

    from rest_framework.throttling import SimpleRateThrottle

    monkeypatch.setattr(SimpleRateThrottle, "cache_format", f"throttle-{uuid.uuid4().hex}_%(scope)s_%(ident)s")


@pytest.fixture
def in_memory_channels(settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


@pytest.fixture
def eager_celery():
    """Run tasks inline (unit tests); the integration tests use a real worker process instead."""
    from portal.celery import app

    app.conf.task_always_eager = True
    yield app
    app.conf.task_always_eager = False


@pytest.fixture
def people(db):
    team = factories.CareTeamFactory(name="Stroke Unit")
    other_team = factories.CareTeamFactory(name="Neurology")
    users = SimpleNamespace(
        triage=factories.UserFactory(username="triage", is_staff=True),
        alice=factories.UserFactory(username="alice"),
        bob=factories.UserFactory(username="bob"),
        carol=factories.UserFactory(username="carol"),
        dave=factories.UserFactory(username="dave"),
    )
    dr_alice = factories.PhysicianFactory(user=users.alice, full_name="Dr Alice")
    dr_bob = factories.PhysicianFactory(user=users.bob, full_name="Dr Bob")
    factories.add_to_team(dr_alice, team, role="lead")
    factories.add_to_team(dr_bob, other_team)
    carol = factories.CaregiverFactory(user=users.carol)
    dave = factories.CaregiverFactory(user=users.dave)
    patient = factories.PatientFactory(full_name="Maria Santos", care_team=team)
    patient.caregivers.add(carol)
    other_patient = factories.PatientFactory(full_name="Li Wei", care_team=other_team)
    other_patient.caregivers.add(dave)
    return SimpleNamespace(
        **vars(users),
        team=team,
        other_team=other_team,
        dr_alice=dr_alice,
        dr_bob=dr_bob,
        patient=patient,
        other_patient=other_patient,
    )


@pytest.fixture
def api():
    """api(user) -> an APIClient authenticated with that user's token (None: anonymous)."""
    tokens: dict[int, str] = {}

    def client_for(user=None) -> APIClient:
        client = APIClient()
        if user is not None:
            if user.id not in tokens:
                tokens[user.id] = issue_token(user)[1]
            client.credentials(HTTP_AUTHORIZATION=f"Token {tokens[user.id]}")
        return client

    return client_for
