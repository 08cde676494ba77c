"""Admin fixes: profile search by visitor or user id (pseudonymised), JSON errors with line and
column in condition fields."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from core.forms import PositionedJSONField
from identity import services as identity_services
from profiles import services as profile_services
from tests.factories import make_placement, make_variant


def test_profile_search__raw_visitor_id__finds_its_profile(admin_client, db):
    # Given two visitors' profiles (stored under keyed hashes of their ids)
    ann = profile_services.profile_set_traits(visitor="visitor-ann", traits={"tier": "gold"})
    profile_services.profile_set_traits(visitor="visitor-bob", traits={"tier": "silver"})
    # When the admin searches for Ann's raw visitor id
    response = admin_client.get(reverse("admin:profiles_profile_changelist"), {"q": "visitor-ann"})
    # Then exactly her profile is listed
    assert [p.pk for p in response.context["cl"].result_list] == [ann.pk]


def test_profile_search__user_id__finds_the_identified_profile(admin_client, db):
    ann = profile_services.profile_set_traits(visitor="anon-1", traits={})
    identity_services.visitor_identify(visitor="anon-1", user_id="user-42")
    response = admin_client.get(reverse("admin:profiles_profile_changelist"), {"q": "user-42"})
    assert [p.pk for p in response.context["cl"].result_list] == [ann.pk]


def test_profile_search__unknown_id__nothing(admin_client, db):
    profile_services.profile_set_traits(visitor="visitor-ann", traits={})
    response = admin_client.get(reverse("admin:profiles_profile_changelist"), {"q": "nobody"})
    assert list(response.context["cl"].result_list) == []


def test_positioned_json__broken__line_and_column():
    with pytest.raises(ValidationError) as refused:
        PositionedJSONField().clean('{\n  "request.device": "mobile"\n  "x": 1\n}')
    assert refused.value.messages == ["Invalid JSON at line 3, column 3: Expecting ',' delimiter."]


def test_variant_admin__broken_condition__error_names_line_and_column(admin_client, db):
    variant = make_variant(make_placement("hero"), "v")
    response = admin_client.post(
        reverse("admin:content_variant_change", args=[variant.pk]),
        {
            "placement": variant.placement_id,
            "key": "v",
            "name": "v",
            "status": "live",
            "priority": 10,
            "condition": '{"request.device": "mobile",}',
            "template": "<p>v</p>",
            "data": "{}",
        },
    )
    errors = response.context["adminform"].form.errors["condition"]
    assert errors == [
        "Invalid JSON at line 1, column 29: Expecting property name enclosed in double quotes."
    ]
