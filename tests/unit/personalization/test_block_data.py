"""Block data: decide's `data` carries the chosen block variant's fields with its payload over
them, precomputed in the snapshot (no query, nothing per call); never the visitor's profile."""

from __future__ import annotations

import pytest

from content.models import BlockType, Placement, Variant, VariantStatus
from personalization.snapshot import block_data
from profiles import services as profile_services
from profiles.models import Profile

URL = "/api/v1/decide"


@pytest.fixture
def banner_hero(db) -> Placement:
    """A hero whose default is a block variant with a payload, and a gold-visitor block variant
    whose template greets the visitor by a trait."""
    banner = BlockType.objects.create(
        key="banner",
        name="Banner",
        template=(
            "<h2>{{ fields.title }}"
            "{% if profile.traits %} {{ profile.traits.name }}{% endif %}</h2>"
        ),
        schema={"type": "object", "properties": {"title": {"type": "string"}}},
    )
    placement = Placement.objects.create(key="hero", name="Hero")
    default = Variant.objects.create(
        placement=placement,
        key="welcome",
        name="Welcome",
        status=VariantStatus.LIVE,
        priority=1000,
        block_type=banner,
        block_fields={"title": "Welcome", "cta": "Shop"},
        data={"cta": "Browse", "campaign": "always"},
    )
    Variant.objects.create(
        placement=placement,
        key="gold",
        name="Gold",
        status=VariantStatus.LIVE,
        priority=1,
        condition={"profile.traits.tier": "gold"},
        block_type=banner,
        block_fields={"title": "Thank you"},
    )
    placement.default_variant = default
    placement.save()
    return placement


def test_decide__block_default__data_is_fields_with_payload_over_them(client, banner_hero):
    body = client.get(URL, {"placements": "hero"}).json()
    hero = body["placements"]["hero"]
    assert hero["variant"] == "welcome"
    assert hero["data"] == {"title": "Welcome", "cta": "Browse", "campaign": "always"}


def test_decide__targeted_block__its_fields_never_the_profile(client, banner_hero):
    # Given a gold visitor with a name trait (the template reads it; data must not)
    profile_services.profile_set_traits(visitor="ann", traits={"tier": "gold", "name": "Ann"})
    hero = client.get(URL, {"placements": "hero", "visitor": "ann"}).json()["placements"]["hero"]
    assert hero["variant"] == "gold"
    assert hero["html"] == "<h2>Thank you Ann</h2>"
    assert hero["data"] == {"title": "Thank you"}


def test_decide__no_personalization_consent__default_block_data(client, banner_hero):
    # Given the gold visitor refused personalization
    profile = profile_services.profile_set_traits(
        visitor="bea", traits={"tier": "gold", "name": "Bea"}
    )
    Profile.objects.filter(pk=profile.pk).update(consent={"personalization": False})
    profile_services.profile_cache_write(profile_ids=[profile.pk])
    # When deciding, Then the default's data is served, as its HTML is (the consent gate)
    hero = client.get(URL, {"placements": "hero", "visitor": "bea"}).json()["placements"]["hero"]
    assert hero["reason"] == "default:no_consent"
    assert hero["data"] == {"title": "Welcome", "cta": "Browse", "campaign": "always"}
    assert "Bea" not in str(hero)


def test_decide__block_data__steady_state_no_query(client, banner_hero, django_assert_num_queries):
    client.get(URL, {"placements": "hero"})  # builds the snapshot
    with django_assert_num_queries(0):
        hero = client.get(URL, {"placements": "hero"}).json()["placements"]["hero"]
    assert hero["data"]["title"] == "Welcome"


def test_block_data__template_variant__payload_alone():
    assert block_data({"a": 1}, None) == {"a": 1}
    assert block_data({}, {"t": "x"}) == {"t": "x"}
    assert block_data({"t": "y"}, {"t": "x", "u": 2}) == {"t": "y", "u": 2}
