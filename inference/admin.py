from django.contrib import admin, messages
from django.db import transaction

from inference.engine.classifier import file_sha256
from inference.models import ModelVersion


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ["name", "architecture", "is_active", "created_at", "sha256"]
    list_filter = ["is_active", "architecture"]
    search_fields = ["name", "sha256", "notes"]
    readonly_fields = ["sha256", "created_at"]
    actions = ["activate"]

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
