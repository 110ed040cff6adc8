from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "alerts"
    verbose_name = "Alerts"

    def ready(self) -> None:
        from alerts.rights import on_rights_changed
        from portal.credentials import rights_changed

        rights_changed.connect(on_rights_changed, dispatch_uid="alerts.rights.on_rights_changed")
