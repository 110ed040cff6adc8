from __future__ import annotations

from django import forms

from portal.models import Physician
from portal.selectors import patient_list_for_user
from scans.models import ScanPose


class MultiplePhotos(forms.ClearableFileInput):
    """A phone's burst: one to three photos of a pose in one input."""

    allow_multiple_selected = True

    def __init__(self, attrs=None):
        super().__init__({"accept": "image/*", "multiple": True, **(attrs or {})})


class OnsetField(forms.DateTimeField):
    """When the person was last seen without this weakness (scans/urgency.py), in the portal's time zone
    from a phone's date-and-time picker; empty: not known; a time to come is refused."""

    def __init__(self, **kwargs):
        super().__init__(
            required=False,
            widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
            input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
            **kwargs,
        )

    def clean(self, value):
        from django.utils import timezone

        from scans.urgency import onset_problem

        onset_at = super().clean(value)
        problem = onset_problem(onset_at, now=timezone.now())
        if problem:
            raise forms.ValidationError(problem)
        return onset_at


class PosePhotosField(forms.FileField):
    """One to three files of a pose (Django's pattern for an input with several files)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, required=False, widget=MultiplePhotos, **kwargs)

    def clean(self, data, initial=None):
        files = data if isinstance(data, (list, tuple)) else [data] if data else []
        return [super(PosePhotosField, self).clean(file, initial) for file in files]


class NewScanForm(forms.Form):
    patient = forms.ModelChoiceField(queryset=None, empty_label="Choose a patient")
    # The page draws three inputs with this one name (front camera, back camera, a saved photo): a phone
    # opens the right camera from `capture`, and it works without JavaScript. A browser sends only the
    # inputs that hold a file.
    image = forms.FileField(label="Photo of the face", required=False)
    # A photo already sent with this form and kept while the form is corrected (scans.services.photo_hold).
    held_photo = forms.CharField(required=False, widget=forms.HiddenInput, max_length=64)
    referring_physician = forms.ModelChoiceField(queryset=Physician.objects.all(), required=False, empty_label="None")
    note = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False, max_length=2000)
    # A guided exam (issue 41), each pose optional, up to three frames each (one input, several files).
    brows_raised = PosePhotosField(label="Eyebrows raised")
    eyes_closed = PosePhotosField(label="Eyes closed tightly")
    smile = PosePhotosField(label="A big smile")
    # The time of onset (scans/urgency.py), in the portal's time zone; empty: not known.
    onset_at = OnsetField(
        label="When was the person last seen without this weakness?",
        help_text="Leave it empty if nobody knows: the care team then treats it as a possible stroke.",
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.fields["patient"].queryset = patient_list_for_user(user=user)
        self.held = None  # {"bytes", "name"} of the kept photo the form refers to, once cleaned

    def pose_files(self) -> dict[str, list]:
        """{pose: [1-3 uploaded files]} of the exam's poses given."""
        return {pose: self.cleaned_data[pose] for pose in ScanPose.Pose.values if self.cleaned_data.get(pose)}

    def clean(self):
        cleaned = self._clean_photo()
        for pose in ScanPose.Pose.values:
            if len(self.files.getlist(self.add_prefix(pose))) > ScanPose.MAX_FRAMES:
                self.add_error(pose, f"At most {ScanPose.MAX_FRAMES} photos of a pose: choose the best ones.")
        return cleaned

    def clean_image(self):
        # Without JavaScript nothing clears the other inputs, and guessing which photo was meant could
        # analyse the wrong one.
        if len(self.files.getlist(self.add_prefix("image"))) > 1:
            raise forms.ValidationError("Two photos were chosen. Choose one photo, then start the analysis.")
        return self.cleaned_data["image"]

    def _clean_photo(self):
        from scans.services import HELD_PHOTO_SECONDS, photo_held

        cleaned = super().clean()
        if cleaned.get("image") or "image" in self.errors:
            return cleaned
        self.held = photo_held(user=self.user, token=cleaned.get("held_photo", ""))
        if self.held is None:
            message = (
                "Choose a photo of the face."
                if not cleaned.get("held_photo")
                else f"The photo chosen earlier was kept for {HELD_PHOTO_SECONDS // 60} minutes only: choose it again."
            )
            self.add_error("image", message)
        return cleaned


class OnsetForm(forms.Form):
    """The care team's correction of a scan's time of onset (scans.analysis.scan_onset_update)."""

    onset_at = OnsetField(label="Last seen without this weakness", help_text="Empty: not known.")
