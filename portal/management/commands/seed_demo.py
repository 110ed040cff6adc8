"""Create demo accounts and patients (idempotent) and print how to log in."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from portal.models import Caregiver, CareTeam, CareTeamMembership, Patient, Physician

DEMO_PASSWORD = "demo-portal-2026"


class Command(BaseCommand):
    help = "Create demo users (admin, triage, two clinicians, two caregivers) and three patients."

    def add_arguments(self, parser):
        parser.add_argument("--password", default=DEMO_PASSWORD)
        parser.add_argument("--quiet", action="store_true")

    @transaction.atomic
    def handle(self, *args, password: str, quiet: bool, **options):
        User = get_user_model()

        def user(username: str, first: str, last: str, **flags):
            account, created = User.objects.get_or_create(
                username=username, defaults={"first_name": first, "last_name": last, **flags}
            )
            if created:
                account.set_password(password)
                account.save()
            return account

        user("admin", "Ada", "Admin", is_staff=True, is_superuser=True)
        user("triage", "Tess", "Triage", is_staff=True)
        alice = user("dr.alice", "Alice", "Okafor")
        bob = user("dr.bob", "Bob", "Lindqvist")
        carol = user("carol", "Carol", "Mendes")
        dave = user("dave", "Dave", "Patel")

        stroke, _ = CareTeam.objects.get_or_create(name="Stroke Unit")
        neuro, _ = CareTeam.objects.get_or_create(name="Neurology Outpatients")
        dr_alice, _ = Physician.objects.get_or_create(
            user=alice, defaults={"full_name": "Dr Alice Okafor", "specialty": "Stroke medicine"}
        )
        dr_bob, _ = Physician.objects.get_or_create(
            user=bob, defaults={"full_name": "Dr Bob Lindqvist", "specialty": "Neurology"}
        )
        Physician.objects.get_or_create(full_name="Dr Grace Hopper (GP)", defaults={"specialty": "General practice"})
        CareTeamMembership.objects.get_or_create(
            care_team=stroke, physician=dr_alice, defaults={"role": CareTeamMembership.Role.LEAD}
        )
        CareTeamMembership.objects.get_or_create(
            care_team=neuro, physician=dr_bob, defaults={"role": CareTeamMembership.Role.LEAD}
        )
        carol_cg, _ = Caregiver.objects.get_or_create(user=carol)
        dave_cg, _ = Caregiver.objects.get_or_create(user=dave)

        p1, _ = Patient.objects.get_or_create(
            mrn="MRN-1001", defaults={"full_name": "Maria Santos", "care_team": stroke}
        )
        p2, _ = Patient.objects.get_or_create(mrn="MRN-1002", defaults={"full_name": "John Baker", "care_team": stroke})
        p3, _ = Patient.objects.get_or_create(mrn="MRN-2001", defaults={"full_name": "Li Wei", "care_team": neuro})
        p1.caregivers.add(carol_cg)
        p3.caregivers.add(dave_cg)

        if not quiet:
            self.stdout.write(self.style.SUCCESS(f"Demo accounts (password for all: {password})"))
            for name, role in [
                ("admin", "superuser: Django admin at /admin/"),
                ("triage", "staff triage desk: sees every patient and alert"),
                ("dr.alice", "clinician, Stroke Unit: Maria Santos, John Baker"),
                ("dr.bob", "clinician, Neurology Outpatients: Li Wei"),
                ("carol", "caregiver of Maria Santos"),
                ("dave", "caregiver of Li Wei"),
            ]:
                self.stdout.write(f"  {name:<9} {role}")
