from __future__ import annotations

from django import forms

from portal.models import Physician
from portal.selectors import patient_list_for_user


class NewScanForm(forms.Form):
    patient = forms.ModelChoiceField(queryset=None, empty_label="Choose a patient")
    image = forms.FileField(label="Photo of the face", widget=forms.ClearableFileInput(
        attrs={"accept": "image/jpeg,image/png,image/webp", "capture": "user"}))
    referring_physician = forms.ModelChoiceField(queryset=Physician.objects.all(), required=False,
                                                 empty_label="None")
    note = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False, max_length=2000)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["patient"].queryset = patient_list_for_user(user=user)
