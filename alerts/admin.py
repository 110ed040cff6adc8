from django.contrib import admin

from alerts.models import Alert, AlertEvent


class AlertEventInline(admin.TabularInline):
    model = AlertEvent
    extra = 0
    can_delete = False
    readonly_fields = ["kind", "actor", "source", "remote_addr", "note", "at"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "patient",
        "kind",
        "urgent",
        "pattern",
        "status",
        "severity",
        "score",
        "created_at",
        "acknowledged_by",
        "outcome",
    ]
    list_filter = ["urgent", "kind", "status", "severity", "outcome", "created_at"]
    search_fields = ["patient__full_name", "patient__mrn"]
    list_select_related = ["patient", "acknowledged_by"]
    # Transitions go through the services (event rows, broadcasts), never through a form.
    readonly_fields = [field.name for field in Alert._meta.fields]
    inlines = [AlertEventInline]

    def has_add_permission(self, request):
        return False
