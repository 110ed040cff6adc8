from urllib.parse import urlsplit

from django.contrib import admin

from alerts.models import Alert, AlertCall, AlertEvent, PushSubscription


class AlertEventInline(admin.TabularInline):
    model = AlertEvent
    extra = 0
    can_delete = False
    readonly_fields = ["kind", "actor", "source", "remote_addr", "note", "at"]

    def has_add_permission(self, request, obj=None):
        return False


class AlertCallInline(admin.TabularInline):
    """The calls of the alert, for the engineer on call: each tier of each round, when it fell due, how
    many tries it took and when it was made (an unmade one is queued again by the sweep)."""

    model = AlertCall
    extra = 0
    can_delete = False
    readonly_fields = ["round", "tier", "repeat", "due_at", "attempts", "taken_until", "made_at"]
    fields = readonly_fields

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
    inlines = [AlertEventInline, AlertCallInline]

    def has_add_permission(self, request):
        return False


@admin.register(PushSubscription)
class PushSubscriptionAdmin(admin.ModelAdmin):
    """The devices each user's calls are pushed to: an admin can see them and delete one (a lost phone,
    a ward computer handed over). They are registered from the device itself, not here."""

    list_display = ["id", "user", "push_service", "user_agent", "created_at", "last_sent_at"]
    list_filter = ["last_sent_at"]
    search_fields = ["user__username", "user_agent", "endpoint"]
    readonly_fields = ["user", "endpoint", "user_agent", "created_at", "last_sent_at"]
    exclude = ["p256dh", "auth"]

    @admin.display(description="Push service")
    def push_service(self, subscription):
        return urlsplit(subscription.endpoint).hostname or "?"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
