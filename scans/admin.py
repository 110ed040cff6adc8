from django.contrib import admin

from scans.models import Scan, ScanResult


class ScanResultInline(admin.StackedInline):
    model = ScanResult
    can_delete = False
    extra = 0

    def get_readonly_fields(self, request, obj=None):
        # Results are the record of what the engine said: never edited by hand.
        return [field.name for field in ScanResult._meta.fields]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Scan)
class ScanAdmin(admin.ModelAdmin):
    list_display = ["id", "patient", "status", "result_label", "uploaded_at", "uploaded_by", "referring_physician"]
    list_filter = ["status", "result__label", "result__severity", "uploaded_at"]
    search_fields = ["patient__full_name", "patient__mrn", "uploaded_by__username"]
    list_select_related = ["patient", "uploaded_by", "referring_physician", "result"]
    readonly_fields = ["patient", "uploaded_by", "image", "image_sha256", "image_width", "image_height", "status",
                       "status_reason", "uploaded_at", "started_at", "finished_at", "attempts"]
    inlines = [ScanResultInline]
    date_hierarchy = "uploaded_at"

    @admin.display(description="Result", ordering="result__label")
    def result_label(self, scan):
        result = getattr(scan, "result", None)
        return result.get_label_display() if result else "—"

    def has_add_permission(self, request):
        # Scans enter through the upload flow, which validates and strips the image.
        return False
