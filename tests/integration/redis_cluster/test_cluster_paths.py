"""Mosaic's Redis paths against a real 3-node Redis Cluster (and the single server, where a test
is parametrized over `redis_kind`): ingestion's two stages, decide with profiles from Redis,
rate limits, exposures and sticky arms, the snapshot version, time-due scheduling, erasure.

The test is the exercise itself: RedisCluster refuses any command, transaction or Lua script
whose keys are on more than one slot (RedisClusterException "... must map to the same key
slot", or CROSSSLOT from a node), so a path that used keys of different slots together fails.
"""

from __future__ import annotations

import json
import time

import pytest
from redis.cluster import RedisCluster
from redis.crc import key_slot
from redis.exceptions import RedisClusterException

from access import services as access_services
from core.pseudonym import pseudonymize
from core.redis import get_redis, is_cluster
from experiments import services as exposure_services
from experiments.models import Exposure
from experiments.services import ArmSpec, experiment_create, experiment_set_status
from personalization.snapshot import holder
from segments import services
from segments.models import Event, Profile
from segments.selectors import profile_cache_key
from tests.factories import event, ingest, make_placement, make_segment, make_variant

URL = "/api/v1/decide"
SHOP = "https://shop.example"


def decide(client, visitor: str, placement: str = "hero", **headers):
    response = client.get(URL, {"placements": placement, "visitor": visitor}, **headers)
    assert response.status_code == 200, response.content
    return response.json()["placements"][placement]


def test_cluster__cross_slot_script__refused(on_cluster):
    # Given the queue's and processing list's names from before the hash tags, on two slots
    legacy = [services.LEGACY_EVENT_QUEUE, services.LEGACY_EVENT_PROCESSING]
    assert key_slot(legacy[0].encode()) != key_slot(legacy[1].encode())
    r = get_redis()
    assert isinstance(r, RedisCluster)
    # When the take script is run over them, Then the cluster client refuses it: the harness
    # does catch a path that uses keys of different slots together
    with pytest.raises(RedisClusterException, match="same key slot"):
        r.register_script(services._TAKE_SCRIPT)(keys=legacy, args=[10])
    # And the names Mosaic uses share one slot, every lane's too
    names = [services.EVENT_QUEUE, *(p for p, _ in services.ingest_lanes())]
    assert len({key_slot(n.encode()) for n in names}) == 1


@pytest.mark.django_db
def test_ingestion__both_stages__profile_served_by_decide(redis_kind, client, settings):
    # Given a segment of buyers, a placement targeting it, and events of many visitors
    # queued through the API (their profile documents spread over the cluster's nodes)
    settings.MOSAIC_INGEST_LANES = 2
    make_segment("buyers", {"profile.aggregates.purchase_count": {"$gte": 1}})
    hero = make_placement("hero")
    make_variant(hero, "for-buyers", condition={"profile.segments": {"$in": ["buyers"]}})
    visitors = [f"cluster-visitor-{i}" for i in range(40)]
    batch = [event(v, "purchase", value="5.00") for v in visitors]
    response = client.post(
        "/api/v1/events", data=json.dumps({"events": batch}), content_type="application/json"
    )
    assert response.status_code == 202, response.content
    # When both stages run (stage 1 in two lanes, then stage 2)
    first = services.events_ingest_pending(max_events=25)
    ingest(max_events=100)
    # Then every event is stored once and each visitor's document is in Redis
    assert first.taken == 25
    assert Event.objects.count() == 40
    assert services.events_queue_length() == 0
    r = get_redis()
    documents = [r.get(profile_cache_key(pseudonymize(v))) for v in visitors]
    assert all(json.loads(doc)["segments"] == ["buyers"] for doc in documents)
    # And decide reads it (one GET through the profile cache) and targets the segment
    assert decide(client, visitors[0])["variant"] == "for-buyers"
    assert decide(client, "a-stranger")["variant"] == "default"
    # And on the cluster the documents really are spread over the nodes
    if is_cluster(r):
        owners = {r.get_node_from_key(profile_cache_key(pseudonymize(v))).name for v in visitors}
        assert len(owners) == 3


