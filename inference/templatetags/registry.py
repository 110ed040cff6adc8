from django import template

from inference.selectors import classifier_problem

register = template.Library()


@register.simple_tag
def active_classifier_problem() -> str:
    return classifier_problem()
