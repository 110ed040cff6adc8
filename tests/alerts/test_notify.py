"""Escalation that reaches people (alerts/notify.py): each tier calls people not called before, by Web
Push (to a real HTTP push endpoint here, which decrypts what it receives with the device's keys) and
by e-mail (to a real SMTP server, aiosmtpd). Neither names the patient."""

from __future__ import annotations

import json
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.utils import timezone

from alerts.models import Alert, AlertEvent, PushSubscription
from alerts.notify import tier_recipients
from alerts.services import alert_escalate_overdue, alert_raise
from tests import factories
from tests.notify_sinks import Device, Mailbox, PushService

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("in_memory_channels", "eager_celery")]


@pytest.fixture
def mailbox(settings):
    with Mailbox() as inbox:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", inbox.port
        yield inbox


@pytest.fixture
def push_service(settings):
    with PushService() as service:
        settings.VAPID_PRIVATE_KEY, settings.VAPID_PUBLIC_KEY = service.private_key, service.public_key
        yield service


@pytest.fixture
def team(people):
    """Maria's care team: mo (a member), alice (its lead); the triage desk above them."""
    mo = factories.UserFactory(username="mo", email="mo@example.org")
    factories.add_to_team(factories.PhysicianFactory(user=mo, full_name="Dr Mo"), people.team)
    for user, address in (
        (people.alice, "alice@example.org"),
        (people.triage, "triage@example.org"),
        (people.carol, "carol@example.org"),
    ):
        user.email = address
        user.save()
    return SimpleNamespace(mo=mo, alice=people.alice, triage=people.triage)


def raise_alert(people, django_capture_on_commit_callbacks, now=None) -> Alert:
    result = factories.ScanResultFactory(scan__patient=people.patient, severity="moderate")
    with django_capture_on_commit_callbacks(execute=True):
        return alert_raise(scan=result.scan, result=result, now=now)


def test_each_tier_calls_people_who_were_not_called_before(people, team):
    result = factories.ScanResultFactory(scan__patient=people.patient)
    alert = alert_raise(scan=result.scan, result=result)
    assert [tier_recipients(alert, level) for level in range(3)] == [[team.mo], [team.alice], [team.triage]]


def test_a_new_alert_is_pushed_and_mailed_to_the_care_team_without_naming_the_patient(
    people, team, push_service, mailbox, django_capture_on_commit_callbacks
):
    phone, laptop = Device(team.mo, push_service, "mo-phone"), Device(team.mo, push_service, "mo-laptop")
    lead = Device(team.alice, push_service, "alice-phone")
    alert = raise_alert(people, django_capture_on_commit_callbacks)

    for device in (phone, laptop):
        [pushed] = device.messages()
        assert pushed["title"] == f"Facial paralysis alert #{alert.id}" and pushed["tag"] == f"alert-{alert.id}"
        assert pushed["url"].endswith(f"/alerts/#alert-{alert.id}")
    assert lead.messages() == []  # the lead is called only if the care team does not claim it in time
    assert [to for to, _ in mailbox.messages] == [["mo@example.org"]]
    _, mail = mailbox.messages[0]
    assert mail["Subject"] == f"Facial paralysis alert #{alert.id}"
    everything = json.dumps(phone.messages()) + mail.as_string()
    for secret in (people.patient.full_name, people.patient.mrn, "Maria", "Santos"):
        assert secret not in everything
    assert "not a diagnosis" in mail.as_string()
    notified = AlertEvent.objects.get(alert=alert, kind=AlertEvent.Kind.NOTIFIED)
    assert "mo" in notified.note and "2 push, 1 e-mail" in notified.note
    # VAPID: the push service can tell who sends (a signed JWT for its own origin).
    assert push_service.received[0].headers["authorization"].startswith("vapid t=")


