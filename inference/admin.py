import tempfile
from pathlib import Path

from django import forms
from django.contrib import admin, messages

from inference.engine.classifier import CheckpointError, file_sha256, read_checkpoint
from inference.models import PHOTO_SENSITIVITY_WARNING, ModelVersion
from inference.selectors import activation_problems, held_out_auc
from inference.services import ModelRefused, model_activate


class ModelVersionForm(forms.ModelForm):
    """Uploading a version: the file must be a ResNet-50 with a two-class head (the training checkpoint
    or a plain torchvision state_dict). Metrics come only from an evaluation (train_classifier,
    register_model --evaluate-on), never from this form; activating is the action's, which checks them."""

    class Meta:
        model = ModelVersion
        fields = ["name", "checkpoint", "thresholds", "notes"]

    def clean_checkpoint(self):
        upload = self.cleaned_data["checkpoint"]
        if upload is None or "checkpoint" not in self.changed_data:
            return upload
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "upload.pt"
            with path.open("wb") as handle:
                for chunk in upload.chunks():
                    handle.write(chunk)
            try:
                read_checkpoint(path)
            except CheckpointError as exc:
                raise forms.ValidationError(str(exc).replace("upload.pt", upload.name)) from None
        upload.seek(0)
        return upload


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    form = ModelVersionForm
    list_display = [
        "name",
        "architecture",
        "is_active",
        "created_at",
        "held_out_auc",
        "may_decide",
        "photo_changes",
        "sha256",
    ]
    list_filter = ["is_active", "architecture"]
    search_fields = ["name", "sha256", "notes"]
    readonly_fields = ["sha256", "is_active", "metrics", "load_error", "load_error_at", "created_at"]
    actions = ["activate"]

    @admin.display(description="held-out ROC AUC (classifier)")
    def held_out_auc(self, obj) -> str:
        auc = held_out_auc(obj)
        return f"{auc[0]:.3f}" if auc else "not evaluated"

    @admin.display(description="may decide")
    def may_decide(self, obj) -> str:
        problems = activation_problems(obj)
        return "yes" if not problems else "no: " + "; ".join(problems)

    @admin.display(description="labels flipped by a photo change (worst)")
    def photo_changes(self, obj) -> str:
        worst = obj.photo_sensitivity()
        return f"{worst[1]:.0%} ({worst[0]})" if worst else "not measured"

    def get_readonly_fields(self, request, obj=None):
        """An evaluated version's file and thresholds are what its figures were measured with: shown,
        not editable (a new file or rule is a new version, evaluated again)."""
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None and obj.is_evaluated():
            fields += ["checkpoint", "thresholds"]
        return fields

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
        try:
            version = model_activate(version=queryset.get())
        except ModelRefused as exc:
            self.message_user(request, f"{exc} The active version is unchanged.", messages.ERROR)
            return
        self.message_user(request, f"{version.name} is now active; workers pick it up on their next scan.")
        worst = version.photo_sensitivity()
        if worst is None or worst[1] > PHOTO_SENSITIVITY_WARNING:
            detail = (
                f"{worst[1]:.0%} of held-out labels flip under '{worst[0]}'"
                if worst
                else "its robustness to photo changes was not measured"
            )
            self.message_user(
                request,
                f"Caution: {detail}; its answers may follow how a photo was taken rather "
                "than the face (see its metrics and docs/model-card.md).",
                messages.WARNING,
            )
