"""Who may see which patient: the one place that decides it.

Staff users are the triage desk and see every patient. A clinician sees the patients of the care
teams they belong to; a caregiver sees the patients linked to them. Everyone else sees nothing.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Q, QuerySet

from portal.models import Patient, Physician, UserRole

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


def user_ids_who_may_see_patient(*, patient_id: int) -> set[int]:
    """Everyone an event about this patient may go to: its care team, its caregivers (staff get
    events through their own group)."""
    patient = Patient.objects.filter(id=patient_id).values("care_team_id").first()
    if patient is None:
        return set()
    ids: set[int] = set()
    if patient["care_team_id"]:
        ids.update(
            Physician.objects.filter(
                memberships__care_team_id=patient["care_team_id"], user__isnull=False, user__is_active=True
            ).values_list("user_id", flat=True)
        )
    ids.update(
        Patient.caregivers.through.objects.filter(patient_id=patient_id, caregiver__user__is_active=True).values_list(
            "caregiver__user_id", flat=True
        )
    )
    return ids


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
