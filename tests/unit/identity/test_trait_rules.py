"""Data quality: trait definitions carry validation rules (range, allowed values, pattern); a bad
value is refused at ingestion naming the trait, counted, and never stored."""

from __future__ import annotations

import json
import time

import pytest
from django.core.exceptions import ValidationError

from core import metrics
from core.pseudonym import pseudonymize
from identity.models import TraitDefinition
from identity.traits import TraitSpec, traits_coerce
from profiles.models import Profile
from profiles.selectors import profile_get_cached

URL = "/api/v1/traits"


def post(client, body):
    return client.post(URL, data=json.dumps(body), content_type="application/json")


def _refused(trait: str, rule: str) -> int:
    return metrics.value("mosaic_traits_refused_total", trait=trait, rule=rule)


SPECS = {
    "age": TraitSpec.build("number", min_value=0, max_value=130),
    "plan": TraitSpec.build("string", allowed_values=["free", "pro"]),
    "country": TraitSpec.build("string", pattern="[A-Z]{2}"),
    "tags": TraitSpec.build("list", allowed_values=["a", "b"], pattern="[a-z]"),
}


@pytest.mark.parametrize(
    ("name", "value", "rule"),
    [
        ("age", -1, "range"),
        ("age", "131", "range"),
        ("plan", "gold", "allowed_values"),
        ("plan", True, "allowed_values"),  # coerced to "true", not allowed
        ("country", "fr", "pattern"),
        ("country", "FRA", "pattern"),  # the whole value must match
        ("tags", ["a", "z"], "allowed_values"),
    ],
)
def test_traits_coerce__value_breaks_rule__refused_named_and_counted(name, value, rule):
    # Given definitions with rules, and the refusal counter before
    before = _refused(name, rule)

    # When a value breaking one is coerced
    coerced, errors = traits_coerce({name: value}, definitions=SPECS)

    # Then it is refused under its name, not kept, and counted by trait and rule
    assert name in errors
    assert name not in coerced
    assert _refused(name, rule) == before + 1


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("age", "42", 42),
        ("age", 0, 0),
        ("plan", "pro", "pro"),
        ("country", "FR", "FR"),
        ("tags", ["a", "b"], ["a", "b"]),
        ("age", None, None),
    ],
)
def test_traits_coerce__value_within_rules__kept(name, value, expected):
    # Given definitions with rules
    # When a conforming value (or null, which clears) is coerced
    coerced, errors = traits_coerce({name: value}, definitions=SPECS)

    # Then it is kept, typed
    assert errors == {}
    assert coerced == {name: expected}


def test_traits_coerce__hostile_input_on_pattern__answers_quickly():
    # Given a nested-quantifier pattern (linear on RE2) and a long adversarial value
    specs = {"code": TraitSpec.build("string", pattern="(a+)+")}

    # When checked
    started = time.perf_counter()
    _, errors = traits_coerce({"code": "a" * 100_000 + "!"}, definitions=specs)

    # Then it is refused fast
    assert "code" in errors
    assert time.perf_counter() - started < 1.0


@pytest.mark.django_db
def test_traits__post_breaking_a_rule__400_names_trait_nothing_stored(client):
    # Given a declared trait with a range, and a visitor with a stored trait
    TraitDefinition.objects.create(name="age", type="number", min_value=0, max_value=130)
    assert post(client, {"visitor": "v1", "traits": {"plan": "free"}}).status_code == 200
    before = _refused("age", "range")

    # When a server posts an out-of-range age with another trait
    response = post(client, {"visitor": "v1", "traits": {"age": 500, "plan": "pro"}})

    # Then the call is refused naming the trait, counted, and nothing of it is stored or cached
    assert response.status_code == 400
    assert {e["field"] for e in response.json()["errors"]} == {"traits.age"}
    assert _refused("age", "range") == before + 1
    assert Profile.objects.get(key=pseudonymize("v1")).traits == {"plan": "free"}
    assert profile_get_cached(profile_key=pseudonymize("v1"))["traits"] == {"plan": "free"}


@pytest.mark.django_db
def test_traits__post_within_rules__stored(client):
    # Given a trait with allowed values
    TraitDefinition.objects.create(name="plan", type="string", allowed_values=["free", "pro"])

    # When a conforming value is posted
    response = post(client, {"visitor": "v2", "traits": {"plan": "pro"}})

    # Then it is stored
    assert response.status_code == 200
    assert Profile.objects.get(key=pseudonymize("v2")).traits == {"plan": "pro"}


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"type": "string", "min_value": 1}, "min_value"),
        ({"type": "number", "min_value": 5, "max_value": 1}, "max_value"),
        ({"type": "number", "pattern": "x"}, "pattern"),
        ({"type": "string", "pattern": "^(?!admin)"}, "pattern"),
        ({"type": "string", "pattern": "(unclosed"}, "pattern"),
        ({"type": "boolean", "allowed_values": [True]}, "allowed_values"),
        ({"type": "string", "allowed_values": [{"a": 1}]}, "allowed_values"),
        ({"type": "string", "allowed_values": "pro"}, "allowed_values"),
    ],
)
def test_trait_definition__bad_rules__refused_at_save_naming_field(fields, field):
    # Given a definition with inconsistent or unsafe rules
    definition = TraitDefinition(name="t", **fields)

    # When validated as the admin does
    with pytest.raises(ValidationError) as caught:
        definition.clean()

    # Then the offending field is named
    assert field in caught.value.message_dict


@pytest.mark.django_db
def test_admin__trait_definition_with_unsafe_pattern__form_error_nothing_saved(admin_client):
    # Given the admin's add form for trait definitions
    url = "/admin/identity/traitdefinition/add/"
    assert admin_client.get(url).status_code == 200

    # When a definition with a backtracking pattern is submitted
    response = admin_client.post(
        url,
        {
            "name": "code",
            "type": "string",
            "description": "",
            "pattern": "^(?!x)",
            "allowed_values": "[]",
        },
    )

    # Then the form is shown again with the pattern's error, and nothing is saved
    assert response.status_code == 200
    assert "pattern" in response.context["adminform"].form.errors
    assert not TraitDefinition.objects.exists()

    # And a valid one with rules is saved and enforced
    response = admin_client.post(
        url,
        {
            "name": "code",
            "type": "string",
            "description": "",
            "pattern": "[A-Z]{3}",
            "allowed_values": "[]",
        },
    )
    assert response.status_code == 302
    assert "code" in traits_coerce({"code": "ab"})[1]
