from django.contrib import admin

from portal.models import CareTeam, CareTeamMembership, Caregiver, Patient, Physician


class MembershipInline(admin.TabularInline):
    model = CareTeamMembership
    extra = 1
    autocomplete_fields = ["physician"]


@admin.register(CareTeam)
class CareTeamAdmin(admin.ModelAdmin):
    search_fields = ["name"]
    inlines = [MembershipInline]


@admin.register(Physician)
class PhysicianAdmin(admin.ModelAdmin):
    list_display = ["full_name", "specialty", "user", "email", "phone"]
    search_fields = ["full_name", "email", "user__username"]
    list_filter = ["specialty", "care_teams"]
    autocomplete_fields = ["user"]


@admin.register(Caregiver)
class CaregiverAdmin(admin.ModelAdmin):
    list_display = ["__str__", "user", "phone"]
    search_fields = ["user__username", "user__first_name", "user__last_name", "phone"]
    autocomplete_fields = ["user"]


@admin.register(Patient)
class PatientAdmin(admin.ModelAdmin):
    list_display = ["full_name", "mrn", "date_of_birth", "care_team", "created_at"]
    search_fields = ["full_name", "mrn"]
    list_filter = ["care_team"]
    filter_horizontal = ["caregivers"]
