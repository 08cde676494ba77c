"""Exposures: buffered on decide (deduplicated, consent-gated, never blocking), then flushed."""

from __future__ import annotations

import json
import logging

import pytest

from core.pseudonym import pseudonymize
from experiments import services as exposure_services
from experiments.models import Exposure
from experiments.tasks import exposures_flush
from profiles import services as profile_services
from profiles.models import Profile
from tests.factories import make_experiment, make_placement

URL = "/api/v1/decide"


@pytest.fixture
def promo(db):
    placement = make_placement("promo")
    make_experiment(placement, "copy")
    return placement


def _served(client, visitor: str) -> dict:
    body = client.get(URL, {"placements": "promo", "visitor": visitor}).json()
    return body["placements"]["promo"]


def _buffer(redis_client) -> list[list]:
    return [
        json.loads(item)
        for name in exposure_services.BUFFER_KEYS
        for item in redis_client.lrange(name, 0, -1)
    ]


@pytest.mark.django_db
def test_decide__experiment_arm__exposure_buffered(client, promo, redis_client):
    # Given a running experiment on the placement
    # When a visitor is served one of its arms
    served = _served(client, "ann")
    # Then one exposure (experiment, arm, pseudonymous key) waits in the Redis buffer
    [(experiment, arm, profile_key, at)] = _buffer(redis_client)
    assert (experiment, arm) == ("copy", served["experiment"]["arm"])
    assert profile_key == pseudonymize("ann")
    assert at > 0


@pytest.mark.django_db
def test_decide__experiment_arm__exposure_logged_once(client, promo, redis_client):
    # Given a visitor already exposed
    _served(client, "ann")
    # When the same visitor is served the same arm again, several times
    for _ in range(3):
        _served(client, "ann")
    # Then the buffer holds one exposure for them; another visitor adds their own
    assert len(_buffer(redis_client)) == 1
    # (also across processes: another process's memory does not know the visitor, Redis does)
    exposure_services.exposures_recently_logged.clear()
    _served(client, "ann")
    assert len(_buffer(redis_client)) == 1
    _served(client, "bob")
    assert len(_buffer(redis_client)) == 2


@pytest.mark.django_db
def test_decide__no_analytics_consent__default_experience_no_exposure(client, promo, redis_client):
    # Given a visitor who refused analytics (but allows personalization)
    profile = profile_services.profile_set_traits(visitor="cy", traits={"tier": "gold"})
    Profile.objects.filter(pk=profile.pk).update(
        consent={"analytics": False, "personalization": True}
    )
    profile_services.profile_cache_write(profile_ids=[profile.pk])
    # When they ask for the experiment's placement
    served = _served(client, "cy")
    # Then they are not enrolled (the default experience) and nothing is logged (issue #14)
    assert served["experiment"] is None
    assert not served["reason"].startswith("experiment:")
    assert _buffer(redis_client) == []


@pytest.mark.django_db
def test_decide__targeted_or_default__no_exposure(client, db, redis_client):
    # Given a placement without an experiment
    make_placement("hero")
    # When deciding
    client.get(URL, {"placements": "hero", "visitor": "ann"})
    # Then nothing is logged as an exposure
    assert _buffer(redis_client) == []


@pytest.mark.django_db
def test_exposures_flush__writes_rows_idempotently(client, promo, redis_client):
    # Given three visitors exposed (one of them twice)
    arms = {v: _served(client, v)["experiment"]["arm"] for v in ("ann", "bob", "cy", "ann")}
    # When the flush task runs
    first = exposures_flush.apply().get()
    # Then one row per visitor, with the arm served, and the buffer is empty
    assert first["written"] == 3
    assert first["remaining"] == 0
    rows = {(e.profile_key, e.arm_key) for e in Exposure.objects.all()}
    assert rows == {(pseudonymize(v), arm) for v, arm in arms.items()}
    # When the same exposures are buffered again (e.g. a flush crashed before trimming) and flushed
    redis_client.delete(*redis_client.keys("mosaic:{exposures:*}:seen:*"))
    exposure_services.exposures_recently_logged.clear()
    for visitor in arms:
        _served(client, visitor)
    second = exposures_flush.apply().get()
    # Then nothing new is written: same rows, same first exposure time
    assert second["read"] == 3
    assert second["written"] == 0
    assert second["duplicates"] == 3
    assert {(e.profile_key, e.arm_key) for e in Exposure.objects.all()} == rows


