"""Popularity per segment, served: a member without a list of their own gets what their segment's
members like, from the run's lists held per process (no query, no extra Redis command)."""

from __future__ import annotations

import pytest

from core.pseudonym import pseudonymize
from profiles import services as profile_services
from profiles.models import Profile
from profiles.services import consent_record
from recommendations import serving
from recommendations.models import TrainingRun, VisitorRecommendation
from segments.models import SegmentMembership
from tests.factories import make_segment

from .conftest import make_recs_placement

URL = "/api/v1/decide"


def _recs(client, visitor):
    response = client.get(URL, {"placements": "recs", "visitor": visitor})
    assert response.status_code == 200, response.content
    return response.json()["placements"]["recs"]


def _cluster(data, sku):
    return data.item_cluster[int(sku.split("-")[1])]


@pytest.fixture
def segment_shop(shop, settings, django_capture_on_commit_callbacks):
    """The shop with segment club-0 (taste group 0's visitors, by trait) and a tiny segment of 5
    members, trained after the memberships exist."""
    from recommendations import services

    data = shop
    club = make_segment("club-0", {"profile.traits.club": "zero"})
    tiny = make_segment("tiny", {"profile.traits.tiny": True})
    group0 = [u for u in range(300) if data.user_group[u] == 0]
    profiles = Profile.objects.in_bulk(
        [pseudonymize(f"visitor-{u}") for u in group0], field_name="key"
    )
    Profile.objects.filter(pk__in=[p.pk for p in profiles.values()]).update(traits={"club": "zero"})
    SegmentMembership.objects.bulk_create(
        [SegmentMembership(segment=club, profile=p) for p in profiles.values()]
        + [SegmentMembership(segment=tiny, profile=p) for p in list(profiles.values())[:5]]
    )
    settings.MOSAIC_RECS_TUNING_SECONDS = 5.0
    with django_capture_on_commit_callbacks(execute=True):
        run = services.training_run(threads=1)
    assert run.status == "active", run.note
    return data, run, group0


@pytest.mark.django_db
def test_training__segments__lists_stored_for_segments_with_enough_members_only(segment_shop):
    # Given a training with segment club-0 (~100 interacting members) and tiny (5 members)
    data, run, group0 = segment_shop
    # Then the run holds club-0's list (its members counted) and not tiny's (under 20 members)
    by_segment = run.popular["by_segment"]
    assert set(by_segment) == {"club-0"}
    assert by_segment["club-0"]["users"] == len(group0)
    items = by_segment["club-0"]["items"]
    assert len(items) == 20
    # and the list is the members' taste, not the global bestsellers
    assert sum(_cluster(data, s) == 0 for s in items[:10]) >= 7, items
    assert items[:10] != run.popular["global"][:10]


@pytest.mark.django_db
def test_decide__member_without_a_list__segment_popularity_and_reason_names_it(
    client, segment_shop, django_assert_num_queries
):
    # Given a new visitor who joins club-0 by a trait and has no behaviour (so no list)
    _data, run, group0 = segment_shop
    make_recs_placement()
    profile_services.profile_set_traits(visitor="newbie", traits={"club": "zero"})
    profile = Profile.objects.get(key=pseudonymize("newbie"))
    assert not VisitorRecommendation.objects.filter(profile=profile).exists()
    # When deciding
    block = _recs(client, "newbie")
    # Then the block serves club-0's popular items and says so
    expected = run.popular["by_segment"]["club-0"]["items"][:4]
    assert block["reason"] == "default;recommendations:popularity:segment:club-0"
    assert block["data"]["recommendations"] == {
        "source": "popularity:segment:club-0",
        "run": run.pk,
        "items": expected,
    }
    # and a visitor in no segment still gets the global bestsellers
    assert _recs(client, "nobody")["reason"] == "default;recommendations:popularity:cold_start"
    # and a member with a list of their own keeps it
    member = f"visitor-{group0[0]}"
    assert _recs(client, member)["reason"] == "default;recommendations:als"
    # and, warm, the segment's list costs no database query
    with django_assert_num_queries(0):
        assert _recs(client, "newbie")["data"]["recommendations"]["items"] == expected


