"""Signing out (issue 29 point 7): a deliberate logout says so, and never claims the screen was left
unattended. It used to land 2 of 4 times on "You were signed out: nobody used this screen...": the
logout closed the page's socket, and the page's own check found the session gone and sent it to the
login page with that notice, racing the logout's own redirect."""

from __future__ import annotations

import pytest

from tests.integration.browsers import logged_in_page, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("start", ["/alerts/", "/scans/", "/"])
def test_a_deliberate_logout_says_you_logged_out(browser, live_stack, people, start):
    for _ in range(3):
        page = logged_in_page(browser, live_stack, "alice")
        page.goto(f"{live_stack.base_url}{start}")
        wait_until(page, "window.portalLive.socket && window.portalLive.socket.readyState === 1")
        page.click("text=Log out alice")
        page.wait_for_url(f"{live_stack.base_url}/login/**")
        page.wait_for_timeout(1500)  # the socket's close, and any check it starts, have run
        text = page.inner_text("main")
        assert "You were signed out" not in text, page.url
        assert "You have logged out" in text
        page.context.close()


def unused_for(page, seconds_left: float) -> None:
    """Make this browser's session one that nobody has used for SESSION_IDLE_MINUTES minus
    ``seconds_left`` (as a ward screen left alone), then reload the page."""
    import time

    from django.conf import settings
    from qsessions.backends.db import SessionStore

    from portal.credentials import ACTIVE_AT, SIGNED_IN_AT
    from tests.integration.browsers import elsewhere

    key = next(c["value"] for c in page.context.cookies() if c["name"] == settings.SESSION_COOKIE_NAME)

    def work():
        session = SessionStore(session_key=key)
        idle = time.time() - (settings.SESSION_IDLE_MINUTES * 60 - seconds_left)
        session[ACTIVE_AT] = idle
        session[SIGNED_IN_AT] = min(session[SIGNED_IN_AT], idle)
        session.save()

    elsewhere(work)
    # A page the browser loads by itself (a reload is a request: it counts as use), so the session is
    # set back after the page has loaded: the page learns the new end from its own check.
    page.evaluate("window.portalLive.refreshSession()")


def test_an_unused_screen_says_when_it_signs_out_and_then_does_so_with_its_open_alerts(browser, live_stack, people):
    """When an unattended screen signed out was unpredictable (a socket closing, a background check),
    and the login page did not say that an open stroke alert had been on it."""
    from tests.integration.browsers import flagged

    flagged(people.patient, label="paralysis", pattern="central", severity="moderate", score=0.9)
    page = logged_in_page(browser, live_stack, "alice")
    page.goto(f"{live_stack.base_url}/alerts/")
    page.wait_for_selector("li.alert.status-open")
    wait_until(page, "window.portalLive.openCount === 1")
    assert page.locator("#session-warning").is_hidden()

    unused_for(page, 100)
    warning = page.wait_for_selector("#session-warning", state="visible", timeout=10_000)
    assert "Nobody has used this screen for a while: it signs out at " in warning.inner_text()
    assert "(in 2 minutes), with 1 open alert on it." in warning.inner_text()

    page.click("#stay-signed-in")  # someone is here
    page.wait_for_selector("#session-warning", state="hidden", timeout=10_000)

    unused_for(page, 6)
    page.wait_for_selector("#session-warning", state="visible", timeout=10_000)
    page.wait_for_url(f"{live_stack.base_url}/login/**", timeout=20_000)
    notice = page.inner_text("#signed-out")
    assert "nobody used this screen for 30 minutes" in notice
    assert "1 alert was open on this screen: the care team is still being called for them" in notice