@pytest.mark.django_db
def test_exposures_flush__visitor_with_profile__linked_to_it(client, promo, redis_client):
    # Given two exposed visitors, one of whom already has a profile
    Profile.objects.create(key=pseudonymize("ann"))
    for visitor in ("ann", "bob"):
        _served(client, visitor)
    # When the flush task runs
    exposures_flush.apply().get()
    # Then the exposure of the visitor with a profile carries its id, the other none yet
    linked = dict(Exposure.objects.values_list("profile_key", "profile_id"))
    assert linked == {
        pseudonymize("ann"): Profile.objects.get(key=pseudonymize("ann")).pk,
        pseudonymize("bob"): None,
    }


@pytest.mark.django_db
def test_exposures_flush__bounded_batches(client, promo, redis_client):
    # Given five exposures buffered
    for i in range(5):
        _served(client, f"v{i}")
    # When a flush is limited to two batches of two (four exposures, over the shards' buffers)
    result = exposures_flush.apply(kwargs={"batch_size": 2, "max_batches": 2}).get()
    # Then it wrote four and left one for the next run
    assert (result["read"], result["written"], result["remaining"]) == (4, 4, 1)
    assert exposures_flush.apply().get()["written"] == 1
    assert Exposure.objects.count() == 5


@pytest.mark.django_db
def test_exposures_flush__locked__skips(promo, redis_client):
    # Given another flush holds the lock
    redis_client.set(exposure_services.FLUSH_LOCK_KEY, "other", ex=60)
    # When a flush starts
    result = exposures_flush.apply().get()
    # Then it does nothing and says so
    assert result["skipped_locked"] == 1


@pytest.mark.django_db
def test_decide__redis_down__answers_and_counts_lost_exposure(client, promo, settings, caplog):
    # Given a warm snapshot, then Redis goes away
    _served(client, "warm")
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    before = exposure_services.exposures_lost.value
    # When a visitor is decided for
    with caplog.at_level(logging.WARNING, logger="experiments.services"):
        response = client.get(URL, {"placements": "promo", "visitor": "ann"})
    # Then the answer is still 200 with an arm, and the lost exposure is counted and logged
    assert response.status_code == 200
    assert response.json()["placements"]["promo"]["experiment"] is not None
    assert exposure_services.exposures_lost.value == before + 1
    assert "exposures: 1 lost" in caplog.text


@pytest.mark.django_db
def test_exposures_log__redis_error_on_write__counted_not_raised(promo, settings, caplog):
    # Given Redis unreachable at write time (the profile read had succeeded)
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    before = exposure_services.exposures_lost.value
    record = exposure_services.ExposureRecord("copy", "arm0", "k" * 64)
    # When exposures are logged
    with caplog.at_level(logging.WARNING, logger="experiments.services"):
        pushed = exposure_services.exposures_log(records=[record, record])
    # Then nothing raises, and both are counted as lost, visibly
    assert pushed == 0
    assert exposure_services.exposures_lost.value == before + 2
    assert "lost in this process so far" in caplog.text


@pytest.mark.django_db
def test_decide__experiment_arm__zero_database_queries(client, promo, django_assert_num_queries):
    # Given a warm snapshot
    _served(client, "ann")
    # When deciding (and buffering a new exposure)
    with django_assert_num_queries(0):
        served = _served(client, "bob")
    # Then the exposure went to Redis, not the database
    assert served["experiment"] is not None


@pytest.mark.django_db
def test_decide__template_syntax_error__falls_back_at_first_render(client, promo):
    # Given a targeted variant whose template does not compile (templates compile lazily now)
    from tests.factories import make_variant

    make_placement("side")
    from content.models import Placement

    make_variant(Placement.objects.get(key="side"), "broken", template="{% if %}", priority=1)
    # When deciding
    body = client.get(URL, {"placements": "side,promo", "visitor": "ann"}).json()
    # Then that placement falls back to its default, and the other placement is unaffected
    assert body["placements"]["side"]["variant"] == "default"
    assert body["placements"]["side"]["reason"] == "fallback:render_error"
    assert body["placements"]["promo"]["experiment"] is not None
