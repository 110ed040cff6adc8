from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.admin import UserAdmin
from django.db.models import Count, OuterRef, Subquery
from knox.models import AuthToken
from qsessions.models import Session

from portal.credentials import revoke_credentials
from portal.models import AuditEvent, Caregiver, CareTeam, CareTeamMembership, Patient, Physician


class AuthTokenInline(admin.TabularInline):
    """The user's API tokens (the mobile app): tick "delete" to end one."""

    model = AuthToken
    fields = readonly_fields = ["token_key", "created", "expiry"]
    extra = 0
    verbose_name = "API token"

    def has_add_permission(self, request, obj=None):
        return False


class SessionInline(admin.TabularInline):
    """The user's browser sessions: tick "delete" to sign that browser out."""

    model = Session
    fields = readonly_fields = ["ip", "user_agent", "created_at", "updated_at", "expire_date"]
    extra = 0
    verbose_name = "browser session"

    def has_add_permission(self, request, obj=None):
        return False


admin.site.unregister(get_user_model())


@admin.register(get_user_model())
class PortalUserAdmin(UserAdmin):
    """Django's user admin, with the user's tokens and sessions, and a way to end them all. Deactivating
    a user or setting a new password ends them too (portal/credentials.py)."""

    inlines = [AuthTokenInline, SessionInline]
    actions = ["sign_out_everywhere"]

    @admin.action(description="Sign the selected users out everywhere (end their API tokens and sessions)")
    def sign_out_everywhere(self, request, queryset):
        tokens = sessions = 0
        for user in queryset:
            ended = revoke_credentials(user.id)
            tokens, sessions = tokens + ended[0], sessions + ended[1]
        self.message_user(
            request, f"Ended {tokens} API tokens and {sessions} sessions of {queryset.count()} users.", messages.SUCCESS
        )


# Stacked, not tabular: each field of a stacked inline has its label (a tabular inline's role and
# delete boxes have none for a screen reader), and plain selects instead of autocomplete widgets,
# which give theirs no accessible name.
class MembershipInline(admin.StackedInline):
    model = CareTeamMembership
    extra = 1
    verbose_name = "member"
    verbose_name_plural = "members: the clinicians who see this team's patients and are called for their alerts"


@admin.register(CareTeam)
class CareTeamAdmin(admin.ModelAdmin):
    search_fields = ["name"]
    inlines = [MembershipInline]
    fieldsets = [
        (
            None,
            {
                "fields": ["name"],
                "description": "To add a clinician who has no sign-in yet, use Physicians → Add physician: one "
                "screen creates the clinician, their sign-in and their teams.",
            },
        )
    ]


class TeamsInline(admin.StackedInline):
    model = CareTeamMembership
    extra = 1
    verbose_name = "care team"
    verbose_name_plural = "care teams: this clinician sees their patients and is called for their alerts"


