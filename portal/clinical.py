"""What the portal says it is, in one wording wherever a result or an alert is shown: pages, the API,
socket frames, pushes, e-mails and the API's own description."""

from __future__ import annotations

from django.conf import settings

DISCLAIMER = (
    "Screening and notification aid for prioritisation only; not a diagnosis. A clinician must review the patient."
)


def disclaimer(request) -> dict:
    """Template context processor: {{ disclaimer }} on every page, the portal's time zone (the
    browser's scripts show times in it, not in the browser's own zone), and whether the user is one
    whom alerts call (a callable: the template asks only where it needs to)."""

    def calls_user() -> bool:
        from portal.selectors import user_role

        return request.user.is_authenticated and user_role(request.user).is_clinical

    def session_ends() -> str:
        from portal.credentials import session_ends_iso

        return session_ends_iso(request.session) if request.user.is_authenticated else ""

    return {
        "disclaimer": DISCLAIMER,
        "portal_time_zone": settings.TIME_ZONE,
        "alerts_call_user": calls_user,
        "session_ends": session_ends,
    }