def test_escalation_calls_the_lead_then_the_triage_desk(
    people, team, push_service, mailbox, django_capture_on_commit_callbacks, settings
):
    settings.ALERT_ACK_DEADLINE_MINUTES = {"urgent": 5, "severe": 5, "moderate": 15, "mild": 30, "none": 60}
    member, lead, desk = (Device(user, push_service, user.username) for user in (team.mo, team.alice, team.triage))
    now = timezone.now()
    raise_alert(people, django_capture_on_commit_callbacks, now=now)
    with django_capture_on_commit_callbacks(execute=True):
        alert_escalate_overdue(now=now + timedelta(minutes=16))
    assert len(member.messages()) == 1 and len(lead.messages()) == 1 and desk.messages() == []
    assert "escalated to the lead physician" in lead.messages()[0]["body"]
    with django_capture_on_commit_callbacks(execute=True):
        alert_escalate_overdue(now=now + timedelta(minutes=32))
    assert [len(d.messages()) for d in (member, lead, desk)] == [1, 1, 1]
    assert "escalated to the triage desk" in desk.messages()[0]["body"]
    assert sorted(to[0] for to, _ in mailbox.messages) == ["alice@example.org", "mo@example.org", "triage@example.org"]
    assert "carol@example.org" not in str(mailbox.messages)  # caregivers are informed on the dashboard, not called


def test_a_claimed_alert_calls_nobody_more(people, team, push_service, mailbox, django_capture_on_commit_callbacks):
    from alerts.notify import notify_alert
    from alerts.services import alert_acknowledge

    lead = Device(team.alice, push_service, "lead")
    alert = raise_alert(people, django_capture_on_commit_callbacks)
    alert_acknowledge(alert_id=alert.id, user=team.mo, source="api")
    Alert.objects.filter(id=alert.id).update(escalation_level=1)
    assert notify_alert(alert.id, 1) == {"pushed": 0, "mailed": 0, "people": 0}
    assert lead.messages() == []


def test_a_subscription_the_push_service_calls_gone_is_forgotten(
    people, team, push_service, django_capture_on_commit_callbacks
):
    gone = Device(team.mo, push_service, "gone")
    raise_alert(people, django_capture_on_commit_callbacks)
    assert not PushSubscription.objects.filter(id=gone.subscription.id).exists()


def test_a_device_subscribes_and_unsubscribes_through_the_api(people, api, push_service, settings):
    alice = api(people.alice)
    assert alice.get("/api/v1/push/subscription/").json() == {"public_key": settings.VAPID_PUBLIC_KEY}
    body = {"endpoint": "https://fcm.googleapis.com/fcm/send/abc", "keys": {"p256dh": "BPx", "auth": "xyz"}}
    assert alice.post("/api/v1/push/subscription/", body, format="json").status_code == 201
    assert PushSubscription.objects.get().user == people.alice
    assert alice.post("/api/v1/push/subscription/", {"endpoint": "https://x.org/"}, format="json").status_code == 400
    assert (
        api(people.bob).delete("/api/v1/push/subscription/", {"endpoint": body["endpoint"]}, format="json").status_code
        == 204
    )
    assert PushSubscription.objects.exists()  # only its own user can remove it
    assert alice.delete("/api/v1/push/subscription/", {"endpoint": body["endpoint"]}, format="json").status_code == 204
    assert not PushSubscription.objects.exists()
    assert api(None).post("/api/v1/push/subscription/", body, format="json").status_code == 401


def test_without_vapid_keys_push_is_off_and_says_so(people, api, client, settings):
    settings.VAPID_PRIVATE_KEY = settings.VAPID_PUBLIC_KEY = ""
    answer = api(people.alice).get("/api/v1/push/subscription/")
    assert answer.status_code == 503 and "not set up" in answer.json()["detail"]
    client.force_login(people.alice)
    assert 'id="push-subscribe"' not in client.get("/alerts/").content.decode()