@pytest.mark.django_db
def test_events__queued_under_old_names__drained_after_upgrade(client, redis_client):
    # Given events left by the previous version on a single server: one queued, one in lane
    # 0's processing list of a crashed run (the names before the hash tags)
    redis_client.rpush(services.LEGACY_EVENT_QUEUE, json.dumps(event("old-queued")))
    redis_client.rpush(services.LEGACY_EVENT_PROCESSING, json.dumps(event("old-crashed")))
    services.events_enqueue(events=[event("new-queued")])
    assert services.events_queue_length() == 3
    # When stage 1 runs until the queue is empty
    while services.events_queue_length():
        ingest(max_events=100)
    # Then all three were stored, and nothing is left under any name
    stored = set(Profile.objects.values_list("key", flat=True))
    assert stored == {pseudonymize(v) for v in ("old-queued", "old-crashed", "new-queued")}
    assert not redis_client.exists(services.LEGACY_EVENT_QUEUE, services.LEGACY_EVENT_PROCESSING)


@pytest.fixture
def publishable(db, settings):
    settings.MOSAIC_REQUIRE_API_KEY = True
    settings.MOSAIC_CLIENT_RATE_LIMIT_PER_MINUTE = 5
    _, raw = access_services.api_key_create(
        name="web", kind="publishable", allowed_origins=[SHOP], rate_limit_per_minute=30
    )
    make_placement("hero")
    return raw


def test_rate_limit__client_and_key_counted_together(
    redis_kind, client, publishable, frozen_rate_window
):
    # Given a publishable key whose calls with the site's Origin count the caller and the key
    # in one script (two counters)
    def call(address):
        headers = {"HTTP_X_MOSAIC_KEY": publishable, "REMOTE_ADDR": address, "HTTP_ORIGIN": SHOP}
        return client.get(URL, {"placements": "hero", "visitor": "v"}, **headers).status_code

    # When one caller exceeds its share, Then it is refused; and the site's visitors together
    # are held to the key's limit
    assert [call("198.51.100.7") for _ in range(6)] == [200] * 5 + [429]
    answers = [call(f"203.0.113.{i}") for i in range(40)]
    assert answers.count(200) == 25  # the key's 30, less the first caller's 5
    assert set(answers[25:]) == {429}


@pytest.mark.django_db
def test_exposures__sticky_experiment__buffered_flushed_and_remembered(redis_kind, client):
    # Given a running sticky experiment on hero
    hero = make_placement("hero")
    variants = [make_variant(hero, f"v{i}", priority=500) for i in range(2)]
    arms = [
        ArmSpec(key=f"arm{i}", variant=v, weight=1, is_control=i == 0)
        for i, v in enumerate(variants)
    ]
    experiment = experiment_create(
        fields={"key": "exp", "name": "exp", "placement": hero, "sticky": True}, arms=arms
    )
    experiment_set_status(experiment=experiment, status="running")
    holder.reset()
    # When 30 visitors are served (their exposures land in several shards' buffers)
    served = {
        f"visitor-{i}": decide(client, f"visitor-{i}")["experiment"]["arm"] for i in range(30)
    }
    r = get_redis()
    assert exposure_services.exposures_buffered_count(r) == 30
    # Then a flush writes one row per visitor and empties every buffer
    result = exposure_services.exposures_flush(batch_size=7, max_batches=100)
    assert (result.written, result.remaining) == (30, 0)
    rows = dict(Exposure.objects.values_list("profile_key", "arm_key"))
    assert rows == {pseudonymize(v): arm for v, arm in served.items()}
    # And each visitor's arm is remembered in its sticky hash (read by a fresh process memory)
    exposure_services.sticky_memo.clear()
    for visitor, arm in served.items():
        assert exposure_services.sticky_arms(profile_key=pseudonymize(visitor)) == {"exp": arm}


