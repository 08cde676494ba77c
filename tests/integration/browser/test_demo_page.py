"""The demo storefront in a real browser: the snippet personalizes, consent, a dead API."""

from __future__ import annotations

from urllib.parse import quote

import pytest

pytestmark = pytest.mark.browser

LOYAL_HERO = "Thank you for coming back"
DEFAULT_HERO = "Music for every mood"


CONSENTED = '{"analytics":true,"personalization":true,"marketing":false}'


def open_as(page, base_url: str, persona: str, path: str = "/", consented: bool = False) -> None:
    cookies = [{"name": "mosaic_vid", "value": persona, "url": base_url}]
    if consented:  # a choice already made: no consent banner over the page
        cookies.append({"name": "mosaic_consent", "value": quote(CONSENTED), "url": base_url})
    page.context.add_cookies(cookies)
    page.goto(base_url + path)


def hero(page):
    return page.locator('[data-mosaic-placement="hero"]')


def test_demo_page__loyal__personalized_hero_replaces_default(page, demo_server, screenshot):
    open_as(page, demo_server.url, "demo-loyal")
    # The snippet swaps the answer in and marks the placement with the reason.
    page.wait_for_selector('[data-mosaic-placement="hero"][data-mosaic-reason]')
    assert LOYAL_HERO in hero(page).inner_text()
    assert DEFAULT_HERO not in hero(page).inner_text()
    assert hero(page).get_attribute("data-mosaic-reason") == "targeted:loyal-thanks"
    assert hero(page).is_visible()
    # The debug panel listened to mosaic:decided.
    row = page.locator('[data-debug-placement="hero"]')
    assert "loyal-thanks" in row.inner_text()
    assert page.evaluate("window.mosaic.visitor()") == "demo-loyal"
    screenshot("loyal")


def test_demo_page__server_rendered__same_decision(page, demo_server, screenshot):
    open_as(page, demo_server.url, "demo-jazz", "/demo/server", consented=True)
    recs = page.locator('[data-mosaic-placement="recs"]')
    assert "Picked for jazz lovers" in recs.inner_text()
    assert recs.get_attribute("data-mosaic-reason") == "targeted:jazz-picks"
    assert recs.is_visible()  # server-decided placements are never hidden by the snippet
    screenshot("server-jazz")


def test_demo_page__refuse_personalization__default_content(page, demo_server, screenshot):
    open_as(page, demo_server.url, "demo-loyal")
    page.wait_for_selector('[data-mosaic-placement="hero"][data-mosaic-reason]')
    assert LOYAL_HERO in hero(page).inner_text()
    with page.expect_response("**/api/v1/consent") as consent_response:
        page.get_by_role("button", name="Refuse personalization").click()
    assert consent_response.value.ok, consent_response.value.text()
    page.wait_for_function(
        "document.querySelector('[data-mosaic-placement=\"hero\"]')"
        ".getAttribute('data-mosaic-reason') === 'default:no_consent'"
    )
    assert DEFAULT_HERO in hero(page).inner_text()
    assert LOYAL_HERO not in hero(page).inner_text()
    stored = next(c for c in page.context.cookies() if c["name"] == "mosaic_consent")
    assert "personalization" in stored["value"]
    screenshot("refused")


@pytest.mark.parametrize("failure", ["aborted", "hanging"])
def test_demo_page__dead_api__default_markup_shown(page, demo_server, screenshot, failure):
    if failure == "aborted":
        page.route("**/api/v1/decide", lambda route: route.abort())
    else:
        page.route("**/api/v1/decide", lambda route: None)  # never answered: the timeout fires
    open_as(page, demo_server.url, "demo-loyal", consented=True)
    assert page.locator("#consent-banner").is_hidden()
    # Hidden at first at most for the timeout (800 ms), then the page's own default markup.
    page.wait_for_function(
        "!document.querySelector('style[data-mosaic=\"anti-flicker\"]')", timeout=3_000
    )
    assert hero(page).is_visible()
    assert DEFAULT_HERO in hero(page).inner_text()
    assert hero(page).get_attribute("data-mosaic-reason") is None
    status = page.locator("#debug-status").inner_text()
    assert "page defaults shown" in status
    if failure == "hanging":
        assert "timeout" in status
    screenshot(f"dead-api-{failure}")