def test_the_service_worker_is_served_from_the_root(client, push_service, people):
    worker = client.get("/sw.js")
    assert worker.status_code == 200 and worker["Content-Type"] == "application/javascript"
    assert b"showNotification" in worker.content
    client.force_login(people.alice)
    assert 'id="push-subscribe"' in client.get("/alerts/").content.decode()


def test_pushes_that_never_answer_cost_one_deadline_not_the_other_calls(
    people, team, push_service, mailbox, settings, django_capture_on_commit_callbacks
):
    """20 push endpoints that never answer (a listener holding each request open) beside a working phone:
    the call is made to all of them at once, ends at its deadline, and the phone and the mailbox still
    get theirs. Made one by one with a 10 s timeout each (the old loop), this call took 200 s."""
    settings.NOTIFY_PUSH_TIMEOUT_SECONDS, settings.NOTIFY_DEADLINE_SECONDS = 30, 2
    for index in range(20):
        Device(team.mo, push_service, f"hang/{index}")
    phone = Device(team.mo, push_service, "phone")
    alert = raise_alert(people, django_capture_on_commit_callbacks)

    assert push_service.hung == 20 and push_service.hanging == 20  # all asked at once, none answered yet
    [pushed] = phone.messages()
    assert pushed["title"].endswith(f"#{alert.id}")
    assert any("mo@example.org" in to for to, _ in mailbox.messages)
    note = AlertEvent.objects.get(alert=alert, kind=AlertEvent.Kind.NOTIFIED).note
    assert "1 push, 1 e-mail, 20 unanswered by the deadline" in note


def test_the_tasks_soft_time_limit_is_not_swallowed(people, team, push_service, settings):
    """Celery ends a task past its soft time limit by raising SoftTimeLimitExceeded in it (a signal, in
    the task's thread): a call waiting on a push service that hangs must let it through, so the worker
    records the task as timed out instead of a call that went well."""
    import signal

    from celery.exceptions import SoftTimeLimitExceeded

    from alerts.notify import notify_alert

    settings.NOTIFY_PUSH_TIMEOUT_SECONDS, settings.NOTIFY_DEADLINE_SECONDS = 30, 30
    Device(team.mo, push_service, "hang/slow")
    result = factories.ScanResultFactory(scan__patient=people.patient, severity="moderate")
    alert = alert_raise(scan=result.scan, result=result)  # no on-commit: the call is made below

    def time_is_up(signum, frame):
        raise SoftTimeLimitExceeded()

    previous = signal.signal(signal.SIGALRM, time_is_up)
    signal.setitimer(signal.ITIMER_REAL, 0.5)
    try:
        with pytest.raises(SoftTimeLimitExceeded):
            notify_alert(alert.id, 0)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert push_service.hung == 1


def test_a_user_keeps_a_few_devices_the_newest_replacing_the_longest_silent(people, api, push_service, settings):
    """14 subscriptions registered by one user (the finding: all pointing at a listener that never
    answers) keep PUSH_SUBSCRIPTIONS_PER_USER of them: a new phone always works, and nobody can make one
    call cost many."""
    settings.PUSH_SUBSCRIPTIONS_PER_USER = 5
    alice = api(people.alice)
    endpoints = [f"https://fcm.googleapis.com/fcm/send/{index}" for index in range(14)]
    for endpoint in endpoints:
        body = {"endpoint": endpoint, "keys": {"p256dh": "BPx", "auth": "xyz"}}
        assert alice.post("/api/v1/push/subscription/", body, format="json").status_code == 201
    kept = set(PushSubscription.objects.filter(user=people.alice).values_list("endpoint", flat=True))
    assert kept == set(endpoints[-5:])
    # Registering one it already has again replaces nothing.
    body = {"endpoint": endpoints[-1], "keys": {"p256dh": "BPy", "auth": "xyz"}}
    assert alice.post("/api/v1/push/subscription/", body, format="json").status_code == 201
    assert set(PushSubscription.objects.filter(user=people.alice).values_list("endpoint", flat=True)) == kept
    # Other users' devices are theirs.
    bob = {"endpoint": "https://fcm.googleapis.com/fcm/send/bob", "keys": {"p256dh": "BPx", "auth": "xyz"}}
    assert api(people.bob).post("/api/v1/push/subscription/", bob, format="json").status_code == 201
    assert PushSubscription.objects.filter(user=people.alice).count() == 5


