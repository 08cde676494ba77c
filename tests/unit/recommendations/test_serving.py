"""The recommendations block in decide: the visitor's list from the profile document, catalog
data from memory, out-of-stock filtered, similar items, consent, no extra query or round trip."""

from __future__ import annotations

import pytest

from core.pseudonym import pseudonymize
from profiles import services as profile_services
from profiles.models import Profile
from recommendations.models import Item, TrainingRun, VisitorRecommendation

from .conftest import make_recs_placement

URL = "/api/v1/decide"


def _recs(client, visitor="visitor-0", **context):
    params = {"placements": "recs", "visitor": visitor}
    if context:
        import json

        body = {"placements": ["recs"], "visitor": visitor, "context": context}
        response = client.post(URL, json.dumps(body), content_type="application/json")
    else:
        response = client.get(URL, params)
    assert response.status_code == 200, response.content
    return response.json()["placements"]["recs"]


def _row(visitor="visitor-0"):
    return VisitorRecommendation.objects.get(profile__key=pseudonymize(visitor))


@pytest.mark.django_db
def test_decide__recommendations_block__visitor_gets_their_precomputed_items(client, trained_shop):
    # Given a trained shop and a placement with the recommendations block
    make_recs_placement()
    # When visitor-0 asks for it
    block = _recs(client)
    # Then the block holds the first 4 items of their list, with catalog data in the HTML
    expected = _row().items[:4]
    assert block["reason"] == "default;recommendations:als"
    assert block["data"]["recommendations"]["items"] == expected
    assert block["data"]["recommendations"]["run"] == trained_shop[1].pk
    for sku in expected:
        item = Item.objects.get(sku=sku)
        assert f'data-sku="{sku}"' in block["html"]
        assert item.title in block["html"]
        assert item.url in block["html"]
    assert "For you" in block["html"]
    # and two visitors of different taste groups get different items
    data = trained_shop[0]
    other = next(u for u in range(1, 300) if data.user_group[u] != data.user_group[0])
    assert _recs(client, f"visitor-{other}")["data"]["recommendations"]["items"] != expected


@pytest.mark.django_db
def test_decide__recommended_item_out_of_stock__filtered_at_serve_time(
    client, trained_shop, django_capture_on_commit_callbacks
):
    # Given visitor-0's first recommended item goes out of stock (admin/API save)
    make_recs_placement()
    items = _recs(client)["data"]["recommendations"]["items"]
    with django_capture_on_commit_callbacks(execute=True):
        item = Item.objects.get(sku=items[0])
        item.in_stock = False
        item.save()
    # When deciding again (after the snapshot's check interval)
    from personalization.snapshot import holder

    holder.reset()
    block = _recs(client)
    # Then it is not served; the next of the list takes its place
    served = block["data"]["recommendations"]["items"]
    assert items[0] not in served
    assert served == [s for s in _row().items if s != items[0]][:4]


@pytest.mark.django_db
def test_decide__no_personalization_consent__popularity_and_reason_says_so(client, trained_shop):
    # Given visitor-0 refused personalization
    make_recs_placement()
    profile = Profile.objects.get(key=pseudonymize("visitor-0"))
    Profile.objects.filter(pk=profile.pk).update(consent={"personalization": False})
    profile_services.profile_cache_write(profile_ids=[profile.pk])
    # When deciding
    block = _recs(client)
    # Then the block serves the bestsellers and says why
    assert block["reason"] == "default;recommendations:popularity:no_consent"
    run = TrainingRun.objects.get(pk=trained_shop[1].pk)
    assert block["data"]["recommendations"]["items"] == run.popular["global"][:4]


@pytest.mark.django_db
def test_decide__unknown_visitor__popularity_cold_start(client, trained_shop):
    make_recs_placement()
    block = _recs(client, "somebody-new")
    assert block["reason"] == "default;recommendations:popularity:cold_start"
    assert len(block["data"]["recommendations"]["items"]) == 4


@pytest.mark.django_db
def test_decide__item_context__similar_items_of_that_item(client, trained_shop):
    # Given a product page for sku-3
    make_recs_placement()
    data = trained_shop[0]
    # When the page passes the item as context
    block = _recs(client, attributes={"item": "sku-3"})
    # Then the block lists items similar to it (mostly of its taste cluster), not itself
    skus = block["data"]["recommendations"]["items"]
    assert block["reason"] == "default;recommendations:similar"
    assert "sku-3" not in skus
    assert len(skus) == 4
    same = [data.item_cluster[int(s.split("-")[1])] == data.item_cluster[3] for s in skus]
    assert sum(same) >= 3


@pytest.mark.django_db
def test_decide__item_nobody_interacted_with__similar_by_category(
    client, trained_shop, django_capture_on_commit_callbacks
):
    # Given a new item in category cat-1 that nobody has interacted with, added after training
    make_recs_placement()
    with django_capture_on_commit_callbacks(execute=True):
        Item.objects.create(sku="new-1", title="New", category="cat-1")
    block = _recs(client, attributes={"item": "new-1"})
    # Then its page shows popular items of its category
    assert block["reason"] == "default;recommendations:similar:category"
    run = TrainingRun.objects.get(pk=trained_shop[1].pk)
    assert block["data"]["recommendations"]["items"] == run.popular["by_category"]["cat-1"][:4]


@pytest.mark.django_db
def test_decide__recommendations_block_steady_state__no_query_and_no_extra_redis_command(
    client, trained_shop, django_assert_num_queries, redis_client, settings, frozen_rate_window
):
    # Given a plain placement and a recommendations placement, both warm, and snapshot checks
    # pushed out of the measured window; the rate limit's batched reports too (a client limit
    # whose batch exceeds the calls made here, in one frozen window): they are amortised over
    # calls, so a report falling in one window and not the other would say nothing of the block
    settings.MOSAIC_CLIENT_RATE_LIMIT_PER_MINUTE = 1_000_000
    from personalization.snapshot import holder
    from tests.factories import make_placement

    make_placement("hero")
    make_recs_placement()
    _recs(client)
    client.get(URL, {"placements": "hero", "visitor": "visitor-0"})
    holder.check_interval = 3600
    try:

        def commands(placement):
            before = redis_client.info("stats")["total_commands_processed"]
            for _ in range(20):
                client.get(URL, {"placements": placement, "visitor": "visitor-0"})
            # minus the INFO call that measured it
            return redis_client.info("stats")["total_commands_processed"] - before - 1

        # When deciding repeatedly with and without the block
        with django_assert_num_queries(0):
            with_block = commands("recs")
        without_block = commands("hero")
    finally:
        holder.check_interval = 0.5
    # Then the block adds no database query and no Redis command
    assert with_block == without_block


@pytest.mark.django_db
def test_decide__template_tries_to_change_a_shared_item__refused_next_decision_intact(
    client, trained_shop
):
    # Given a recommendations block whose template tries to rewrite the first item's title
    from content.models import BlockType
    from personalization.snapshot import holder

    make_recs_placement()
    BlockType.objects.filter(key="recommendations").update(
        template='{% set _ = items[0].update({"title": "hacked"}) %}{{ items[0].title }}'
    )
    holder.reset()
    # When deciding / Then the render fails (read-only item) and nothing shared was changed
    block = _recs(client)
    assert "hacked" not in block["html"]
    first = _row().items[0]
    from recommendations import serving

    assert serving.state_for(holder.get().version).items[first]["title"] == f"Item {first[4:]}"
