"""The names the admin shows for the libraries' own sections: an admin reads what a section is for,
not the package it comes from ("AXES", "KNOX")."""

from axes.apps import AppConfig as AxesAppConfig
from django.apps import AppConfig


class SignInLockoutsConfig(AxesAppConfig):
    verbose_name = "Sign-in lockouts (failed sign-ins)"


class ApiTokensConfig(AppConfig):
    name = "knox"  # django-rest-knox has no AppConfig of its own
    default_auto_field = "django.db.models.AutoField"
    verbose_name = "API tokens (mobile app sign-ins)"