def test_devices_known_to_answer_are_not_kept_behind_ones_that_never_have(
    people, team, push_service, settings, django_capture_on_commit_callbacks
):
    """More calls than may run at once: the device that took the last push goes before new ones that
    hang, so it is reached within the deadline."""
    settings.NOTIFY_CALLS_AT_ONCE, settings.NOTIFY_PUSH_TIMEOUT_SECONDS, settings.NOTIFY_DEADLINE_SECONDS = 3, 30, 2
    for index in range(6):
        Device(team.mo, push_service, f"hang/{index}")
    phone = Device(team.mo, push_service, "phone")
    PushSubscription.objects.filter(id=phone.subscription.id).update(last_sent_at=timezone.now())
    alert = raise_alert(people, django_capture_on_commit_callbacks)
    assert [message["title"] for message in phone.messages()] == [f"Facial paralysis alert #{alert.id}"]
    assert push_service.hung < 6  # three at once, then cancelled at the deadline: some never started


def test_a_call_cut_off_mid_way_is_made_by_the_redelivered_task_or_else_by_the_sweep(people, team, monkeypatch):
    """Calls are at least once. A tier was marked called before it was called, so a task cut off after
    that (a killed worker, a soft time limit) was redelivered and called nobody, with no "notified"
    event. Now the call is recorded as due, marked made only once made: the same task delivered again
    makes it, and a call nobody is making any more is queued again by the sweep."""
    from celery.exceptions import SoftTimeLimitExceeded

    from alerts import notify, services

    made: list[int] = []
    failures = iter([True, False, True, True, False])

    def flaky_call(alert, level, *, repeat=0):
        if next(failures):  # cut off mid-call, as a soft time limit or a killed worker would
            raise SoftTimeLimitExceeded()
        made.append(level)
        return {"pushed": 0, "mailed": 0, "people": 1}

    monkeypatch.setattr(notify, "call_tier", flaky_call)
    queued: list[int] = []
    monkeypatch.setattr(services, "notify_on_commit", lambda alert_id, level: queued.append(alert_id))
    start = timezone.now()
    result = factories.ScanResultFactory(scan__patient=people.patient, severity="moderate")
    alert = alert_raise(scan=result.scan, result=result, now=start)

    with pytest.raises(SoftTimeLimitExceeded):
        notify.notify_alert(alert.id, 0, task_id="first")
    assert notify.notify_alert(alert.id, 0, task_id="first")["people"] == 1  # redelivered: made this time
    assert made == [0]

    second = factories.ScanResultFactory(scan__patient=people.other_patient, severity="moderate")
    other = alert_raise(scan=second.scan, result=second, now=start)
    with pytest.raises(SoftTimeLimitExceeded):
        notify.notify_alert(other.id, 0, task_id="cut-off")
    assert notify.notify_alert(other.id, 0, task_id="another")["people"] == 0  # still being made by the first
    queued.clear()
    services.alert_sweep(now=timezone.now() + timedelta(seconds=notify.call_lease_seconds() + 1))
    assert queued == [other.id]
    with pytest.raises(SoftTimeLimitExceeded):
        notify.notify_alert(other.id, 0, task_id="requeued")  # fails again: left for the next sweep
    queued.clear()
    services.alert_sweep(now=timezone.now() + timedelta(seconds=notify.call_lease_seconds() + 1))
    assert queued == [other.id]
    assert notify.notify_alert(other.id, 0, task_id="requeued-again")["people"] == 1
    assert made == [0, 0]
    assert AlertEvent.objects.filter(alert=other).filter(kind="escalated").count() == 0
