"""The request context of a decision (personalization.context)."""

from __future__ import annotations

import pytest

from personalization.context import build_request_context, device_from_user_agent


@pytest.mark.parametrize(
    ("user_agent", "device"),
    [
        ("", "desktop"),
        ("Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0", "desktop"),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0) Mobile Safari", "mobile"),
        ("Mozilla/5.0 (Linux; Android 14; Pixel 8) Mobile Safari", "mobile"),
        ("Mozilla/5.0 (Linux; Android 14; SM-X710) Safari", "tablet"),
        ("Mozilla/5.0 (iPad; CPU OS 17_0)", "tablet"),
    ],
)
def test_device_from_user_agent(user_agent, device):
    assert device_from_user_agent(user_agent) == device
    assert build_request_context(user_agent=user_agent)["device"] == device


def test_utm__from_the_url__explicit_values_win():
    context = build_request_context(
        url="https://shop.example/p?utm_source=news&utm_medium=mail&utm_medium=x&other=1",
        utm={"medium": "sms", "campaign": "spring"},
    )
    assert context["utm"] == {"source": "news", "medium": "sms", "campaign": "spring"}
    assert (context["path"], context["host"]) == ("/p", "shop.example")


def test_no_url_no_utm__empty_utm():
    context = build_request_context()
    assert context["utm"] == {}
    assert context["device"] == "desktop"
    assert build_request_context(url="https://shop.example/")["utm"] == {}
