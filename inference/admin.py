from django.contrib import admin, messages
from django.db import transaction

from inference.engine.classifier import file_sha256
from inference.models import PHOTO_SENSITIVITY_WARNING, ModelVersion


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ["name", "architecture", "is_active", "created_at", "held_out_auc", "photo_changes", "sha256"]
    list_filter = ["is_active", "architecture"]
    search_fields = ["name", "sha256", "notes"]
    readonly_fields = ["sha256", "created_at"]
    actions = ["activate"]

    @admin.display(description="held-out ROC AUC (fused)")
    def held_out_auc(self, obj) -> str:
        auc = (obj.metrics or {}).get("fused", {}).get("roc_auc")
        return f"{auc:.3f}" if isinstance(auc, (int, float)) else "—"

    @admin.display(description="labels flipped by a photo change (worst)")
    def photo_changes(self, obj) -> str:
        worst = obj.photo_sensitivity()
        return f"{worst[1]:.0%} ({worst[0]})" if worst else "not measured"

    def save_model(self, request, obj, form, change):
        if "checkpoint" in form.changed_data or not obj.sha256:
            obj.save()
            obj.sha256 = file_sha256(obj.checkpoint.path)
        super().save_model(request, obj, form, change)

    @admin.action(description="Make the selected version the active classifier")
    def activate(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one version.", messages.ERROR)
            return
        version = queryset.get()
        with transaction.atomic():
            ModelVersion.objects.filter(is_active=True).update(is_active=False)
            ModelVersion.objects.filter(id=version.id).update(is_active=True)
        self.message_user(request, f"{version.name} is now active; workers pick it up on their next scan.")
        worst = version.photo_sensitivity()
        if worst is None or worst[1] > PHOTO_SENSITIVITY_WARNING:
            detail = (f"{worst[1]:.0%} of held-out labels flip under '{worst[0]}'" if worst
                      else "its robustness to photo changes was not measured")
            self.message_user(request, f"Caution: {detail}; its answers may follow how a photo was taken rather "
                                       "than the face (see its metrics and docs/model-card.md).", messages.WARNING)
