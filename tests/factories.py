from __future__ import annotations

from datetime import timedelta

import factory
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.utils import timezone

from portal.models import Caregiver, CareTeam, CareTeamMembership, Patient, Physician
from scans.models import Scan, ScanResult


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ["username"]

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("correct horse battery")


class CareTeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CareTeam

    name = factory.Sequence(lambda n: f"Team {n}")


class PhysicianFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Physician

    full_name = factory.Faker("name")
    specialty = "Neurology"


class CaregiverFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Caregiver

    user = factory.SubFactory(UserFactory)


class PatientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Patient

    mrn = factory.Sequence(lambda n: f"MRN-{n:05d}")
    full_name = factory.Faker("name")
    care_team = factory.SubFactory(CareTeamFactory)


def add_to_team(physician: Physician, team: CareTeam, role: str = "member") -> None:
    CareTeamMembership.objects.create(physician=physician, care_team=team, role=role)


class ScanFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Scan

    patient = factory.SubFactory(PatientFactory)
    image = factory.LazyFunction(lambda: ContentFile(b"\xff\xd8not-analysed", name="photo.jpg"))
    image_sha256 = "0" * 64
    image_width = 512
    image_height = 512
    # A scan of the tests is of a face last seen well three days ago (beyond STROKE_WINDOW_HOURS): its
    # urgency then comes from its pattern alone. Tests of the onset rule give it (or None: unknown).
    onset_at = factory.LazyFunction(lambda: timezone.now() - timedelta(days=3))


class ScanResultFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ScanResult

    scan = factory.SubFactory(ScanFactory, status=Scan.Status.DONE)
    label = ScanResult.Label.PARALYSIS
    score = 0.9
    severity = ScanResult.Severity.MODERATE
    engine_version = "test-engine"
    measurements = factory.LazyFunction(lambda: {"asymmetry_index": 2.0, "regions": {}})

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        """Urgency decided by the rule the worker applies (scans/urgency.py), unless a test says."""
        result = model_class(*args, **kwargs)
        if "urgent" not in kwargs:
            decided = _urgency(result)
            result.urgent, result.urgency_reason = decided.urgent, decided.reason
        result.save()
        return result


def _urgency(result):
    from django.conf import settings

    from scans.urgency import urgency_of

    return urgency_of(result, now=timezone.now(), window_hours=settings.STROKE_WINDOW_HOURS)
