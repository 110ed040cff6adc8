"""Credentials that end (portal/credentials.py), tried as the security review did: a token used after
it should have ended, after log-out, after the account was deactivated or its password changed; a
session left open on a ward computer."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from knox.models import AuthToken
from qsessions.models import Session
from rest_framework.test import APIClient

from portal.credentials import ACTIVE_AT, BACKGROUND_HEADER, SIGNED_IN_AT, issue_token

pytestmark = pytest.mark.django_db

RIGHT = "correct horse battery"


def with_token(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def signed_in_browser(user) -> Client:
    browser = Client()
    browser.force_login(user)
    return browser


def test_a_token_from_the_login_endpoint_expires(people, settings):
    login = APIClient().post("/api/v1/auth/token/", {"username": "alice", "password": RIGHT})
    token = login.json()["token"]
    expiry = AuthToken.objects.get(user=people.alice).expiry
    assert (
        timedelta(hours=settings.API_TOKEN_IDLE_HOURS - 1)
        < expiry - timezone.now()
        <= timedelta(hours=settings.API_TOKEN_IDLE_HOURS)
    )
    assert with_token(token).get("/api/v1/patients/").status_code == 200
    AuthToken.objects.filter(user=people.alice).update(expiry=timezone.now() - timedelta(seconds=1))
    assert with_token(token).get("/api/v1/patients/").status_code == 401
    assert not AuthToken.objects.filter(user=people.alice).exists()  # and it is gone


def test_using_a_token_extends_it_but_never_past_the_maximum_lifetime(people, settings):
    instance, token = issue_token(people.alice)
    signed_in_long_ago = timezone.now() - timedelta(days=settings.API_TOKEN_MAX_DAYS) + timedelta(minutes=5)
    AuthToken.objects.filter(pk=instance.pk).update(
        created=signed_in_long_ago, expiry=timezone.now() + timedelta(minutes=1)
    )
    assert with_token(token).get("/api/v1/patients/").status_code == 200
    extended = AuthToken.objects.get(pk=instance.pk).expiry
    assert extended == signed_in_long_ago + timedelta(days=settings.API_TOKEN_MAX_DAYS)  # extended, to the cap only


def test_logging_out_ends_that_token_and_logging_out_everywhere_ends_them_all(people):
    _, phone = issue_token(people.alice)
    _, tablet = issue_token(people.alice)
    assert with_token(phone).post("/api/v1/auth/logout/").status_code == 204
    assert with_token(phone).get("/api/v1/patients/").status_code == 401
    assert with_token(tablet).get("/api/v1/patients/").status_code == 200
    _, laptop = issue_token(people.alice)
    assert with_token(laptop).post("/api/v1/auth/logout-all/").status_code == 204
    assert with_token(tablet).get("/api/v1/patients/").status_code == 401
    assert not AuthToken.objects.filter(user=people.alice).exists()


def test_tokens_are_stored_only_as_hashes(people):
    _, token = issue_token(people.alice)
    row = AuthToken.objects.get(user=people.alice)
    assert token not in row.digest and len(row.digest) == 128


def test_signing_in_again_and_again_keeps_only_the_newest_tokens(people):
    from portal.credentials import API_TOKENS_PER_USER

    tokens = [issue_token(people.alice)[1] for _ in range(API_TOKENS_PER_USER + 2)]
    assert AuthToken.objects.filter(user=people.alice).count() == API_TOKENS_PER_USER
    assert with_token(tokens[0]).get("/api/v1/patients/").status_code == 401
    assert with_token(tokens[-1]).get("/api/v1/patients/").status_code == 200


@pytest.mark.parametrize("change", ["deactivate", "new-password"])
def test_deactivation_or_a_new_password_ends_every_token_and_session(people, change):
    _, token = issue_token(people.alice)
    browser = signed_in_browser(people.alice)
    assert browser.get("/").status_code == 200
    assert Session.objects.filter(user=people.alice).count() == 1
    if change == "deactivate":
        people.alice.is_active = False
    else:
        people.alice.set_password("a brand new passphrase")
    people.alice.save()
    assert not AuthToken.objects.filter(user=people.alice).exists()
    assert not Session.objects.filter(user=people.alice).exists()
    assert with_token(token).get("/api/v1/patients/").status_code == 401
    assert browser.get("/").status_code == 302  # back to the login page


def test_saving_a_user_without_changing_rights_keeps_their_credentials(people):
    _, token = issue_token(people.alice)
    people.alice.first_name = "Alicia"
    people.alice.save()
    assert with_token(token).get("/api/v1/patients/").status_code == 200


def test_an_admin_changing_their_own_password_stays_signed_in_there_only(people):
    people.triage.is_superuser = True
    people.triage.save()
    admin = signed_in_browser(people.triage)
    other_browser = signed_in_browser(people.triage)
    _, token = issue_token(people.triage)
    changed = admin.post(
        f"/admin/auth/user/{people.triage.id}/password/",
        {"password1": "another long passphrase", "password2": "another long passphrase", "usable_password": "true"},
    )
    assert changed.status_code == 302
    assert admin.get("/admin/").status_code == 200
    assert other_browser.get("/admin/").status_code == 302
    assert with_token(token).get("/api/v1/patients/").status_code == 401


def test_admins_see_a_users_tokens_and_sessions_and_sign_them_out_everywhere(people):
    people.triage.is_superuser = True
    people.triage.save()
    admin = signed_in_browser(people.triage)
    _, token = issue_token(people.alice)
    browser = signed_in_browser(people.alice)
    browser.get("/", HTTP_USER_AGENT="WardPC/1.0")
    page = admin.get(f"/admin/auth/user/{people.alice.id}/change/").content.decode()
    assert "API tokens" in page and token[:15] in page  # the key prefix, never the token
    assert "Browser sessions" in page and "WardPC/1.0" in page
    assert admin.get("/admin/knox/authtoken/").status_code == 200
    assert admin.get("/admin/qsessions/session/").status_code == 200
    done = admin.post(
        "/admin/auth/user/", {"action": "sign_out_everywhere", "_selected_action": [people.alice.id]}, follow=True
    )
    assert "Ended 1 API tokens and 1 sessions of 1 users." in done.content.decode()
    assert with_token(token).get("/api/v1/patients/").status_code == 401
    assert browser.get("/").status_code == 302


def _age_session(browser: Client, *, idle_for: float, signed_in_for: float) -> None:
    session = browser.session
    now = time.time()
    session[SIGNED_IN_AT] = now - signed_in_for
    session[ACTIVE_AT] = now - idle_for
    session.save()


def test_a_session_ends_after_the_idle_timeout(people, settings):
    browser = signed_in_browser(people.alice)
    _age_session(browser, idle_for=settings.SESSION_IDLE_MINUTES * 60 - 30, signed_in_for=3600)
    assert browser.get("/").status_code == 200  # still inside: and that request counts as activity
    _age_session(browser, idle_for=settings.SESSION_IDLE_MINUTES * 60 + 1, signed_in_for=3600)
    response = browser.get("/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert not Session.objects.filter(user=people.alice).exists()


def test_the_dashboards_own_background_requests_do_not_keep_a_session_alive(people, settings):
    browser = signed_in_browser(people.alice)
    _age_session(browser, idle_for=settings.SESSION_IDLE_MINUTES * 60 - 120, signed_in_for=3600)
    before = browser.session[ACTIVE_AT]
    assert browser.get("/api/v1/alerts/", headers={BACKGROUND_HEADER: "1"}).status_code == 200
    assert browser.session[ACTIVE_AT] == before
    assert browser.get("/alerts/").status_code == 200  # a page the person opened
    assert browser.session[ACTIVE_AT] > before + 60


def test_a_session_ends_at_its_maximum_lifetime_however_active(people, settings):
    browser = signed_in_browser(people.alice)
    _age_session(browser, idle_for=5, signed_in_for=settings.SESSION_MAX_HOURS * 3600 + 1)
    assert browser.get("/").status_code == 302


def test_a_web_login_records_the_real_client_address_and_sets_the_lifetime(people, settings):
    settings.TRUSTED_PROXY_NETWORKS = []
    browser = Client(REMOTE_ADDR="192.0.2.44")
    assert browser.post("/login/", {"username": "alice", "password": RIGHT}).status_code == 302
    session = Session.objects.get(user=people.alice)
    assert session.ip == "192.0.2.44"
    assert abs(browser.session[SIGNED_IN_AT] - time.time()) < 60


def test_an_api_token_login_signs_no_browser_in(people):
    APIClient().post("/api/v1/auth/token/", {"username": "alice", "password": RIGHT})
    assert not Session.objects.filter(user__isnull=False).exists()  # (axes keeps an anonymous one for its log)
