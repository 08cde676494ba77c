"""Trait schema: coercion to declared types, undeclared-trait policy, POST /api/v1/traits."""

from __future__ import annotations

import json

import pytest
from django.test import override_settings

from core.pseudonym import pseudonymize
from identity.models import TraitDefinition
from identity.traits import traits_coerce
from profiles.models import Profile
from profiles.selectors import profile_get_cached

URL = "/api/v1/traits"
SCHEMA = {
    "age": "number",
    "newsletter": "boolean",
    "born": "date",
    "plan": "string",
    "tags": "list",
}


def post(client, body):
    return client.post(URL, data=json.dumps(body), content_type="application/json")


def fields(response) -> set[str]:
    return {e["field"] for e in response.json()["errors"]}


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("age", "42", 42),
        ("age", " 3.5 ", 3.5),
        ("age", 7, 7),
        ("newsletter", "true", True),
        ("newsletter", "No", False),
        ("newsletter", 1, True),
        ("born", "1990-04-01", "1990-04-01"),
        ("born", "2024-05-01T10:00:00+00:00", "2024-05-01T10:00:00+00:00"),
        ("plan", 3, "3"),
        ("tags", ["a", 1], ["a", 1]),
        ("age", None, None),
    ],
)
def test_traits_coerce__declared_types__converted_once(name, value, expected):
    coerced, errors = traits_coerce({name: value}, definitions=SCHEMA, undeclared="accept")
    assert errors == {}
    assert coerced == {name: expected}
    assert type(coerced[name]) is type(expected)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("age", "forty"),
        ("age", True),
        ("age", "nan"),
        ("newsletter", "maybe"),
        ("born", "1990-13-45"),
        ("born", "yesterday"),
        ("plan", {"a": 1}),
        ("tags", "a,b"),
        ("tags", [{"x": 1}]),
    ],
)
def test_traits_coerce__bad_value__error_names_trait(name, value):
    coerced, errors = traits_coerce({name: value}, definitions=SCHEMA, undeclared="accept")
    assert list(errors) == [name]
    assert name not in coerced


def test_traits_coerce__undeclared__accepted_or_rejected_by_policy():
    accepted, errors = traits_coerce({"shoe": "42"}, definitions=SCHEMA, undeclared="accept")
    assert (accepted, errors) == ({"shoe": "42"}, {})
    rejected, errors = traits_coerce({"shoe": "42"}, definitions=SCHEMA, undeclared="reject")
    assert rejected == {}
    assert list(errors) == ["shoe"]


@pytest.mark.django_db
def test_traits__post__coerced_stored_and_cached(client):
    # Given declared traits
    TraitDefinition.objects.create(name="age", type="number")
    TraitDefinition.objects.create(name="vip", type="boolean")
    # When a server posts string values
    response = post(client, {"visitor": "v1", "traits": {"age": "42", "vip": "true", "x": "y"}})
    # Then they are stored typed, and the decision path's cached document has them
    assert response.status_code == 200, response.content
    assert response.json() == {"traits": {"age": 42, "vip": True, "x": "y"}}
    assert Profile.objects.get(key=pseudonymize("v1")).traits == {"age": 42, "vip": True, "x": "y"}
    cached = profile_get_cached(profile_key=pseudonymize("v1"))
    assert cached["traits"]["age"] == 42


@pytest.mark.django_db
def test_traits__bad_value__400_names_trait_nothing_stored(client):
    TraitDefinition.objects.create(name="age", type="number")
    response = post(client, {"visitor": "v1", "traits": {"age": "old", "plan": "pro"}})
    assert response.status_code == 400
    assert fields(response) == {"traits.age"}
    assert not Profile.objects.exists()


@pytest.mark.django_db
@override_settings(MOSAIC_UNDECLARED_TRAITS="reject")
def test_traits__undeclared_when_rejecting__400_names_trait(client):
    response = post(client, {"visitor": "v1", "traits": {"shoe": 42}})
    assert response.status_code == 400
    assert fields(response) == {"traits.shoe"}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"traits": {"a": 1}}, "visitor"),
        ({"visitor": "v1"}, "traits"),
        ({"visitor": "v1", "traits": {}}, "traits"),
        ({"visitor": "v1", "traits": [1]}, "traits"),
        ({"visitor": "v1", "traits": {"a": 1}, "extra": 1}, "extra"),
    ],
)
def test_traits__bad_input__400_names_field(client, body, field):
    response = post(client, body)
    assert response.status_code == 400
    assert field in fields(response)
