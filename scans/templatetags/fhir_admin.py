"""The admin's banner for results the hospital's FHIR server refused (scans/fhir_push.py)."""

from django import template

from scans.fhir_push import fhir_push_problems

register = template.Library()


@register.simple_tag
def fhir_push_problem() -> str:
    return fhir_push_problems()
