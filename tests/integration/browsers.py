"""Headless Chromium (Debian's package) driven by Playwright, for the browser tests: the `browser`
fixture (launch_browser, used by conftest.py) and what the tests do with pages."""

from __future__ import annotations

import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "correct horse battery"
# axe-core, installed from the npm registry by `make install-dev` (package.json).
AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"


def shoot(page, name: str) -> None:
    directory = os.environ.get("SCREENSHOTS_DIR")
    if directory:
        Path(directory).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(directory) / f"{name}.png"), full_page=True)


def wait_until(page, expression: str, timeout: float = 15) -> None:
    """Poll a JavaScript expression from here (Playwright's wait_for_function polls it with eval, which
    the portal's Content-Security-Policy forbids) until it is true."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {expression}"
        page.wait_for_timeout(200)


def axe_violations(page, impacts=("serious", "critical")) -> list[str]:
    """axe-core's WCAG 2.1 A/AA checks on the page as it is now: one line per violation of those
    impacts, naming the rule and the elements. Evaluated through the DevTools protocol, which the
    page's Content-Security-Policy does not govern (a script tag would be refused)."""
    assert AXE.exists(), f"{AXE} is missing: run `make install-dev` (npm ci)"
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text() + "\n;undefined")
    found = page.evaluate(
        """async () => (await axe.run(document, {runOnly: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}))
            .violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                    nodes: v.nodes.map(n => n.target.join(" ") + " " + n.failureSummary)}))"""
    )
    return [
        f"{page.url}: {v['id']} ({v['impact']}) {v['help']}: " + " | ".join(v["nodes"][:4])
        for v in found
        if v["impact"] in impacts
    ]


def logged_in_page(browser, stack, username: str, viewport=None, **context_options):
    """A new browser context signed in as ``username`` (context_options: Playwright's, such as
    timezone_id)."""
    context = browser.new_context(viewport=viewport or {"width": 1200, "height": 900}, **context_options)
    page = context.new_page()
    page.goto(f"{stack.base_url}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{stack.base_url}/")
    return page


def elsewhere(work, *args, **kwargs):
    """Database work off the test's thread: Playwright runs an event loop in it, and Django's signal
    handlers that publish to the channel layer refuse to run beside one."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(work, *args, **kwargs).result()


def flagged(patient, **result_fields):
    """A result of ``patient`` that raised an alert (off the test's thread): the alert."""
    from alerts.services import alert_raise
    from tests import factories

    def work():
        result = factories.ScanResultFactory(scan__patient=patient, **result_fields)
        return alert_raise(scan=result.scan, result=result)

    return elsewhere(work)


class SocketLink:
    """The page's WebSocket to the portal, passed through until ``down`` is set; then every connection
    attempt is refused (closed at once) and counted in ``refused``, as a network gone would."""

    def __init__(self, page, *, down: bool = False):
        self.down, self.refused = down, 0
        page.route_web_socket("**/ws/alerts/**", self._route)

    def _route(self, socket) -> None:
        if self.down:
            self.refused += 1
            socket.close()
        else:
            socket.connect_to_server()

    def wait_refused(self, page, after: int = 0) -> None:
        """Until an attempt beyond the first ``after`` refused ones has been refused."""
        while self.refused <= after:
            page.wait_for_timeout(100)


def launch_browser():
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (apt-get install chromium); .ci/run installs it")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop running in this thread; Django would take that for
    # async code and refuse the test's own (synchronous) database calls.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous
