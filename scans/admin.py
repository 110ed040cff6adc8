from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from scans.fhir_push import fhir_push_requeue
from scans.models import FhirPush, Scan, ScanResult


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
        # The alert service links a scan to its episode's alert; an admin editing it could point a
        # scan at another patient's alert (issue 29 point 10).
        "episode_alert",
        # The care team corrects the onset on the scan page or the API, which decide the urgency again
        # (scans.analysis.scan_onset_update); a form here would change it without doing so.
        "onset_at",
        "onset_recorded_by",
        "pose_frames",
        "idempotency_key",
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


@admin.register(FhirPush)
class FhirPushAdmin(admin.ModelAdmin):
    """What the hospital's FHIR server was sent: a refused push waits here with the server's reason."""

    list_display = ["id", "scan_link", "created_at", "attempts", "last_tried_at", "sent_at", "refused", "last_error"]
    list_filter = ["refused", ("sent_at", admin.EmptyFieldListFilter)]
    readonly_fields = [field.name for field in FhirPush._meta.fields]
    actions = ["send_again"]

    @admin.display(description="Scan")
    def scan_link(self, push):
        scan_id = push.result.scan_id
        return format_html('<a href="{}">scan {}</a>', reverse("admin:scans_scan_change", args=[scan_id]), scan_id)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("result")

    @admin.action(description="Send again (after the server or the data was fixed)")
    def send_again(self, request, queryset):
        count = fhir_push_requeue(push_ids=list(queryset.values_list("id", flat=True)))
        self.message_user(request, f"{count} unsent push(es) queued again.")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
