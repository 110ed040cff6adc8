from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "People and care teams"

    def ready(self) -> None:
        from axes.signals import user_locked_out

        from portal.auth import on_lockout

        user_locked_out.connect(on_lockout, dispatch_uid="portal.auth.on_lockout")