class PhysicianAdminForm(forms.ModelForm):
    """A clinician, their sign-in and their teams on one screen: a new sign-in is made from the two
    fields below when no existing one is chosen."""

    new_username = forms.CharField(
        label="New sign-in name",
        required=False,
        help_text="For a clinician who has no sign-in yet. Leave empty for a referring doctor who does not "
        "sign in, or choose an existing sign-in above.",
    )
    new_password = forms.CharField(
        label="Initial password",
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Give it to the clinician in person; they can change it from Django's password page.",
    )

    class Meta:
        model = Physician
        fields = ["full_name", "specialty", "email", "phone", "user"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        users = get_user_model().objects.filter(physician__isnull=True, caregiver__isnull=True)
        if self.instance.user_id:
            users = users | get_user_model().objects.filter(pk=self.instance.user_id)
        self.fields["user"].queryset = users.order_by("username")
        self.fields["user"].label = "Existing sign-in"

    def clean(self):
        cleaned = super().clean()
        username, password = cleaned.get("new_username", "").strip(), cleaned.get("new_password", "")
        if not username:
            if password:
                self.add_error("new_username", "Give the new sign-in a name, or leave the password empty.")
            return cleaned
        if cleaned.get("user"):
            self.add_error("new_username", "Choose an existing sign-in or make a new one, not both.")
        elif get_user_model().objects.filter(username__iexact=username).exists():
            self.add_error("new_username", "That sign-in name is taken: choose it as the existing sign-in above.")
        elif not password:
            self.add_error("new_password", "A new sign-in needs an initial password.")
        else:
            user = get_user_model()(username=username, email=cleaned.get("email", ""))
            try:
                password_validation.validate_password(password, user)
            except forms.ValidationError as error:
                self.add_error("new_password", error)
        return cleaned


@admin.register(Physician)
class PhysicianAdmin(admin.ModelAdmin):
    """Adding a clinician takes one screen: their details, a new sign-in, and the care teams that
    decide which patients they see and which alerts call them."""

    form = PhysicianAdminForm
    list_display = ["full_name", "specialty", "user", "email", "phone"]
    search_fields = ["full_name", "email", "user__username"]
    list_filter = ["specialty", "care_teams"]
    inlines = [TeamsInline]
    fieldsets = [
        (None, {"fields": ["full_name", "specialty", "email", "phone"]}),
        (
            "Sign-in",
            {
                "fields": ["user", "new_username", "new_password"],
                "description": "A clinician who triages alerts signs in; a referring doctor named on scans need not.",
            },
        ),
    ]

    def save_model(self, request, obj, form, change):
        username = form.cleaned_data.get("new_username", "").strip()
        if username:
            name = obj.full_name.removeprefix("Dr ").split(" ", 1)
            obj.user = get_user_model().objects.create_user(
                username=username,
                email=obj.email,
                password=form.cleaned_data["new_password"],
                first_name=name[0],
                last_name=name[1] if len(name) > 1 else "",
            )
        super().save_model(request, obj, form, change)


@admin.register(Caregiver)
class CaregiverAdmin(admin.ModelAdmin):
    list_display = ["__str__", "user", "phone"]
    search_fields = ["user__username", "user__first_name", "user__last_name", "phone"]
    autocomplete_fields = ["user"]


@admin.register(Patient)
class PatientAdmin(admin.ModelAdmin):
    """A patient cared for by several teams has a record in each: the list says how many records share
    the MRN, and searching for the MRN shows them together."""

    list_display = ["full_name", "mrn", "records_of_this_mrn", "date_of_birth", "care_team", "created_at"]
    search_fields = ["full_name", "mrn"]
    list_filter = ["care_team"]

    def get_queryset(self, request):
        same_mrn = (
            Patient.objects.filter(mrn=OuterRef("mrn")).order_by().values("mrn").annotate(n=Count("id")).values("n")
        )
        return super().get_queryset(request).annotate(mrn_records=Subquery(same_mrn))

    @admin.display(description="records of this MRN", ordering="mrn_records")
    def records_of_this_mrn(self, patient) -> int:
        return patient.mrn_records


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Staff browse and export the trail; nobody edits or deletes it."""

    list_display = ["at", "username", "action", "object_type", "object_id", "patient_id", "status_code", "remote_addr"]
    list_filter = ["action", "object_type", "status_code", "at"]
    search_fields = ["username", "path", "object_id", "remote_addr"]
    date_hierarchy = "at"
    actions = ["export_csv"]

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in AuditEvent._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_staff

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_staff

    @admin.action(description="Export the selected events as CSV")
    def export_csv(self, request, queryset):
        import csv

        from django.http import HttpResponse

        response = HttpResponse(content_type="text/csv")
        response["Content-Disposition"] = 'attachment; filename="audit-trail.csv"'
        fields = [
            "at",
            "username",
            "action",
            "route",
            "method",
            "path",
            "status_code",
            "patient_id",
            "object_type",
            "object_id",
            "remote_addr",
            "user_agent",
        ]
        writer = csv.writer(response)
        writer.writerow(fields)
        for event in queryset.order_by("at", "id"):
            writer.writerow([spreadsheet_safe(getattr(event, field)) for field in fields])
        return response


def spreadsheet_safe(value):
    """A cell a spreadsheet shows as text: a value starting with =, +, -, @, tab or carriage return
    (a User-Agent or a path the client chose) would otherwise run as a formula (OWASP: CSV injection)."""
    if isinstance(value, str) and value[:1] in {"=", "+", "-", "@", "\t", "\r"}:
        return "'" + value
    return value