@pytest.mark.django_db
def test_exposures__old_buffer_and_sticky_hash__still_used_after_upgrade(client, redis_client):
    # Given an exposure buffered and a sticky arm remembered by the previous version (single
    # server, names before the shards)
    hero = make_placement("hero")
    variants = [make_variant(hero, f"v{i}", priority=500) for i in range(2)]
    arms = [
        ArmSpec(key=f"arm{i}", variant=v, weight=1, is_control=i == 0)
        for i, v in enumerate(variants)
    ]
    experiment = experiment_create(
        fields={"key": "exp", "name": "exp", "placement": hero, "sticky": True}, arms=arms
    )
    experiment_set_status(experiment=experiment, status="running")
    holder.reset()
    old = pseudonymize("old-visitor")
    redis_client.rpush(
        exposure_services.LEGACY_BUFFER_KEY, json.dumps(["exp", "arm1", old, time.time()])
    )
    redis_client.hset(exposure_services.legacy_sticky_key(old), "exp", "arm1")
    # When the visitor comes back, Then the remembered arm is served
    assert decide(client, "old-visitor")["experiment"]["arm"] == "arm1"
    # And the old buffer is flushed with the new ones
    result = exposure_services.exposures_flush()
    assert result.remaining == 0
    assert Exposure.objects.get(profile_key=old).arm_key == "arm1"


@pytest.mark.django_db
def test_snapshot_and_time_due__on_cluster(on_cluster, client, django_capture_on_commit_callbacks):
    # Given a placement served once (the snapshot built at the version in Redis)
    hero = make_placement("hero")
    assert decide(client, "v")["variant"] == "default"
    # When a variant is added (its commit bumps the version), Then the next decision sees it
    with django_capture_on_commit_callbacks(execute=True):
        make_variant(hero, "new", priority=1)
    assert int(get_redis().get("mosaic:snapshot:version") or 0) >= 1
    holder._checked_at = 0.0  # past the holder's check interval: it reads the version now
    assert decide(client, "v")["variant"] == "new"
    # And the time-due schedule (a sorted set and its unschedule script) works on the cluster
    services.events_enqueue(events=[event("timed")])
    ingest(max_events=10)
    profile = Profile.objects.get(key=pseudonymize("timed"))
    services.time_due_schedule(due={profile.pk: time.time() - 1})
    result = services.profiles_refresh_time_due(max_profiles=10)
    assert (result.due, result.refreshed) == (1, 1)
    assert get_redis().zscore(services.TIME_DUE, str(profile.pk)) is None


@pytest.mark.django_db
def test_erase__visitor_on_every_node__gone_from_the_cluster(redis_kind, admin_client, client):
    # Given a visitor with a profile document, a sticky arm and exposure keys, a queued event,
    # and bystanders whose documents are on the other nodes
    hero = make_placement("hero")
    variants = [make_variant(hero, f"v{i}", priority=500) for i in range(2)]
    arms = [
        ArmSpec(key=f"arm{i}", variant=v, weight=1, is_control=i == 0)
        for i, v in enumerate(variants)
    ]
    experiment = experiment_create(
        fields={"key": "exp", "name": "exp", "placement": hero, "sticky": True}, arms=arms
    )
    experiment_set_status(experiment=experiment, status="running")
    holder.reset()
    people = ["erase-me", *(f"bystander-{i}" for i in range(12))]
    services.events_enqueue(events=[event(v) for v in people])
    ingest(max_events=100)
    for v in people:
        decide(client, v)
    services.events_enqueue(events=[event("erase-me", "search"), event("bystander-0", "search")])
    key = pseudonymize("erase-me")
    r = get_redis()
    named = [k.decode() for k in r.scan_iter(match=f"*{key}*")]
    assert len(named) >= 3  # document, sticky hash, exposure dedupe key
    # When a staff user erases the visitor
    response = admin_client.delete("/api/v1/profiles/erase-me")
    assert response.status_code == 200, response.content
    assert response.json()["counts"]["redis_pending_items"] >= 1
    # Then no key on any node names them, and no list item holds them
    assert list(r.scan_iter(match=f"*{key}*")) == []
    for name in r.scan_iter(match="mosaic:*", _type="list"):
        assert not any(key in raw.decode() for raw in r.lrange(name, 0, -1)), name
    # And the bystanders are untouched
    assert r.get(profile_cache_key(pseudonymize("bystander-3"))) is not None
    assert services.events_queue_length() == 1
    if is_cluster(r):
        # And every primary was asked to rewrite its own append-only file
        from segments.privacy import persistence_rewrite

        assert persistence_rewrite() == "rewrite_started"
