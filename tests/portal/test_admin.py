import re

import pytest

from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, django_user_model):
    admin = django_user_model.objects.create_superuser("root", "root@example.org", "pw-for-admin-tests")
    client.force_login(admin)
    return client


@pytest.mark.parametrize(
    "path",
    [
        "/admin/portal/patient/",
        "/admin/portal/physician/",
        "/admin/portal/caregiver/",
        "/admin/portal/careteam/",
        "/admin/scans/scan/",
        "/admin/alerts/alert/",
        "/admin/inference/modelversion/",
    ],
)
def test_admin_lists_every_managed_model_with_search(admin_client, people, path):
    response = admin_client.get(path + "?q=a")
    assert response.status_code == 200


def test_the_scan_admin_shows_results_read_only_and_links_images_through_the_checked_view(admin_client, people):
    result = factories.ScanResultFactory(scan__patient=people.patient)
    page = admin_client.get(f"/admin/scans/scan/{result.scan_id}/change/").content.decode()
    assert f"/api/v1/scans/{result.scan_id}/image/" in page
    assert 'name="result-0-label"' not in page  # no editable result fields
    assert "Signs of facial paralysis" in page
    assert not re.search(r'href="[^"]*scans/\d{4}/', page)  # no raw storage path (scans/2026/...) as a link


def test_the_admin_writes_times_on_the_portals_one_clock(admin_client, people):
    """The same format, zone named, as the pages and the feed (portal/formats/en_GB/formats.py)."""
    from django.utils import timezone
    from django.utils.formats import date_format

    result = factories.ScanResultFactory(scan__patient=people.patient)
    page = admin_client.get(f"/admin/scans/scan/{result.scan_id}/change/").content.decode()
    expected = date_format(timezone.localtime(result.scan.uploaded_at), "DATETIME_FORMAT")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", expected)
    assert expected in page


def test_a_scans_episode_alert_cannot_be_pointed_at_another_patients_alert(admin_client, people):
    from alerts.models import Alert

    mine = factories.ScanResultFactory(scan__patient=people.patient)
    theirs = factories.ScanResultFactory(scan__patient=people.other_patient)
    alert = Alert.objects.create(scan=theirs.scan, patient=people.other_patient, severity="moderate", score=0.9)
    path = f"/admin/scans/scan/{mine.scan_id}/change/"
    assert 'name="episode_alert"' not in admin_client.get(path).content.decode()
    admin_client.post(path, {"episode_alert": alert.id, "note": "", "result-TOTAL_FORMS": "0"})
    mine.scan.refresh_from_db()
    assert mine.scan.episode_alert_id is None


def inline_management(prefix: str, total: int = 1) -> dict:
    return {f"{prefix}-TOTAL_FORMS": str(total), f"{prefix}-INITIAL_FORMS": "0", f"{prefix}-MIN_NUM_FORMS": "0"}


def test_a_clinician_their_sign_in_and_their_team_are_added_on_one_screen(admin_client, people):
    """It took three admin screens (user, physician, care team) with no word of guidance."""
    from django.contrib.auth import get_user_model

    from portal.models import Physician
    from portal.selectors import patient_list_for_user

    add_page = admin_client.get("/admin/portal/physician/add/").content.decode()
    assert 'name="new_username"' in add_page and 'name="memberships-0-care_team"' in add_page
    team_page = admin_client.get(f"/admin/portal/careteam/{people.team.id}/change/").content.decode()
    assert "Physicians → Add physician: one screen" in team_page

    response = admin_client.post(
        "/admin/portal/physician/add/",
        {
            "full_name": "Dr Erin Hale",
            "email": "erin@example.org",
            "new_username": "erin",
            "new_password": "a long enough passphrase 7",
            **inline_management("memberships"),
            "memberships-0-care_team": people.team.id,
            "memberships-0-role": "member",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    erin = get_user_model().objects.get(username="erin")
    assert Physician.objects.get(user=erin).full_name == "Dr Erin Hale"
    assert (erin.first_name, erin.last_name, erin.email) == ("Erin", "Hale", "erin@example.org")
    assert list(patient_list_for_user(user=erin)) == [people.patient]  # she sees her team's patients
    assert erin.check_password("a long enough passphrase 7")


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"new_username": "alice", "new_password": "a long enough passphrase 7"}, "That sign-in name is taken"),
        ({"new_username": "erin"}, "A new sign-in needs an initial password."),
        ({"new_username": "erin", "new_password": "erin"}, "This password is too short"),
        ({"new_password": "a long enough passphrase 7"}, "Give the new sign-in a name"),
    ],
)
def test_a_new_sign_in_that_cannot_be_made_is_refused_with_its_reason(admin_client, people, fields, error):
    from django.contrib.auth import get_user_model

    from portal.models import Physician

    before = (get_user_model().objects.count(), Physician.objects.count())
    response = admin_client.post(
        "/admin/portal/physician/add/", {"full_name": "Dr Erin Hale", **fields, **inline_management("memberships", 0)}
    )
    assert response.status_code == 200
    assert error in response.content.decode()
    assert (get_user_model().objects.count(), Physician.objects.count()) == before


def test_the_admin_names_sections_for_what_they_hold(admin_client):
    index = admin_client.get("/admin/").content.decode()
    assert "Sign-in lockouts" in index and "API tokens (mobile app sign-ins)" in index
    assert "FHIR pushes" in index
    assert ">Axes<" not in index and ">Knox<" not in index and "FHIR pushs" not in index


def test_the_alert_admin_shows_each_call_and_whether_it_was_made(admin_client, people):
    """For the engineer on call: a call due and not made (a notifier cut off) is visible as such."""
    from alerts.models import AlertCall
    from alerts.services import alert_raise

    result = factories.ScanResultFactory(scan__patient=people.patient)
    alert = alert_raise(scan=result.scan, result=result)
    assert AlertCall.objects.filter(alert=alert, tier=0, made_at__isnull=True).count() == 1
    page = admin_client.get(f"/admin/alerts/alert/{alert.id}/change/").content.decode()
    assert "Alert calls" in page and 'class="field-attempts"' in page
