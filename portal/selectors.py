"""Who may see which patient: the one place that decides it.

Staff users are the triage desk and see every patient. A clinician sees the patients of the care
teams they belong to; a caregiver sees the patients linked to them. Everyone else sees nothing.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Q, QuerySet

from portal.models import CareTeamMembership, Patient, Physician, UserRole

User = AbstractBaseUser | AnonymousUser


def patient_visibility_q(user: User, *, prefix: str = "") -> Q | None:
    """A filter on patients (or on rows reaching a patient through `prefix`); None means everything."""
    if user.is_staff:
        return None
    return Q(**{f"{prefix}care_team__memberships__physician__user": user}) | Q(**{f"{prefix}caregivers__user": user})


def patient_list_for_user(*, user: User) -> QuerySet[Patient]:
    if not user.is_authenticated:
        return Patient.objects.none()
    patients = Patient.objects.select_related("care_team")
    condition = patient_visibility_q(user)
    if condition is None:
        return patients
    # Filter on ids so that joins through two relations never duplicate rows.
    return patients.filter(id__in=Patient.objects.filter(condition).values("id"))


def patient_get_visible(*, user: User, patient_id: int) -> Patient | None:
    return patient_list_for_user(user=user).filter(id=patient_id).first()


def physician_list() -> QuerySet[Physician]:
    return Physician.objects.all()


def patient_audience(*, patient_id: int) -> tuple[int | None, set[int]]:
    """Who an event about this patient goes to, besides staff: its care team (every member, as one
    group) and the user ids of its active caregivers. The same rule as patient_visibility_q."""
    patient = Patient.objects.filter(id=patient_id).values("care_team_id").first()
    if patient is None:
        return None, set()
    caregivers = Patient.caregivers.through.objects.filter(
        patient_id=patient_id, caregiver__user__is_active=True
    ).values_list("caregiver__user_id", flat=True)
    return patient["care_team_id"], set(caregivers)


def user_team_ids(*, user: User) -> frozenset[int]:
    """The care teams whose patients this user sees as a clinician."""
    return frozenset(CareTeamMembership.objects.filter(physician__user=user).values_list("care_team_id", flat=True))


def user_role(user: User) -> UserRole:
    if not user.is_authenticated:
        return UserRole.ANONYMOUS
    if user.is_staff:
        return UserRole.STAFF
    if hasattr(user, "physician"):
        return UserRole.CLINICIAN
    if hasattr(user, "caregiver"):
        return UserRole.CAREGIVER
    return UserRole.OTHER
