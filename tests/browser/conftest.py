"""Browser fixtures: Debian's Chromium driven by Playwright against pytest-django's live server.

No `playwright install`: the tests use /usr/bin/chromium and skip, saying so, when it is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.core.management import call_command

CHROMIUM = Path(os.environ.get("MOSAIC_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found: install Debian's chromium (apt-get install chromium)")
    playwright_api = pytest.importorskip("playwright.sync_api")
    # Playwright's sync API runs an event loop in this thread while the browser is open; Django's
    # async-safety guard would refuse every ORM call of these tests' fixtures (seeding, flushing),
    # which all run synchronously here. Lifted for this module only.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with playwright_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
            )
            yield browser
            browser.close()


@pytest.fixture
def demo_server(live_server, transactional_db):
    """The live server with the demo seeded (its thread shares the test database and Redis)."""
    call_command("seed_demo", "--visitors", "5")
    return live_server


@pytest.fixture
def page(browser, demo_server):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(
        30_000
    )  # a ceiling for waits, not a speed check: a loaded CI machine is slow
    yield page
    context.close()


@pytest.fixture
def screenshot(page):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(name: str) -> Path:
        path = SCREENSHOTS / f"demo-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


@pytest.fixture
def admin_page(browser, demo_server, django_user_model):
    """A 1280 x 900 page signed in to the admin as a superuser (demo seeded)."""
    django_user_model.objects.create_superuser("boss", password="boss-pw-1")
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(
        30_000
    )  # a ceiling for waits, not a speed check: a loaded CI machine is slow
    page.goto(f"{demo_server.url}/admin/login/")
    page.fill("#id_username", "boss")
    page.fill("#id_password", "boss-pw-1")
    page.click("input[type=submit]")
    page.wait_for_selector("#content-main")
    yield page
    context.close()
