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
