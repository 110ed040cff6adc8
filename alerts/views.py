from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import render

from alerts.notify import push_configured
from alerts.selectors import alert_feed_for_user, live_cursor
from alerts.serializers import AlertSerializer
from alerts.services import UNDO_RESOLVE_SECONDS
from portal.selectors import user_role


@login_required
def feed(request):
    cursor = live_cursor()  # before the list: what changes after it is replayed to the page
    alerts = list(alert_feed_for_user(user=request.user)[:100])
    payload = AlertSerializer(alerts, many=True, context={"request": request}).data
    return render(
        request,
        "alerts/feed.html",
        {
            "alerts_json": payload,
            "live_cursor": cursor,
            "can_act": user_role(request.user).is_clinical,
            "undo_seconds": UNDO_RESOLVE_SECONDS,
            "push_available": push_configured(),
        },
    )


def service_worker(request):
    """static/alerts/sw.js at /sw.js: a service worker controls only the paths under its own URL."""
    script = (settings.BASE_DIR / "static" / "alerts" / "sw.js").read_bytes()
    response = HttpResponse(script, content_type="application/javascript")
    response["Cache-Control"] = "no-cache"
    return response
