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
