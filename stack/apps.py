from django.apps import AppConfig


class StackConfig(AppConfig):
    """The portal's processes started together: `manage.py runportal` (make run), the integration
    tests and the benchmarks. No models; nothing in the portal's apps imports it."""

    name = "stack"
    verbose_name = "Process supervisor"
