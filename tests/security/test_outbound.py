"""Server-side request forgery: a push endpoint (chosen by whoever registers a device) and the FHIR
endpoint reach only where they belong (portal/outbound.py). Every address form tried in the attack."""

from __future__ import annotations

import socket

import pytest
from requests_hardened.ip_filter import InvalidIPAddress

from alerts.models import PushSubscription
from alerts.notify import notify_alert
from portal.outbound import guarded_session, push_endpoint_problem
from tests import factories

pytestmark = pytest.mark.django_db

FCM = "https://fcm.googleapis.com/fcm/send/device-token"


@pytest.fixture
def no_loopback(settings):
    settings.OUTBOUND_ALLOW_LOOPBACK = False


@pytest.fixture
def dns(monkeypatch):
    """A resolver for the names below (no network here): names map to the addresses given."""
    names = {"fcm.googleapis.com": "142.250.74.42", "updates.push.services.mozilla.com": "34.117.59.81"}
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        host = host.rstrip(".").lower()
        if host in names:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (names[host], port or 443))]
        if host == "localhost":
            return real("127.0.0.1", port, *args, **kwargs)
        raise socket.gaierror(f"no such name: {host}")

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return names


REFUSED = [
    "http://127.0.0.1/x",
    "https://127.0.0.1/x",
    "https://127.1/x",
    "https://2130706433/x",  # decimal
    "https://0177.0.0.1/x",  # octal
    "https://0x7f.0.0.1/x",  # hex
    "https://0x7f000001/x",
    "https://[::1]/x",
    "https://[::ffff:127.0.0.1]/x",  # IPv6-mapped
    "https://[::ffff:7f00:1]/x",
    "https://localhost/x",
    "https://localhost./x",
    "https://LOCALHOST/x",
    "https://169.254.169.254/latest/meta-data/",  # the cloud's metadata service
    "https://[fe80::1]/x",
    "https://10.0.0.5/x",
    "https://192.168.1.1/x",
    "https://0.0.0.0/x",
    "https://fcm.googleapis.com@127.0.0.1/x",  # userinfo: the host is 127.0.0.1
    "https://user:pw@fcm.googleapis.com/fcm/send/x",
    "http://fcm.googleapis.com/fcm/send/x",  # not https
    "ftp://fcm.googleapis.com/fcm/send/x",
    "https://evil.example/x",  # not a push service
    "https://fcm.googleapis.com.evil.example/x",
    "https://notfcm.googleapis.com.evil/x",
]


@pytest.mark.parametrize("url", REFUSED)
def test_an_endpoint_that_is_not_a_public_push_service_is_refused(url, no_loopback, dns):
    assert push_endpoint_problem(url) is not None


@pytest.mark.parametrize("url", [FCM, "https://updates.push.services.mozilla.com/wpush/v2/abc"])
def test_the_browsers_push_services_are_accepted(url, no_loopback, dns):
    assert push_endpoint_problem(url) is None


def test_with_any_host_allowed_a_name_that_resolves_inside_is_still_refused(no_loopback, dns, settings):
    settings.PUSH_ALLOWED_HOSTS = ["*"]
    dns["rebind.example"] = "10.1.2.3"
    dns["fine.example"] = "198.51.100.20"  # documentation range: not global either
    dns["public.example"] = "8.8.8.8"
    assert "not public" in push_endpoint_problem("https://rebind.example/x")
    assert "not public" in push_endpoint_problem("https://localhost/x")
    assert "not public" in push_endpoint_problem("https://fine.example/x")
    assert push_endpoint_problem("https://public.example/x") is None


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/x", "https://localhost/x", "https://169.254.169.254/x"])
def test_the_api_refuses_such_an_endpoint_and_saves_nothing(api, people, settings, no_loopback, dns, url):
    settings.VAPID_PRIVATE_KEY, settings.VAPID_PUBLIC_KEY = "private-key-for-tests", "public-key-for-tests"
    response = api(people.alice).post(
        "/api/v1/push/subscription/", {"endpoint": url, "keys": {"p256dh": "k", "auth": "a"}}, format="json"
    )
    assert response.status_code == 400 and "endpoint" in response.json()
    assert not PushSubscription.objects.exists()


