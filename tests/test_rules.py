"""Rules with one source: the disclaimer, the severity order, the roles, the active alert statuses."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.contrib.auth.models import AnonymousUser

from alerts.models import Alert
from alerts.notify import message
from alerts.services import alert_raise
from inference.engine.decide import SEVERITIES, severity_rank
from portal.clinical import DISCLAIMER
from portal.models import UserRole
from portal.selectors import user_role
from scans.models import ScanResult
from tests import factories

pytestmark = pytest.mark.django_db


def test_every_surface_says_the_same_disclaimer(client, people, api, in_memory_channels):
    result = factories.ScanResultFactory(scan__patient=people.patient, label="paralysis", severity="moderate")
    alert = alert_raise(scan=result.scan, result=result)
    client.force_login(people.alice)
    surfaces = {
        "a page's footer": client.get("/").content.decode(),
        "the scan page": client.get(result.scan.get_absolute_url()).content.decode(),
        "the alert feed": client.get("/alerts/").content.decode(),
        "the scan API": api(people.alice).get(f"/api/v1/scans/{result.scan.id}/").json()["result"]["disclaimer"],
        "the alert API": api(people.alice).get("/api/v1/alerts/").json()["results"][0]["disclaimer"],
        "the FHIR report": api(people.alice).get(f"/api/v1/scans/{result.scan.id}/fhir/").content.decode(),
        "a push and an e-mail": message(alert, 0)[1],
        "the API's description": settings.SPECTACULAR_SETTINGS["DESCRIPTION"],
    }
    assert [name for name, text in surfaces.items() if DISCLAIMER not in text] == []


def test_the_dashboards_desktop_notification_quotes_the_alerts_own_disclaimer():
    script = (settings.BASE_DIR / "static" / "portal" / "live.js").read_text()
    assert "alert.disclaimer" in script and "diagnosis" not in script


def test_severities_are_stored_and_compared_in_the_engines_order():
    assert ScanResult.Severity.values == list(SEVERITIES)
    assert [severity_rank(name) for name in SEVERITIES] == [0, 1, 2, 3]
    assert severity_rank("severe") > severity_rank("moderate") > severity_rank("mild") > severity_rank("none")
    with pytest.raises(ValueError):
        severity_rank("critical")


def test_each_persona_has_its_role_and_only_clinical_roles_act_on_alerts(people):
    roles = {name: user_role(getattr(people, name)) for name in ("triage", "alice", "carol")}
    roles["nobody"] = user_role(factories.UserFactory())
    roles["anonymous"] = user_role(AnonymousUser())
    assert roles == {
        "triage": UserRole.STAFF,
        "alice": UserRole.CLINICIAN,
        "carol": UserRole.CAREGIVER,
        "nobody": UserRole.OTHER,
        "anonymous": UserRole.ANONYMOUS,
    }
    assert {name for name, role in roles.items() if role.is_clinical} == {"triage", "alice"}


def test_an_alert_is_active_until_it_is_resolved():
    assert set(Alert.ACTIVE_STATUSES) == set(Alert.Status) - {Alert.Status.RESOLVED}
