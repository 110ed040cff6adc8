"""Audit trail, login rate limit, security headers and the production settings check."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.cache import cache

from portal.models import AuditEvent
from tests import factories

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.mark.django_db
def test_reading_a_scan_records_who_what_when_and_from_where(people, api):
    scan = factories.ScanFactory(patient=people.patient)
    api(people.alice).get(f"/api/v1/scans/{scan.id}/", REMOTE_ADDR="10.1.2.3", HTTP_USER_AGENT="FaceCheck/1.0")
    event = AuditEvent.objects.get(route="api:scan-detail")
    assert (event.username, event.action, event.status_code) == ("alice", "view", 200)
    assert event.patient_id == people.patient.id and event.object_id == str(scan.id)
    assert event.remote_addr == "10.1.2.3" and event.user_agent == "FaceCheck/1.0"


@pytest.mark.django_db
def test_refused_attempts_are_recorded_too(people, api, client):
    scan = factories.ScanFactory(patient=people.patient)
    api(people.dave).get(f"/api/v1/scans/{scan.id}/image/")
    client.force_login(people.bob)
    client.get(f"/scans/{scan.id}/")
    rows = list(AuditEvent.objects.order_by("id").values_list("username", "action", "status_code", "patient_id"))
    assert rows == [("dave", "download image", 404, people.patient.id), ("bob", "view", 404, people.patient.id)]


@pytest.mark.django_db
def test_pages_that_show_no_patient_data_are_not_audited(client, people):
    client.get("/information/")
    client.get("/healthz")
    assert not AuditEvent.objects.exists()


@pytest.mark.django_db
def test_the_audit_trail_is_append_only(people, api):
    api(people.alice).get("/api/v1/scans/")
    event = AuditEvent.objects.get()
    event.action = "nothing to see"
    with pytest.raises(PermissionError):
        event.save()
    with pytest.raises(PermissionError):
        event.delete()
    with pytest.raises(PermissionError):
        AuditEvent.objects.filter(id=event.id).update(action="x")
    with pytest.raises(PermissionError):
        AuditEvent.objects.all().delete()


@pytest.mark.django_db
def test_staff_browse_and_export_the_trail_in_admin_and_cannot_change_it(client, django_user_model, people, api):
    api(people.alice).get(f"/api/v1/patients/{people.patient.id}/")
    admin = django_user_model.objects.create_superuser("root", "root@example.org", "pw-for-admin-tests")
    client.force_login(admin)
    listing = client.get("/admin/portal/auditevent/")
    assert listing.status_code == 200 and "alice" in listing.content.decode()
    event = AuditEvent.objects.get(username="alice")
    export = client.post("/admin/portal/auditevent/", {"action": "export_csv", "_selected_action": [event.id]})
    rows = list(csv.reader(io.StringIO(export.content.decode())))
    assert rows[0][:3] == ["at", "username", "action"] and rows[1][1:3] == ["alice", "view"]
    assert client.post(f"/admin/portal/auditevent/{event.id}/delete/", {"post": "yes"}).status_code == 403


@pytest.mark.django_db
def test_dashboard_login_is_refused_after_too_many_failures(client, people, settings):
    settings.LOGIN_FAILURES_PER_ADDRESS = 3
    for _ in range(2):
        assert client.post("/login/", {"username": "alice", "password": "wrong"}).status_code == 200
    assert client.post("/login/", {"username": "alice", "password": "wrong"}).status_code == 429
    locked = client.post("/login/", {"username": "alice", "password": "correct horse battery"})
    assert locked.status_code == 429
    assert "Too many failed attempts" in locked.content.decode()


@pytest.mark.django_db
def test_a_correct_login_still_works_below_the_limit(client, people):
    client.post("/login/", {"username": "alice", "password": "wrong"})
    response = client.post("/login/", {"username": "alice", "password": "correct horse battery"})
    assert response.status_code == 302 and response["Location"] == "/"


@pytest.mark.django_db
def test_pages_send_a_strict_content_security_policy(client, people):
    client.force_login(people.alice)
    response = client.get("/")
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy and "object-src 'none'" in policy
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    docs = client.get("/api/docs/").content.decode()
    assert "<script src=" in docs and "cdn." not in docs  # Swagger UI served locally


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    env = {key: value for key, value in os.environ.items() if key != "DEBUG"}
    env.update(
        SECRET_KEY="x" * 60 + "production-only-secret-for-the-check",
        PORTAL_REQUIRE_SECRET_KEY="1",
        DEBUG="0",
        ALLOWED_HOSTS="portal.example.org",
        CSRF_TRUSTED_ORIGINS="https://portal.example.org",
        BEHIND_TLS_PROXY="1",
        SECURE_COOKIES="1",
        SECURE_SSL_REDIRECT="1",
        SECURE_HSTS_SECONDS="31536000",
        PORTAL_VAR_DIR=str(tmp_path),
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    env = {key: value for key, value in os.environ.items() if key not in {"SECRET_KEY", "SECRET_KEY_FILE"}}
    env.update(PORTAL_REQUIRE_SECRET_KEY="1", PORTAL_VAR_DIR=str(tmp_path))
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode != 0 and "SECRET_KEY" in result.stderr


@pytest.mark.django_db
def test_uploads_are_rate_limited_per_user_on_the_api_and_the_form_alike(people, api, client, settings):
    from django.core.files.uploadedfile import SimpleUploadedFile

    rates = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {**rates, "uploads": "2/hour"}}
    from rest_framework.settings import api_settings
    from rest_framework.throttling import SimpleRateThrottle

    api_settings.reload()
    SimpleRateThrottle.THROTTLE_RATES = api_settings.DEFAULT_THROTTLE_RATES
    try:
        carol = api(people.carol)
        for _ in range(2):  # bad files still count as attempts: nothing is stored for them
            assert (
                carol.post(
                    "/api/v1/scans/",
                    {"patient": people.patient.id, "image": SimpleUploadedFile("x.jpg", b"nope", "image/jpeg")},
                    format="multipart",
                ).status_code
                == 400
            )
        refused = carol.post(
            "/api/v1/scans/",
            {"patient": people.patient.id, "image": SimpleUploadedFile("x.jpg", b"nope", "image/jpeg")},
            format="multipart",
        )
        assert refused.status_code == 429
        assert carol.get("/api/v1/scans/").status_code == 200  # reading is not limited
        client.force_login(people.carol)
        form = client.post(
            "/scans/new/", {"patient": people.patient.id, "image": SimpleUploadedFile("x.jpg", b"nope", "image/jpeg")}
        )
        assert form.status_code == 429 and "Too many uploads" in form.content.decode()
        client.force_login(people.alice)  # another user has a count of their own
        assert (
            client.post(
                "/scans/new/",
                {"patient": people.patient.id, "image": SimpleUploadedFile("x.jpg", b"nope", "image/jpeg")},
            ).status_code
            == 400
        )
    finally:
        SimpleRateThrottle.THROTTLE_RATES = rates


@pytest.mark.django_db
def test_an_absurd_id_in_the_url_is_a_404_that_touches_no_patient(people, api):
    # Ids past 64 bits match no route (portal.ids.IdConverter): no patient was read, nothing to audit.
    response = api(people.alice).get("/api/v1/patients/99999999999999999999/")
    assert response.status_code == 404
    assert not AuditEvent.objects.exists()
    api(people.alice).get("/api/v1/patients/9223372036854775807/")  # the largest id: routed, audited
    assert AuditEvent.objects.get().object_id == "9223372036854775807"


def test_a_long_file_kind_in_the_url_is_a_404_and_still_audited(people, api):
    """The kind is whatever the URL says: one longer than the audit's action column (a fuzzer's long
    unicode kind was a 500 on PostgreSQL) is refused with 404 and recorded, cut to fit."""
    from tests import factories

    scan = factories.ScanFactory(patient=people.patient)
    kind = "\U000d5e22\U000632deg\xb8d~" * 4
    response = api(people.alice).get(f"/api/v1/scans/{scan.id}/{kind}/")
    assert response.status_code == 404
    row = AuditEvent.objects.get()
    assert (row.action, row.status_code, row.patient_id) == (f"download {kind}"[:20], 404, people.patient.id)


@pytest.fixture
def postgres_only():
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("the append-only trigger exists on PostgreSQL (CI's database: .ci/run)")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE portal_auditevent SET action = 'nothing to see' WHERE id = %s",
        "UPDATE portal_auditevent SET user_id = NULL, username = '' WHERE id = %s",
        "DELETE FROM portal_auditevent WHERE id = %s",
    ],
    ids=["rewrite", "erase-who", "delete"],
)
def test_the_database_itself_refuses_to_change_the_audit_trail(people, api, postgres_only, sql):
    from django.db import DatabaseError, connection, transaction

    api(people.alice).get("/api/v1/scans/")
    event = AuditEvent.objects.get()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, [event.id])
    assert AuditEvent.objects.filter(id=event.id, action="list", username="alice").exists()


@pytest.mark.django_db
def test_deleting_an_account_keeps_its_audit_rows_under_its_name(people, api, postgres_only):
    api(people.alice).get("/api/v1/scans/")
    people.alice.delete()
    event = AuditEvent.objects.get()
    assert event.user_id is None and event.username == "alice"
