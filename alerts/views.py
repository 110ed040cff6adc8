from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from alerts.selectors import alert_feed_for_user
from alerts.serializers import AlertSerializer
from portal.selectors import user_role
from scans.serializers import DISCLAIMER


@login_required
def feed(request):
    alerts = list(alert_feed_for_user(user=request.user)[:100])
    payload = AlertSerializer(alerts, many=True, context={"request": request}).data
    return render(request, "alerts/feed.html", {
        "alerts_json": payload,
        "last_alert_id": max((alert.id for alert in alerts), default=0),
        "can_act": user_role(request.user) in {"staff", "clinician"},
        "disclaimer": DISCLAIMER,
    })
