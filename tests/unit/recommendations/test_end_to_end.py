"""End to end with a real Celery worker: events -> training -> Redis -> decide shows the block."""

from __future__ import annotations

import json

import pytest

from core.pseudonym import pseudonymize
from profiles.models import Event
from recommendations.models import RunStatus, TrainingRun
from tests.conftest import start_worker, wait_for
from tests.factories import event

from .conftest import make_recs_placement, seed_shop

pytestmark = [pytest.mark.worker, pytest.mark.slow]


@pytest.fixture
def recs_worker(redis_url, transactional_db, tmp_path):
    """A real worker with a short tuning budget (the environment reaches its settings)."""
    worker = start_worker(redis_url, tmp_path / "worker.log", MOSAIC_RECS_TUNING_SECONDS="3")
    yield worker
    worker.process.terminate()
    worker.process.wait(timeout=30)


def train_through_api(admin_client, worker) -> TrainingRun:
    """Requests training through the API and waits for the worker's run; it must be active."""
    response = admin_client.post(
        "/api/v1/recommendations/train", "{}", content_type="application/json"
    )
    assert response.status_code == 202, response.content
    run = wait_for(
        lambda: TrainingRun.objects.exclude(status=RunStatus.RUNNING).first(),
        timeout=240,
        message=worker.output(),
    )
    assert run.status == RunStatus.ACTIVE, run.note
    return run


def recs_block_when(client, worker, visitor: str, *, reason: str) -> dict:
    """The visitor's recommendations block once decide serves it for `reason` (the worker's
    results reach Redis asynchronously)."""

    def block():
        answer = client.get("/api/v1/decide", {"placements": "recs", "visitor": visitor}).json()
        served = answer["placements"]["recs"]
        return served if served["reason"].endswith(reason) else None

    return wait_for(block, message=worker.output())


@pytest.mark.django_db(transaction=True)
def test_events_training_redis_decide__real_worker__block_shows_the_visitors_tastes(
    client, admin_client, recs_worker
):
    # Given a shop with history (300 visitors, planted tastes) and a recommendations placement
    data = seed_shop()
    make_recs_placement()
    # and a new visitor whose product views, posted by the page, are all in one taste cluster
    cluster = 1
    skus = [f"sku-{i}" for i in range(60) if data.item_cluster[i] == cluster][:8]
    batch = {"events": [event("eve", "product_view", properties={"sku": s}) for s in skus]}
    response = client.post("/api/v1/events", json.dumps(batch), content_type="application/json")
    assert response.status_code == 202
    eve = pseudonymize("eve")
    wait_for(
        lambda: Event.objects.filter(profile__key=eve).count() == 8, message=recs_worker.output()
    )
    before = client.get("/api/v1/decide", {"placements": "recs", "visitor": "eve"}).json()
    assert before["placements"]["recs"]["reason"].endswith("popularity:cold_start")

    # When training is requested through the API and the worker runs it
    run = train_through_api(admin_client, recs_worker)

    # Then decide (from the profile document in Redis) shows eve's own recommendations
    block = recs_block_when(client, recs_worker, "eve", reason="recommendations:als")
    served = block["data"]["recommendations"]["items"]
    assert block["data"]["recommendations"]["run"] == run.pk
    in_cluster = [data.item_cluster[int(s.split("-")[1])] == cluster for s in served]
    assert sum(in_cluster) >= 3, served
    for sku in served:
        assert f'data-sku="{sku}"' in block["html"]


@pytest.mark.django_db(transaction=True)
def test_segment_member_without_history__real_worker__block_shows_the_segments_popular_items(
    client, admin_client, recs_worker
):
    # Given a shop with history and segment club-0 whose members are taste group 0's visitors
    from profiles.models import Profile
    from segments.models import SegmentMembership
    from tests.factories import make_segment

    data = seed_shop()
    make_recs_placement()
    club = make_segment("club-0", {"profile.traits.club": "zero"})
    group0 = [pseudonymize(f"visitor-{u}") for u in range(300) if data.user_group[u] == 0]
    members = Profile.objects.filter(key__in=group0)
    members.update(traits={"club": "zero"})
    SegmentMembership.objects.bulk_create(
        [SegmentMembership(segment=club, profile=p) for p in members]
    )
    # and a new visitor, sam, who joins it through the traits API and has no behaviour at all
    response = client.post(
        "/api/v1/traits",
        json.dumps({"visitor": "sam", "traits": {"club": "zero"}}),
        content_type="application/json",
    )
    assert response.status_code in (200, 201), response.content
    before = client.get("/api/v1/decide", {"placements": "recs", "visitor": "sam"}).json()
    assert before["placements"]["recs"]["reason"].endswith("popularity:cold_start")

    # When the worker trains (requested through the API)
    run = train_through_api(admin_client, recs_worker)

    # Then sam's block shows club-0's popular items (mostly group 0's taste), saying so
    block = recs_block_when(
        client, recs_worker, "sam", reason="recommendations:popularity:segment:club-0"
    )
    served = block["data"]["recommendations"]["items"]
    assert served == run.popular["by_segment"]["club-0"]["items"][:4]
    assert sum(data.item_cluster[int(s.split("-")[1])] == 0 for s in served) >= 3, served
    # while a visitor in no segment still gets the global bestsellers
    other = client.get("/api/v1/decide", {"placements": "recs", "visitor": "nobody"}).json()
    assert other["placements"]["recs"]["reason"].endswith("popularity:cold_start")
