"""{% mosaic_placement %} (alias {% personalized_block %}): server-side decisions through the same
core as the API, never raising."""

from __future__ import annotations

import pytest
from django.template import Context, Template
from django.test import RequestFactory

from personalization.templatetags import mosaic as tag_module
from profiles import services as profile_services
from tests.factories import make_placement, make_segment, make_variant

TAG = Template('{% load mosaic %}{% mosaic_placement "hero" %}')


def render(template: Template = TAG, *, visitor: str | None = None, **headers) -> str:
    request = RequestFactory().get("/shop", **headers)
    if visitor is not None:
        request.COOKIES["mosaic_vid"] = visitor
    return template.render(Context({"request": request}))


@pytest.fixture
def hero(db):
    placement = make_placement("hero", default_html="<p>Welcome</p>")
    make_variant(
        placement,
        "vip-hero",
        condition={"profile.segments": {"$in": ["vip"]}},
        template="<p>Hi {{ profile.traits.name }}</p>",
    )
    make_variant(placement, "mobile-hero", condition={"request.device": "mobile"}, priority=50)
    make_segment("vip", {"profile.traits.tier": "gold"})
    return placement


def test_tag__visitor_cookie_in_segment__renders_targeted_variant(hero):
    profile_services.profile_set_traits(visitor="ann", traits={"tier": "gold", "name": "Ann <b>"})
    html = render(visitor="ann")
    assert html == (
        '<div data-mosaic-placement="hero" data-mosaic-variant="vip-hero" '
        'data-mosaic-reason="targeted:vip-hero"><p>Hi Ann &lt;b&gt;</p></div>'
    )


def test_tag__no_cookie__default_variant(hero):
    html = render()
    assert 'data-mosaic-reason="default"' in html
    assert "<p>Welcome</p>" in html


def test_tag__request_context__used_for_targeting(hero):
    html = render(HTTP_USER_AGENT="Mozilla/5.0 (iPhone; Mobile) Safari")
    assert 'data-mosaic-reason="targeted:mobile-hero"' in html


def test_tag__unknown_placement__empty_div_with_reason(db):
    html = render(Template('{% load mosaic %}{% mosaic_placement "nope" %}'))
    assert html == (
        '<div data-mosaic-placement="nope" data-mosaic-variant="" '
        'data-mosaic-reason="fallback:unknown_placement"></div>'
    )


def test_tag__decide_raises__empty_div_never_an_error(hero, monkeypatch):
    def boom(**kwargs):
        raise RuntimeError("snapshot exploded")

    monkeypatch.setattr("personalization.templatetags.mosaic.decide", boom)
    html = render(visitor="ann")
    assert html == (
        '<div data-mosaic-placement="hero" data-mosaic-variant="" '
        'data-mosaic-reason="fallback:error"></div>'
    )


def test_tag__no_request_in_context__anonymous_default(hero):
    html = Template('{% load mosaic %}{% mosaic_placement "hero" %}').render(Context({}))
    assert 'data-mosaic-reason="default"' in html


def test_tag__key_from_variable__escaped(db):
    request = RequestFactory().get("/")
    html = Template("{% load mosaic %}{% mosaic_placement key %}").render(
        Context({"request": request, "key": '"><script>'})
    )
    assert "<script>" not in html
    assert 'data-mosaic-placement="&quot;&gt;&lt;script&gt;"' in html


def test_tag__several_placements__one_profile_load(hero, monkeypatch):
    make_placement("promo")
    calls = []
    real_load = tag_module.visitor_load

    def counting_load(**kwargs):
        calls.append(kwargs)
        return real_load(**kwargs)

    monkeypatch.setattr(tag_module, "visitor_load", counting_load)
    html = render(
        Template('{% load mosaic %}{% mosaic_placement "hero" %}{% mosaic_placement "promo" %}'),
        visitor="ann",
    )
    assert len(calls) == 1
    assert html.count("data-mosaic-placement=") == 2


@pytest.mark.parametrize(
    ("key", "visitor", "headers"),
    [
        ("hero", "ann", {}),  # targeted by segment
        ("hero", None, {"HTTP_USER_AGENT": "Mozilla/5.0 (iPhone; Mobile) Safari"}),  # by device
        ("hero", None, {}),  # default
        ("nope", None, {}),  # unknown placement
    ],
    ids=["targeted", "device", "default", "unknown"],
)
def test_personalized_block__any_placement__same_output_as_mosaic_placement(
    hero, key, visitor, headers
):
    # Given a visitor in the vip segment, and DESIGN.md's spelling of the tag next to the original
    profile_services.profile_set_traits(visitor="ann", traits={"tier": "gold", "name": "Ann"})
    original = Template(f'{{% load mosaic %}}{{% mosaic_placement "{key}" %}}')
    alias = Template(f'{{% load mosaic %}}{{% personalized_block "{key}" %}}')
    # When both render for the same request
    expected = render(original, visitor=visitor, **headers)
    # Then the alias renders exactly the same placement
    assert render(alias, visitor=visitor, **headers) == expected
    assert f'data-mosaic-placement="{key}"' in expected


def test_personalized_block__decide_raises__same_empty_div(hero, monkeypatch):
    def boom(**kwargs):
        raise RuntimeError("snapshot exploded")

    monkeypatch.setattr("personalization.templatetags.mosaic.decide", boom)
    alias = Template('{% load mosaic %}{% personalized_block "hero" %}')
    assert render(alias) == render()
    assert 'data-mosaic-reason="fallback:error"' in render(alias)
