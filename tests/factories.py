from __future__ import annotations

import factory
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile

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


class ScanResultFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ScanResult

    scan = factory.SubFactory(ScanFactory, status=Scan.Status.DONE)
    label = ScanResult.Label.PARALYSIS
    score = 0.9
    severity = ScanResult.Severity.MODERATE
    engine_version = "test-engine"
    measurements = factory.LazyFunction(lambda: {"asymmetry_index": 2.0, "regions": {}})
