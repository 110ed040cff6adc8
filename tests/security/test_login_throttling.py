"""Password guessing, as the security review did it, against the one login policy (portal/auth.py):
the token endpoint, the dashboard login and the admin login."""

from __future__ import annotations

import pytest
from django.core import mail
from django.test import override_settings
from rest_framework.test import APIClient

from portal.auth import client_ip

pytestmark = pytest.mark.django_db

RIGHT = "correct horse battery"


@pytest.fixture
def attacker() -> str:
    """An address of the attacker's own, not the test client's 127.0.0.1."""
    import secrets

    return f"2001:db8::{secrets.token_hex(2)}:{secrets.token_hex(2)}"


def token(client: APIClient, username: str, password: str, **headers):
    return client.post("/api/v1/auth/token/", {"username": username, "password": password}, **headers)


def test_inventing_a_new_forwarded_address_per_guess_does_not_dodge_the_token_endpoints_lock(people, attacker):
    client = APIClient(REMOTE_ADDR=attacker)
    answers = [token(client, "alice", f"guess-{n}", HTTP_X_FORWARDED_FOR=f"203.0.113.{n}") for n in range(60)]
    # The fifth wrong password is the one that locks: it is answered 429 already.
    assert [a.status_code for a in answers[:4]] == [400] * 4
    assert {a.status_code for a in answers[4:]} == {429}
    assert "Too many failed attempts" in answers[4].json()["detail"]  # the lock, before any request rate
    locked = token(client, "alice", RIGHT, HTTP_X_FORWARDED_FOR="198.51.100.7")
    assert locked.status_code == 429 and "token" not in locked.json()


def test_a_clinician_locked_out_of_the_dashboard_gets_no_token_either(client, people, attacker):
    for _ in range(5):
        client.post("/login/", {"username": "alice", "password": "wrong"}, REMOTE_ADDR=attacker)
    assert client.post("/login/", {"username": "alice", "password": RIGHT}, REMOTE_ADDR=attacker).status_code == 429
    refused = token(APIClient(REMOTE_ADDR=attacker), "alice", RIGHT)
    assert refused.status_code == 429 and "Too many failed attempts" in refused.json()["detail"]


def test_the_admin_login_is_locked_too_and_counts_towards_the_same_lock(client, django_user_model, people):
    django_user_model.objects.create_superuser("root", "root@example.org", RIGHT)
    for _ in range(30):
        client.post("/admin/login/", {"username": "root", "password": "wrong"})
    refused = client.post("/admin/login/", {"username": "root", "password": RIGHT})
    assert refused.status_code == 429
    assert "_auth_user_id" not in client.session
    assert client.post("/login/", {"username": "root", "password": RIGHT}).status_code == 429


def test_a_fullwidth_or_capital_letter_in_the_username_counts_against_the_same_account(client, people):
    for typed in ("ａlice", "ALICE", "Alice", "alice", "ａｌｉｃｅ"):
        client.post("/login/", {"username": typed, "password": "wrong"})
    assert client.post("/login/", {"username": "alice", "password": RIGHT}).status_code == 429


def test_a_stranger_cannot_lock_a_clinician_out_from_another_address(client, people):
    for _ in range(10):
        client.post("/login/", {"username": "alice", "password": "wrong"}, REMOTE_ADDR="203.0.113.9")
    assert (
        client.post("/login/", {"username": "alice", "password": RIGHT}, REMOTE_ADDR="203.0.113.9").status_code == 429
    )
    ward = client.post("/login/", {"username": "alice", "password": RIGHT}, REMOTE_ADDR="10.1.2.3")
    assert ward.status_code == 302


@override_settings(LOGIN_FAILURES_PER_ACCOUNT=20, ADMINS=[("On call", "oncall@example.org")])
def test_a_sustained_attack_from_many_addresses_locks_the_account_and_alerts_the_admins(client, people):
    for n in range(20):
        client.post("/login/", {"username": "alice", "password": "wrong"}, REMOTE_ADDR=f"203.0.113.{n}")
    assert client.post("/login/", {"username": "alice", "password": RIGHT}, REMOTE_ADDR="10.1.2.3").status_code == 429
    assert [message.subject for message in mail.outbox] == ["[Django] Sustained password guessing"]
    assert "'alice'" in mail.outbox[0].body


def test_a_right_password_below_the_limit_logs_in_and_clears_the_count(client, people):
    for _ in range(4):
        client.post("/login/", {"username": "alice", "password": "wrong"})
    assert client.post("/login/", {"username": "alice", "password": RIGHT}).status_code == 302
    client.logout()
    for _ in range(4):
        client.post("/login/", {"username": "alice", "password": "wrong"})
    assert client.post("/login/", {"username": "alice", "password": RIGHT}).status_code == 302


class FakeRequest:
    def __init__(self, peer: str, forwarded: str | None = None):
        self.META = {"REMOTE_ADDR": peer}
        if forwarded is not None:
            self.META["HTTP_X_FORWARDED_FOR"] = forwarded


def test_forwarded_addresses_are_believed_only_from_a_trusted_proxy(settings):
    import ipaddress

    settings.TRUSTED_PROXY_NETWORKS = [ipaddress.ip_network("172.18.0.0/16")]
    assert client_ip(FakeRequest("203.0.113.5", "1.2.3.4")) == "203.0.113.5"  # straight to the portal
    assert client_ip(FakeRequest("172.18.0.3", "1.2.3.4")) == "1.2.3.4"  # through the proxy
    # The client's own header comes first; the proxy appends what it saw: that is the one to believe.
    assert client_ip(FakeRequest("172.18.0.3", "6.6.6.6, 198.51.100.2")) == "198.51.100.2"
    assert client_ip(FakeRequest("172.18.0.3", "198.51.100.2, 172.18.0.9")) == "198.51.100.2"
    assert client_ip(FakeRequest("172.18.0.3", "not-an-address")) == "172.18.0.3"
    assert client_ip(FakeRequest("172.18.0.3")) == "172.18.0.3"


def test_the_upload_throttle_counts_by_the_same_real_address(settings):
    from portal.throttling import FailOpenScopedRateThrottle

    settings.TRUSTED_PROXY_NETWORKS = []
    assert FailOpenScopedRateThrottle().get_ident(FakeRequest("203.0.113.5", "1.2.3.4")) == "203.0.113.5"
