"""Serializers of people, used by every app's API and by the socket frames. Shapes only."""

from __future__ import annotations

from rest_framework import serializers

from portal.models import Patient, Physician


class PhysicianSerializer(serializers.ModelSerializer):
    class Meta:
        model = Physician
        fields = ["id", "full_name", "specialty"]


class PatientSerializer(serializers.ModelSerializer):
    class Meta:
        model = Patient
        fields = [
            "id",
            "mrn",
            "full_name",
            "date_of_birth",
            "care_team",
            "caregivers",
            "known_palsy_side",
            "known_palsy_severity",
            "known_palsy_since",
            "created_at",
        ]
        read_only_fields = ["created_at"]
        extra_kwargs = {
            "known_palsy_side": {"help_text": "A facial palsy the care team knows of (left, right; blank: none)."},
            "known_palsy_severity": {
                "help_text": "The worst it is known to be: a photo of the same side no worse is routine, a new side "
                "or a worse one is a possible stroke."
            },
        }
        # Not the model's uniqueness checks: they run before the permission checks and would tell a
        # clinician that another team has this MRN. The view checks within the user's own team.
        validators = []

    def validate(self, data):
        if bool(data.get("known_palsy_side")) != bool(data.get("known_palsy_severity")):
            raise serializers.ValidationError(
                {"known_palsy_severity": ["A known facial palsy needs both its side and its severity (or neither)."]}
            )
        return data


class PatientSummarySerializer(serializers.ModelSerializer):
    class Meta:
        model = Patient
        fields = ["id", "mrn", "full_name"]
