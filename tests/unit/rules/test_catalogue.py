"""The attribute catalogue and the operators' reference: the committed docs page is the code's,
every operator of the language is documented with a valid example, and the check finds the
conditions that can never match."""

from __future__ import annotations

from pathlib import Path

import pytest

from rules import validate_condition
from rules.catalogue import (
    OPERATORS,
    STATIC_ATTRIBUTES,
    catalogue_findings,
    catalogue_markdown,
)
from rules.operators import LOGICAL, VALUE_OPERATORS

DOCS = Path(__file__).resolve().parents[3] / "docs" / "conditions-reference.md"


def test_conditions_page__committed__is_the_generators_output():
    # When the page is generated from the code, Then it is the committed one
    assert DOCS.read_text() == catalogue_markdown(), (
        "docs/conditions-reference.md is stale: python -m rules.catalogue > "
        "docs/conditions-reference.md"
    )


def test_operators__every_operator_of_the_language__documented():
    documented = {op.name.split(" ")[0] for op in OPERATORS}
    assert documented >= (VALUE_OPERATORS | LOGICAL)


@pytest.mark.parametrize("operator", OPERATORS, ids=lambda op: op.name)
def test_operator_example__valid_condition(operator):
    assert validate_condition(operator.example) == []


def test_catalogue__paths_unique_and_typed():
    paths = [a.path for a in STATIC_ATTRIBUTES]
    assert len(paths) == len(set(paths))
    assert {a.type for a in STATIC_ATTRIBUTES} <= {
        "string",
        "number",
        "boolean",
        "date",
        "list",
        "object",
    }


def test_findings__misspelt_utm_path__warning_with_the_right_path():
    [finding] = catalogue_findings({"request.utm_campaign": "spring"}, STATIC_ATTRIBUTES)
    assert finding.severity == "warning"
    assert '"request.utm.campaign"' in finding.message


def test_findings__relative_time_string__not_a_date_warning():
    condition = {"profile.aggregates.last_seen": {"$gt": "now-30m"}}
    [finding] = catalogue_findings(condition, STATIC_ATTRIBUTES)
    assert "not a date" in finding.message


def test_findings__segment_on_request__error():
    condition = {"$or": [{"request.device": "mobile"}, {"profile.aggregates.frequency": 2}]}
    findings = catalogue_findings(condition, STATIC_ATTRIBUTES, profile_only=True)
    assert [(f.path, f.severity) for f in findings] == [("request.device", "error")]


def test_findings__unknown_path_in_segment__error():
    [finding] = catalogue_findings(
        {"profile.aggregate.monetary": {"$gt": 1}}, STATIC_ATTRIBUTES, profile_only=True
    )
    assert finding.severity == "error"


@pytest.mark.parametrize(
    "condition",
    [
        {"request.device": "mobile", "request.utm.source": {"$in": ["mail", "ads"]}},
        {"profile.aggregates.last_seen": {"$gt": "2026-11-01T00:00:00Z"}},
        {"profile.aggregates.category_affinities.jazz": {"$gte": 3}},
        {"request.attributes.app_version": {"$vgte": "2.1"}},
        {"$not": {"profile.segments": {"$in": ["loyal"]}}},
        {"profile.consent.marketing": True},
    ],
)
def test_findings__sound_conditions__nothing(condition):
    assert catalogue_findings(condition, STATIC_ATTRIBUTES) == []


def test_findings__wrong_type_in_list__warning_per_value():
    findings = catalogue_findings({"request.hour": {"$in": [9, "ten"]}}, STATIC_ATTRIBUTES)
    assert len(findings) == 1
    assert "'ten'" in findings[0].message
