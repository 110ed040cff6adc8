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
        fields = ["id", "mrn", "full_name", "date_of_birth", "care_team", "caregivers", "created_at"]
        read_only_fields = ["created_at"]
        # Not the model's uniqueness checks: they run before the permission checks and would tell a
        # clinician that another team has this MRN. The view checks within the user's own team.
        validators = []


class PatientSummarySerializer(serializers.ModelSerializer):
    class Meta:
        model = Patient
        fields = ["id", "mrn", "full_name"]