@pytest.mark.django_db
def test_decide__member_refused_personalization__global_popularity_not_the_segment(
    client, segment_shop
):
    # Given the club-0 newcomer refuses personalization (segment use is personalization)
    _data, run, _group0 = segment_shop
    make_recs_placement()
    profile_services.profile_set_traits(visitor="newbie", traits={"club": "zero"})
    consent_record(
        profile_key=pseudonymize("newbie"),
        purposes={"personalization": False},
        source="test",
        policy_version="1",
        gpc=False,
        actor="test",
    )
    # When deciding / Then the global bestsellers, saying why
    block = _recs(client, "newbie")
    assert block["reason"] == "default;recommendations:popularity:no_consent"
    assert block["data"]["recommendations"]["items"] == run.popular["global"][:4]


def test_block_items__several_segments__the_most_specific_one_topped_up_in_stock():
    # Given a serving state with two segment lists (small: 25 members, big: 90) and a stock
    # where the small segment's second item is missing
    stored = {
        "big": {"users": 90, "items": ["b1", "b2"]},
        "small": {"users": 25, "items": ["s1", "gone", "s2"]},
        "broken": "not a list",
    }
    items = {sku: {"sku": sku} for sku in ["b1", "b2", "s1", "s2", "g1", "g2"]}
    state = serving.ServingState(
        version=-7,
        run_id=3,
        items=items,
        category_of={},
        popular=["g1", "s1", "g2"],
        popular_by_segment=serving._segment_lists(stored, items, ["g1", "s1", "g2"]),
    )
    serving._state = state
    try:

        def source_and_items(profile, allowed=True, count=4):
            got = serving.block_items(
                version=-7,
                profile=profile,
                personalization_allowed=allowed,
                request_context={},
                fields={"count": count},
            )
            return got.source, [i["sku"] for i in got.items]

        # When a visitor is in both (and an unknown segment) / Then the smaller segment wins,
        # its in-stock items first, topped up with bestsellers it does not already hold
        assert source_and_items({"segments": ["big", "nope", "small"]}) == (
            "popularity:segment:small",
            ["s1", "s2", "g1", "g2"],
        )
        assert source_and_items({"segments": ["big"]}, count=2) == (
            "popularity:segment:big",
            ["b1", "b2"],
        )
        # and hostile or missing memberships fall back to the global list
        for profile in ({"segments": "big"}, {"segments": [1, None]}, {}, None):
            assert source_and_items(profile)[0] == "popularity:cold_start"
        # and no consent never looks at segments
        assert source_and_items({"segments": ["small"]}, allowed=False)[0] == (
            "popularity:no_consent"
        )
    finally:
        serving.reset()


def test_segment_lists__stored_json__ranked_by_members_then_key():
    # Given stored lists (JSON from the run; key order not kept by PostgreSQL's jsonb)
    stored = {
        "z": {"users": 30, "items": []},
        "a": {"users": 30, "items": ["x"]},
        "m": {"users": 21, "items": ["y"]},
    }
    # Then ranks go to the fewest members first, ties by key
    lists = serving._segment_lists(stored, {"x": {"sku": "x"}, "y": {"sku": "y"}}, ["y"])
    assert {k: rank for k, (rank, _items, _source) in lists.items()} == {"m": 0, "a": 1, "z": 2}
    # and each is prepared once: in-stock items, topped up with bestsellers it lacks
    assert [i["sku"] for i in lists["a"][1]] == ["x", "y"]
    assert [i["sku"] for i in lists["m"][1]] == ["y"]
    assert lists["z"][2] == "popularity:segment:z"
    assert serving._segment_lists(None, {}, []) == {}
    assert serving._segment_lists([1], {}, []) == {}


@pytest.mark.django_db
def test_training_run__segment_lists__reach_the_serving_state(segment_shop):
    # Given the active run with club-0's list
    _data, run, _group0 = segment_shop
    # When a process builds its serving state
    state = serving.state_build(12345)
    # Then club-0's list is there, as stored
    served = [i["sku"] for i in state.popular_by_segment["club-0"][1]]
    assert served == run.popular["by_segment"]["club-0"]["items"][: serving.MAX_COUNT]
    assert TrainingRun.objects.get(pk=run.pk).popular == run.popular