def test_posting_another_users_endpoint_leaves_theirs_alone(api, people, settings, dns):
    settings.VAPID_PRIVATE_KEY, settings.VAPID_PUBLIC_KEY = "private-key-for-tests", "public-key-for-tests"
    body = {"endpoint": FCM, "keys": {"p256dh": "alice-key", "auth": "alice-auth"}}
    assert api(people.alice).post("/api/v1/push/subscription/", body, format="json").status_code == 201
    taken = {"endpoint": FCM, "keys": {"p256dh": "bob-key", "auth": "bob-auth"}}
    assert api(people.bob).post("/api/v1/push/subscription/", taken, format="json").status_code == 201
    alices = PushSubscription.objects.get(user=people.alice)
    assert (alices.endpoint, alices.p256dh, alices.auth) == (FCM, "alice-key", "alice-auth")
    assert PushSubscription.objects.get(user=people.bob).p256dh == "bob-key"
    # Bob deleting "his" device removes only his row.
    api(people.bob).delete("/api/v1/push/subscription/", {"endpoint": FCM}, format="json")
    assert list(PushSubscription.objects.values_list("user__username", flat=True)) == ["alice"]


def test_the_send_connects_only_to_a_checked_address(no_loopback):
    """At send time the address is checked as the connection is made (requests-hardened): a name
    that resolved outside when saved and inside now (DNS rebinding) reaches nothing."""
    from tests.notify_sinks import PushService

    with PushService() as service, pytest.raises(InvalidIPAddress):
        guarded_session().post(service.url + "/x", data=b"{}", timeout=5)
    assert service.received == []


def test_a_push_is_never_redirected(people, settings, in_memory_channels, eager_celery):
    """The attack: a 307 was followed as a POST, a 302 as a GET to a path the attacker chose."""
    from alerts.services import alert_raise
    from tests.notify_sinks import Device, PushService

    with PushService() as service:
        settings.VAPID_PRIVATE_KEY, settings.VAPID_PUBLIC_KEY = service.private_key, service.public_key
        device = Device(people.alice, service, "redirect")
        result = factories.ScanResultFactory(scan__patient=people.patient)
        alert = alert_raise(scan=result.scan, result=result)
        notify_alert(alert.id, 0)
    paths = [request.path for request in service.received]
    assert device.path in paths and not [path for path in paths if path.startswith("/landed/")]


def test_a_subscription_saved_before_the_check_is_dropped_not_sent_to(people, settings, no_loopback, caplog):
    from alerts.notify import _push

    subscription = PushSubscription.objects.create(
        user=people.alice, endpoint="http://169.254.169.254/latest/meta-data/", p256dh="k", auth="a"
    )
    assert _push(subscription, {"title": "t"}) == "gone"
    assert "refused and dropped" in caplog.text


def test_a_fhir_send_follows_no_redirect_and_reaches_only_checked_addresses(settings, people, no_loopback):
    from scans.fhir_push import FhirPushFailed, fhir_push_send
    from scans.models import FhirPush
    from tests.fhir_server import RecordingFhirServer
    from tests.scans.test_fhir import finished_scan

    with RecordingFhirServer() as server:
        settings.FHIR_ENDPOINT = server.url
        push = FhirPush.objects.create(result=finished_scan(people.patient))
        with pytest.raises(FhirPushFailed):  # loopback is not where results go
            fhir_push_send(push_id=push.id)
        assert server.received == []
        settings.FHIR_ALLOW_PRIVATE_NETWORK = True  # a hospital's own server, named by its operator
        assert fhir_push_send(push_id=push.id) == "sent"
    assert len(server.received) == 1


def test_admins_see_and_delete_push_subscriptions(client, people):
    subscription = PushSubscription.objects.create(user=people.alice, endpoint=FCM, p256dh="k", auth="a")
    client.force_login(factories.UserFactory(username="root", is_staff=True, is_superuser=True))
    page = client.get("/admin/alerts/pushsubscription/").content.decode()
    assert "fcm.googleapis.com" in page and "alice" in page
    response = client.post(
        "/admin/alerts/pushsubscription/",
        {"action": "delete_selected", "_selected_action": [subscription.id], "post": "yes"},
    )
    assert response.status_code == 302 and not PushSubscription.objects.exists()
