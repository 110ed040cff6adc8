from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "People and care teams"

    def ready(self) -> None:
        from django.conf import settings

        # Created when the portal starts, not when its settings are imported: the default SQLite file
        # and beat's schedule need the folder, and whitenoise warns about a missing static root
        # (it serves from the finders until collectstatic fills it).
        for folder in (settings.VAR_DIR, settings.STATIC_ROOT):
            folder.mkdir(parents=True, exist_ok=True)

        from axes.signals import user_locked_out
        from django.contrib.auth import get_user_model
        from django.contrib.auth.signals import user_logged_in
        from django.db.models.signals import post_delete, post_save, pre_save
        from knox.models import AuthToken
        from qsessions.models import Session

        from portal import credentials
        from portal.auth import on_lockout

        user_locked_out.connect(on_lockout, dispatch_uid="portal.auth.on_lockout")
        user = get_user_model()
        user_logged_in.connect(credentials.on_login, dispatch_uid="portal.credentials.on_login")
        pre_save.connect(credentials.remember_rights, sender=user, dispatch_uid="portal.credentials.remember_rights")
        post_save.connect(credentials.on_user_saved, sender=user, dispatch_uid="portal.credentials.on_user_saved")
        post_delete.connect(credentials.on_user_deleted, sender=user, dispatch_uid="portal.credentials.on_user_deleted")
        post_delete.connect(
            credentials.on_token_deleted, sender=AuthToken, dispatch_uid="portal.credentials.on_token_deleted"
        )
        post_delete.connect(
            credentials.on_session_deleted, sender=Session, dispatch_uid="portal.credentials.on_session_deleted"
        )
        # Which care teams a clinician hears alerts from (alerts/consumers.py) follows their memberships.
        from portal.models import CareTeamMembership, Physician

        for signal in (post_save, post_delete):
            signal.connect(
                credentials.on_membership_changed,
                sender=CareTeamMembership,
                dispatch_uid=f"portal.credentials.on_membership_changed.{signal is post_save}",
            )
        pre_save.connect(
            credentials.remember_physician_user, sender=Physician, dispatch_uid="portal.credentials.remember_physician"
        )
        post_save.connect(credentials.on_physician_saved, sender=Physician, dispatch_uid="portal.credentials.physician")
