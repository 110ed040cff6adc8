from __future__ import annotations

from django.utils.functional import SimpleLazyObject

from alerts.selectors import live_cursor as read_live_cursor


def live_cursor(request) -> dict:
    """``live_cursor`` for base.html's live.js, read when a page first uses it (a view may give its own,
    read before its list: alerts/views.feed)."""
    if not request.user.is_authenticated:
        return {}
    return {"live_cursor": SimpleLazyObject(read_live_cursor)}
