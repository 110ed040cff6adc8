"""The people: patients, physicians, caregivers and the care teams that link them."""

from __future__ import annotations

from enum import StrEnum

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.timezone import localtime


class UserRole(StrEnum):
    """What a signed-in user is to the portal (portal.selectors.user_role decides which)."""

    STAFF = "staff"  # the triage desk and admins: every patient
    CLINICIAN = "clinician"  # a physician with an account: their care teams' patients
    CAREGIVER = "caregiver"  # uploads photos of the patients they care for
    OTHER = "other"  # an account with none of these roles: sees nothing
    ANONYMOUS = "anonymous"

    @property
    def is_clinical(self) -> bool:
        """Staff and clinicians act on alerts and register patients; caregivers do not."""
        return self in (UserRole.STAFF, UserRole.CLINICIAN)


class Physician(models.Model):
    """A doctor: a clinician who logs in to triage, or only a referring doctor named on scans."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="physician"
    )
    full_name = models.CharField(max_length=200)
    specialty = models.CharField(max_length=100, blank=True)
    phone = models.CharField(max_length=40, blank=True)
    email = models.EmailField(blank=True)

    class Meta:
        ordering = ["full_name"]

    def __str__(self) -> str:
        return self.full_name


class Caregiver(models.Model):
    """A relative, nurse or carer who photographs a patient; sees only the patients linked to them."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="caregiver")
    phone = models.CharField(max_length=40, blank=True)

    def __str__(self) -> str:
        return self.user.get_full_name() or self.user.get_username()


class CareTeam(models.Model):
    name = models.CharField(max_length=120, unique=True)
    members = models.ManyToManyField(Physician, through="CareTeamMembership", related_name="care_teams")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class CareTeamMembership(models.Model):
    class Role(models.TextChoices):
        LEAD = "lead", "Lead physician"
        MEMBER = "member", "Member"

    care_team = models.ForeignKey(CareTeam, on_delete=models.CASCADE, related_name="memberships")
    physician = models.ForeignKey(Physician, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["care_team", "physician"], name="unique_care_team_member"),
        ]

    def __str__(self) -> str:
        return f"{self.physician} in {self.care_team} ({self.get_role_display()})"


class Patient(models.Model):
    """A person as one care team knows them. A patient cared for by two teams has a record in each
    (the MRN is unique within a team): a clinician registering a patient can then never learn whether
    an MRN is known to another team, and staff see every record of an MRN together in the admin."""

    mrn = models.CharField("medical record number", max_length=64, db_index=True)
    full_name = models.CharField(max_length=200)
    date_of_birth = models.DateField(null=True, blank=True)
    care_team = models.ForeignKey(CareTeam, null=True, blank=True, on_delete=models.SET_NULL, related_name="patients")
    caregivers = models.ManyToManyField(Caregiver, blank=True, related_name="patients")
    # A facial palsy the care team knows of, for a patient under follow-up (scans/urgency.py): a photo of
    # the same side, no worse, is routine; a new side or a worse one is a possible stroke.
    known_palsy_side = models.CharField(
        max_length=5, blank=True, choices=[("left", "Left"), ("right", "Right")], help_text="Blank: none known."
    )
    known_palsy_severity = models.CharField(
        max_length=10,
        blank=True,
        choices=[("mild", "Mild"), ("moderate", "Moderate"), ("severe", "Severe")],
        help_text="The worst it is known to be: a photo measured worse is not routine.",
    )
    known_palsy_since = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["full_name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["mrn", "care_team"], name="unique_mrn_per_care_team"),
            models.UniqueConstraint(
                fields=["mrn"], condition=models.Q(care_team__isnull=True), name="unique_mrn_without_care_team"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.full_name} ({self.mrn})"

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        if bool(self.known_palsy_side) != bool(self.known_palsy_severity):
            raise ValidationError("A known facial palsy needs both its side and its severity (or neither).")


class AuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise PermissionError("the audit trail is append-only")

    def delete(self):
        raise PermissionError("the audit trail is append-only")


class AuditEvent(models.Model):
    """Append-only record of every read and write of patient data: who, what, when, from where.

    Rows are never updated or deleted by the application (save/delete refuse); on PostgreSQL a
    trigger refuses UPDATE and DELETE as well (migrations 0003 and 0005: only the UPDATE that deleting an
    account makes, clearing user_id, gets through)."""

    # When it happened: now, unless the writer knew better (a socket's rows are written in batches, and
    # carry the moment each frame was sent).
    at = models.DateTimeField(default=timezone.now, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    username = models.CharField(max_length=150, blank=True, help_text="Kept even if the account is deleted.")
    action = models.CharField(max_length=20)  # view, list, create, update, download, acknowledge, ...
    route = models.CharField(max_length=80)
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=500)
    status_code = models.PositiveSmallIntegerField()
    patient_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    object_type = models.CharField(max_length=40, blank=True)
    object_id = models.CharField(max_length=40, blank=True)
    remote_addr = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return (
            f"{date_format(localtime(self.at), 'DATETIME_FORMAT')} {self.username or 'anonymous'} {self.action} "
            f"{self.path} {self.status_code}"
        )

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise PermissionError("the audit trail is append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("the audit trail is append-only")
