"""The audience builder's check endpoint: problems by JSON path, words, catalogue findings and,
for segments, the live count of matching stored profiles; staff only; bad bodies are 400s."""

from __future__ import annotations

import pytest

from ingestion import queue as ingestion_queue
from profiles import services as profile_services

URL = "/admin/mosaic/conditions/check"


def _check(client, condition, scope="variant"):
    return client.post(
        URL, {"condition": condition, "scope": scope}, content_type="application/json"
    )


def test_check__valid_variant_condition__words_and_warning(admin_client, db):
    body = _check(admin_client, {"request.utm_campaign": "spring"}).json()
    assert body["problems"] == []
    assert body["description"] == "request.utm_campaign is spring"
    assert body["findings"][0]["severity"] == "warning"
    assert body["count"] is None


def test_check__invalid_condition__problems_by_path(admin_client, db):
    body = _check(admin_client, {"request.device": {"$in": "mobile"}}).json()
    assert body["problems"]
    assert body["problems"][0].startswith("$['request.device'].$in")


def test_check__segment__count_of_matching_stored_profiles(admin_client, db):
    # Given three stored profiles, two of them gold
    profile_services.profile_set_traits(visitor="a", traits={"tier": "gold"})
    profile_services.profile_set_traits(visitor="b", traits={"tier": "gold"})
    profile_services.profile_set_traits(visitor="c", traits={"tier": "silver"})
    from identity.models import TraitDefinition

    TraitDefinition.objects.create(name="tier", type="string")
    # When a segment condition on the tier is checked
    body = _check(admin_client, {"profile.traits.tier": "gold"}, scope="segment").json()
    # Then the count is the stored truth
    assert body["count"] == {"matched": 2, "evaluated": 3, "total": 3}


def test_check__segment_on_request__error_and_no_count(admin_client, db):
    body = _check(admin_client, {"request.device": "mobile"}, scope="segment").json()
    assert body["findings"][0]["severity"] == "error"
    assert body["count"] is None


@pytest.mark.parametrize("raw", [b"not json", b"[1]", b"{" * 5000])
def test_check__bad_body__400(admin_client, db, raw):
    response = admin_client.post(URL, raw, content_type="application/json")
    assert response.status_code == 400


def test_check__anonymous__redirected_to_login(client, db):
    response = _check(client, {})
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_check__segment_count__needs_a_segment_editors_right(db, django_user_model):
    from django.contrib.auth.models import Group
    from django.test import Client

    profile_services.profile_set_traits(visitor="a", traits={})
    editor = django_user_model.objects.create_user("ed", password=None, is_staff=True)
    editor.groups.add(Group.objects.get(name="Editor"))
    client = Client()
    client.force_login(editor)
    condition = {"profile.aggregates.event_count": {"$gte": 0}}
    body = _check(client, condition, scope="segment").json()
    assert body["description"]
    assert body["count"] is None


def test_check__segment_on_a_window__counted_as_recompute_counts(admin_client, db):
    # Given a visitor with a purchase today and one without events
    from tests.factories import event, ingest

    profile_services.profile_set_traits(visitor="idle", traits={})
    ingestion_queue.events_enqueue(events=[event("buyer", "purchase", value=20.0)])
    ingest(max_events=10)
    # When a segment condition on the 7-day window is checked
    condition = {"profile.windows.7d.purchase.count": {"$gte": 1}}
    body = _check(admin_client, condition, scope="segment").json()
    # Then the buyer is counted (the windows were folded, as the recompute folds them)
    assert body["findings"] == []
    assert body["count"]["matched"] == 1
    assert body["count"]["total"] == 2
