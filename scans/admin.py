from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from scans.models import Scan, ScanResult


def _file_link(scan_id: int, kind: str, present: bool) -> str:
    # Patient images never have a public URL: link to the permission-checked view instead.
    if not present:
        return "—"
    return format_html('<a href="{}" target="_blank">open {}</a>', reverse("api:scan-file", args=[scan_id, kind]), kind)


class ScanResultInline(admin.StackedInline):
    model = ScanResult
    can_delete = False
    extra = 0

    exclude = ["overlay", "heatmap"]

    def get_readonly_fields(self, request, obj=None):
        # Results are the record of what the engine said: never edited by hand.
        fields = [field.name for field in ScanResult._meta.fields if field.name not in {"overlay", "heatmap"}]
        return [*fields, "overlay_link", "heatmap_link"]

    @admin.display(description="Overlay")
    def overlay_link(self, result):
        return _file_link(result.scan_id, "overlay", bool(result.overlay))

    @admin.display(description="Grad-CAM")
    def heatmap_link(self, result):
        return _file_link(result.scan_id, "heatmap", bool(result.heatmap))

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Scan)
class ScanAdmin(admin.ModelAdmin):
    list_display = ["id", "patient", "status", "result_label", "uploaded_at", "uploaded_by", "referring_physician"]
    list_filter = ["status", "result__label", "result__pattern", "result__severity", "uploaded_at"]
    search_fields = ["patient__full_name", "patient__mrn", "uploaded_by__username"]
    list_select_related = ["patient", "uploaded_by", "referring_physician", "result"]
    exclude = ["image"]
    readonly_fields = [
        "patient",
        "uploaded_by",
        "photo",
        "image_sha256",
        "image_width",
        "image_height",
        "status",
        "status_reason",
        "uploaded_at",
        "started_at",
        "finished_at",
        "attempts",
    ]
    inlines = [ScanResultInline]
    date_hierarchy = "uploaded_at"

    @admin.display(description="Photo")
    def photo(self, scan):
        return _file_link(scan.id, "image", bool(scan.image))

    @admin.display(description="Result", ordering="result__label")
    def result_label(self, scan):
        result = getattr(scan, "result", None)
        return result.get_label_display() if result else "—"

    def has_add_permission(self, request):
        # Scans enter through the upload flow, which validates and strips the image.
        return False
