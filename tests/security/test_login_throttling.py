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


def test_a_stranger_cannot_lock_a_clinician_out_from_another_address(client, people, pauses):
    for _ in range(10):
        client.post("/login/", {"username": "alice", "password": "wrong"}, REMOTE_ADDR="203.0.113.9")
    assert (
        client.post("/login/", {"username": "alice", "password": RIGHT}, REMOTE_ADDR="203.0.113.9").status_code == 429
    )
    ward = client.post("/login/", {"username": "alice", "password": RIGHT}, REMOTE_ADDR="10.1.2.3")
    assert ward.status_code == 302


@pytest.fixture
def pauses(monkeypatch) -> list[float]:
    """The slowdown's waits, recorded instead of slept."""
    waited: list[float] = []
    monkeypatch.setattr("portal.auth.time.sleep", waited.append)
    return waited


@override_settings(LOGIN_FAILURES_PER_ACCOUNT=20, ADMINS=[("On call", "oncall@example.org")])
def test_an_attack_from_many_addresses_cannot_lock_the_clinician_out_and_alerts_the_admins(client, people, pauses):
    """The attack: 55 failures from 11 addresses locked alice everywhere, the right password then
    refused from fresh addresses. Now the attack is slowed and alice, on the ward, signs in."""
    for n in range(55):
        client.post("/login/", {"username": "alice", "password": "wrong"}, REMOTE_ADDR=f"203.0.113.{n % 11}")
    ward = client.post("/login/", {"username": "alice", "password": RIGHT}, REMOTE_ADDR="10.1.2.3")
    assert ward.status_code == 302 and client.session["_auth_user_id"] == str(people.alice.id)
    assert [message.subject for message in mail.outbox] == ["[Django] Sustained password guessing"]
    assert "'alice'" in mail.outbox[0].body and "not locked" in mail.outbox[0].body
    token_from_phone = token(APIClient(REMOTE_ADDR="198.51.100.77"), "alice", RIGHT)
    assert token_from_phone.status_code == 200  # and from her phone's network


@override_settings(LOGIN_SLOWDOWN_AFTER=10, LOGIN_SLOWDOWN_MAX_SECONDS=4.0)
def test_guessing_an_account_from_many_addresses_gets_slower_and_slower(client, people, pauses):
    for n in range(20):
        client.post("/login/", {"username": "ALICE", "password": "wrong"}, REMOTE_ADDR=f"203.0.113.{n}")
    # The first 10 failures cost nothing; then 0.25 s, doubling, capped at 4 s.
    assert pauses == [0.25, 0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0]
    bob = client.post("/login/", {"username": "bob", "password": RIGHT}, REMOTE_ADDR="203.0.113.1")
    assert bob.status_code == 302 and len(pauses) == 10  # another account is not slowed


@pytest.mark.parametrize("path", ["/login/", "/admin/login/"])
def test_one_password_tried_on_many_accounts_from_one_address_is_limited(client, people, path, settings):
    """The attack: 40 usernames with one password from one address were all processed on the web forms."""
    answers = [
        client.post(path, {"username": f"user{n}", "password": "Summer2026!"}, REMOTE_ADDR="203.0.113.50")
        for n in range(25)
    ]
    codes = [answer.status_code for answer in answers]
    assert codes[:20] == [200] * 20 and set(codes[20:]) == {429}
    assert "from this network address" in answers[-1].content.decode()
    someone = "triage" if path.startswith("/admin/") else "alice"  # the admin signs in staff only
    elsewhere = client.post(path, {"username": someone, "password": RIGHT}, REMOTE_ADDR="10.1.2.3")
    assert elsewhere.status_code == 302  # another address is not limited


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
