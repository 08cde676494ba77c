"""Incremental results: beats over arriving exposures and events (late flushes, late events,
open and closed attribution windows, CUPED pre-period events) give exactly the sums of the direct
computation from exposures and events; recomputation from scratch; erasure; the management
command."""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone

from experiments.models import (
    ExperimentMetric,
    ExperimentStatus,
    Exposure,
    ExposureValue,
    Metric,
    ResultSnapshot,
    ResultState,
)
from experiments.results import (
    REBUILD_WORK_MEM,
    _exposures,
    _linked_metrics,
    _postgres_per_visitor,
    results_aggregates_direct,
    results_aggregates_stored,
    results_compute,
    results_values_refresh,
)
from experiments.services import ArmSpec, experiment_create, experiment_set_status
from profiles.models import Event, Profile
from tests.unit.experiments.conftest import make_metrics

# Values whose sums and squares are exact in binary floating point, so that the order in which
# the database adds them cannot matter and the comparison below can be exact.
VALUES = (Decimal("10"), Decimal("20"), Decimal("35.5"), Decimal("0.25"))
STEP = timedelta(hours=12)


@pytest.fixture
def running(hero):
    variants = list(hero.variants.exclude(key="default").order_by("key"))
    experiment = experiment_create(
        fields={"key": "exp", "name": "Exp", "placement": hero},
        arms=[
            ArmSpec("control", variants[0], 1, True),
            ArmSpec("treat", variants[1], 1, False),
            ArmSpec("treat2", variants[2], 1, False),
        ],
    )
    experiment = experiment_set_status(experiment=experiment, status=ExperimentStatus.RUNNING)
    experiment.analysis_started_at = timezone.now() - timedelta(days=20)
    experiment.save()
    metrics = make_metrics()
    roles = {"purchase": "primary", "revenue": "secondary", "aov": "secondary"}
    roles["bounce"] = "guardrail"
    for key, role in roles.items():
        ExperimentMetric.objects.create(experiment=experiment, metric=metrics[key], role=role)
    return experiment


def _stored(experiment, as_of):
    exposures = _exposures(experiment, as_of)
    counts = dict(exposures.values_list("arm_key").annotate(n=Count("id")).order_by())
    return results_aggregates_stored(experiment=experiment, counts=counts)


def _purchases(snapshot) -> dict[str, float]:
    """arm → the purchase metric's sum in the snapshot."""
    purchase = next(m for m in snapshot.data["metrics"] if m["key"] == "purchase")
    return {row["arm"]: row["sum"] for row in purchase["arms"]}


def _assert_stored_equal_direct(experiment) -> None:
    now = timezone.now()
    assert _stored(experiment, now) == results_aggregates_direct(experiment=experiment, as_of=now)


class Traffic:
    """Arriving data for beat after beat, as of `now` (simulated time)."""

    def __init__(self, experiment, seed: int, arms=("control", "treat", "treat2"), prefix="v"):
        self.experiment = experiment
        self.rng = random.Random(seed)
        self.arms = list(arms)
        self.prefix = prefix
        self.visitors: list[tuple[Profile, object]] = []  # (profile, first exposure)

    def _event(self, profile, at, *, received):
        rng = self.rng
        if rng.random() < 0.7:
            return Event(
                profile=profile,
                type="purchase",
                value=rng.choice(VALUES),
                occurred_at=at,
                received_at=received,
            )
        return Event(
            profile=profile,
            type="custom",
            name="bounce",
            properties={"page": rng.choice(["home", "cart"])},
            occurred_at=at,
            received_at=received,
        )

    def arrive(self, now, previous, received):
        """New visitors exposed since `previous` (some flushed late, with an exposure time
        before it), events of recent visitors (some after `now`: counted by a later beat),
        late events of visitors whose windows have long closed, pre-exposure events."""
        rng = self.rng
        events = []
        for i in range(rng.randint(15, 30)):
            late_flush = rng.random() < 0.15
            at = previous - timedelta(hours=rng.uniform(0.1, 3)) if late_flush else None
            at = at or previous + timedelta(seconds=rng.uniform(0, STEP.total_seconds()))
            profile = Profile.objects.create(
                key=f"{self.prefix}{len(self.visitors):06d}-{i}".ljust(64, "x")
            )
            Exposure.objects.create(
                experiment=self.experiment,
                arm_key=rng.choice(self.arms),
                profile_key=profile.key,
                first_exposed_at=at,
            )
            self.visitors.append((profile, at))
            if rng.random() < 0.3:  # CUPED window: before the first exposure
                events.append(
                    self._event(profile, at - timedelta(days=rng.uniform(0, 16)), received=received)
                )
        for profile, first in rng.sample(self.visitors, min(len(self.visitors), 25)):
            # Anywhere from before exposure to beyond the widest window, or after `now`.
            at = first + timedelta(hours=rng.uniform(-30, 90))
            events.append(self._event(profile, at, received=received))
        old = [(p, f) for p, f in self.visitors if f < now - timedelta(days=4)]
        for profile, first in rng.sample(old, min(len(old), 4)):
            # Late: inside a window that closed days ago.
            events.append(
                self._event(profile, first + timedelta(hours=rng.uniform(0, 47)), received=received)
            )
        Event.objects.bulk_create(events)


@pytest.mark.django_db
def test_results__incremental_beats_over_arriving_data__equal_direct_computation(running):
    # Given an experiment whose data arrives between beats every 12 hours over 10 days
    traffic = Traffic(running, seed=7)
    start = running.analysis_started_at + timedelta(days=1)
    recomputed = []
    stored_rows = []
    for step in range(20):
        now = start + step * STEP
        # Events received in an earlier step are older than the watermark's grace period.
        Event.objects.update(received_at=timezone.now() - timedelta(days=1))
        traffic.arrive(now, now - STEP, received=timezone.now())
        # When the beat computes the results as of now
        snapshot = results_compute(experiment=running, as_of=now)
        # Then its sums equal, exactly, those computed directly from exposures and events
        assert _stored(running, now) == results_aggregates_direct(experiment=running, as_of=now)
        computation = snapshot.data["computation"]
        assert computation["mode"] == ("from scratch" if step == 0 else "incremental")
        recomputed.append(computation["visitors_recomputed"])
        stored_rows.append(ExposureValue.objects.filter(experiment=running).count())
    # And later beats recompute only a part of the visitors (the rest stays folded)
    total = Exposure.objects.filter(experiment=running).count()
    assert total > 300
    assert max(recomputed[10:]) < total / 2, recomputed
    assert stored_rows[-1] > 0
    # And the snapshots' statistics equal those of a computation from scratch
    final = results_compute(experiment=running, as_of=now + timedelta(minutes=1))
    scratch = results_compute(experiment=running, as_of=now + timedelta(minutes=1), rebuild=True)
    assert final.data["computation"]["mode"] == "incremental"
    assert scratch.data["computation"] == {
        "mode": "from scratch",
        "reason": "asked",
        "visitors_recomputed": None,
    }
    assert final.data["metrics"] == scratch.data["metrics"]
    # And the values recomputed from scratch sum, exactly, to the direct computation too
    later = now + timedelta(minutes=1)
    assert _stored(running, later) == results_aggregates_direct(experiment=running, as_of=later)


@pytest.mark.django_db
def test_results__event_within_grace__looked_at_again_next_beat(running):
    # Given a visitor whose window closed long ago and a first computation
    profile = Profile.objects.create(key="late".ljust(64, "x"))
    first = running.analysis_started_at + timedelta(hours=1)
    Exposure.objects.create(
        experiment=running, arm_key="treat", profile_key=profile.key, first_exposed_at=first
    )
    results_compute(experiment=running)
    # When a purchase inside that window arrives (received now, inside the grace period)
    Event.objects.create(
        profile=profile,
        type="purchase",
        value=Decimal("20"),
        occurred_at=first + timedelta(hours=2),
    )
    second = results_compute(experiment=running)
    # Then the next beat counts it, and the watermark stays below it, so that one more beat
    # looks at it again (an event committed late with a lower id would be caught the same way)
    assert second.data["computation"]["visitors_recomputed"] == 1
    assert _purchases(second)["treat"] == 1
    assert ResultState.objects.get(experiment=running).event_watermark < Event.objects.get().pk
    third = results_compute(experiment=running)
    assert third.data["computation"]["visitors_recomputed"] == 1


@pytest.mark.django_db
def test_results__exposed_before_profile_existed__linked_and_counted_when_events_arrive(running):
    # Given a visitor exposed before any profile of theirs existed, and a first computation
    key = "early".ljust(64, "x")
    first = running.analysis_started_at + timedelta(hours=1)
    Exposure.objects.create(
        experiment=running, arm_key="treat", profile_key=key, first_exposed_at=first
    )
    results_compute(experiment=running)
    assert Exposure.objects.get().profile_id is None
    # When their profile appears with a purchase inside the attribution window
    profile = Profile.objects.create(key=key)
    Event.objects.create(
        profile=profile,
        type="purchase",
        value=Decimal("20"),
        occurred_at=first + timedelta(hours=2),
    )
    snapshot = results_compute(experiment=running)
    # Then the beat links the exposure to the profile and counts the purchase for its arm
    assert Exposure.objects.get().profile_id == profile.pk
    assert snapshot.data["computation"]["mode"] == "incremental"
    assert snapshot.data["computation"]["visitors_recomputed"] == 1
    assert _purchases(snapshot)["treat"] == 1
    _assert_stored_equal_direct(running)


@pytest.mark.django_db
def test_results__visitor_merged_after_exposure__exposure_follows_to_the_survivor(running):
    # Given a signed-up user's profile, and an anonymous visitor exposed (and linked) later
    from core.pseudonym import pseudonymize
    from identity.services import visitor_identify

    user = Profile.objects.create(
        key=pseudonymize("device-1"),
        user_key=pseudonymize("user-1"),
        first_seen=running.analysis_started_at,
    )
    anonymous = Profile.objects.create(key=pseudonymize("device-2"))
    first = timezone.now() - timedelta(hours=3)
    exposure = Exposure.objects.create(
        experiment=running,
        arm_key="control",
        profile_key=anonymous.key,
        profile=anonymous,
        first_exposed_at=first,
    )
    results_compute(experiment=running)
    # When the visitor logs in (their profile merged into the user's) and buys, as that user
    visitor_identify(visitor="device-2", user_id="user-1")
    Event.objects.create(
        profile=user, type="purchase", value=Decimal("10"), occurred_at=first + timedelta(hours=1)
    )
    snapshot = results_compute(experiment=running)
    # Then the exposure now belongs to the surviving profile and the purchase counts for its arm
    exposure.refresh_from_db()
    assert exposure.profile_id == user.pk
    assert not Profile.objects.filter(pk=anonymous.pk).exists()
    assert _purchases(snapshot)["control"] == 1
    _assert_stored_equal_direct(running)


@pytest.mark.django_db
def test_results_sql__stored_values__events_joined_on_the_profile_id_not_through_keys(running):
    # Given the experiment's metrics
    metrics = _linked_metrics(running)
    # When the SQL of its stored values (from scratch and incremental) is built
    scratch, *_ = _postgres_per_visitor(
        experiment=running,
        metrics=metrics,
        as_of=timezone.now(),
        ids=None,
        with_events_only=True,
        grouped_by_exposure=True,
    )
    beat, *_ = _postgres_per_visitor(
        experiment=running, metrics=metrics, as_of=timezone.now(), ids=[1], with_events_only=True
    )
    direct, *_ = _postgres_per_visitor(
        experiment=running, metrics=metrics, as_of=timezone.now(), ids=None, unlinked_by_key=True
    )
    # Then neither joins the profiles (10 million text keys on each side, the join it replaced);
    # only the direct reference looks up unlinked exposures by key
    for sql in (scratch, beat):
        assert "segments_profile" not in sql
        assert "ev.profile_id = x.profile_id" in sql
    assert "segments_profile p ON x.profile_id IS NULL" in direct


@pytest.mark.django_db
def test_results__metric_window_changed__recomputed_from_scratch(running):
    # Given stored values
    traffic = Traffic(running, seed=3)
    now = running.analysis_started_at + timedelta(days=2)
    traffic.arrive(now, now - STEP, received=timezone.now())
    results_compute(experiment=running, as_of=now)
    # When a metric's attribution window changes
    metric = ExperimentMetric.objects.get(experiment=running, role="primary").metric
    metric.window_hours = 2
    metric.save()
    snapshot = results_compute(experiment=running, as_of=now)
    # Then the next computation starts from scratch and matches the direct computation
    assert snapshot.data["computation"]["mode"] == "from scratch"
    assert "metric" in snapshot.data["computation"]["reason"]
    assert _stored(running, now) == results_aggregates_direct(experiment=running, as_of=now)


@pytest.mark.django_db
def test_results__visitor_erased__stored_values_gone_and_sums_match(running):
    # Given stored values of several visitors
    from profiles.privacy import profile_erase

    traffic = Traffic(running, seed=5)
    now = running.analysis_started_at + timedelta(days=2)
    for step in range(3):
        traffic.arrive(now + step * STEP, now + (step - 1) * STEP, received=timezone.now())
    results_compute(experiment=running, as_of=now + 2 * STEP)
    exposure = ExposureValue.objects.filter(experiment=running).first().exposure
    erased = Profile.objects.get(key=exposure.profile_key)
    # When that visitor is erased
    result = profile_erase(profile_key=erased.key, actor="test")
    assert result.counts["exposures"] == 1
    # Then their stored values are gone and the next beat matches the direct computation
    assert not ExposureValue.objects.filter(exposure_id=exposure.pk).exists()
    later = now + 3 * STEP
    results_compute(experiment=running, as_of=later)
    assert _stored(running, later) == results_aggregates_direct(experiment=running, as_of=later)


@pytest.mark.django_db
def test_experiment_results_command__rebuild_and_check__from_scratch_and_equal(running, capsys):
    # Given an experiment whose windows have all closed, with stored values someone damaged
    traffic = Traffic(running, seed=11)
    now = timezone.now() - timedelta(days=8)
    traffic.arrive(now, now - STEP, received=timezone.now() - timedelta(days=1))
    results_compute(experiment=running)
    ExposureValue.objects.filter(experiment=running).update(metric_values=[99.0] * 8)
    # When the command checks, then rebuilds and checks again
    with pytest.raises(SystemExit):
        call_command("experiment_results", "exp", "--check")
    assert "differ" in capsys.readouterr().out
    call_command("experiment_results", "exp", "--rebuild", "--check")
    # Then a snapshot from scratch was stored and the check passes
    out = capsys.readouterr().out
    assert "from scratch (asked)" in out
    assert "stored sums equal the direct computation" in out
    snapshot = ResultSnapshot.objects.filter(experiment=running).first()
    assert snapshot.data["computation"]["mode"] == "from scratch"


@pytest.fixture
def second(running, promo_placement):
    """A second running experiment (other placement, two arms, three of the first's metrics)."""
    variants = list(promo_placement.variants.exclude(key="default").order_by("key"))
    experiment = experiment_create(
        fields={"key": "exp2", "name": "Exp2", "placement": promo_placement},
        arms=[ArmSpec("control", variants[0], 1, True), ArmSpec("treat", variants[1], 1, False)],
    )
    experiment = experiment_set_status(experiment=experiment, status=ExperimentStatus.RUNNING)
    experiment.analysis_started_at = running.analysis_started_at
    experiment.save()
    for key, role in (("revenue", "primary"), ("orders", "secondary"), ("bounce", "guardrail")):
        ExperimentMetric.objects.create(
            experiment=experiment, metric=Metric.objects.get(key=key), role=role
        )
    return experiment


def _partitions() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_class c WHERE c.relname LIKE 'experiments_exposurevalue_%%'"
            " AND c.relkind = 'r' ORDER BY c.relname"
        )
        return [row[0] for row in cursor.fetchall()]


@pytest.mark.django_db
def test_results__one_experiment_rebuilt__other_experiment_values_untouched(running, second):
    # Given two experiments with data and stored values (beats over a few steps)
    start = running.analysis_started_at + timedelta(days=1)
    first = Traffic(running, seed=13, prefix="a")
    other = Traffic(second, seed=17, arms=("control", "treat"), prefix="b")
    for step in range(3):
        now = start + step * STEP
        first.arrive(now, now - STEP, received=timezone.now() - timedelta(days=1))
        other.arrive(now, now - STEP, received=timezone.now() - timedelta(days=1))
        results_compute(experiment=running, as_of=now)
        results_compute(experiment=second, as_of=now)
    before = _stored(second, now)
    rows = ExposureValue.objects.filter(experiment=second).count()
    assert rows > 0
    # When the first is recomputed from scratch, twice (on PostgreSQL: its partition rebuilt
    # and swapped in each time)
    for _ in range(2):
        snapshot = results_compute(experiment=running, as_of=now, rebuild=True)
        assert snapshot.data["computation"]["mode"] == "from scratch"
    # Then both experiments' stored sums equal the direct computation, exactly, and the second's
    # stored values are the ones it had
    assert _stored(running, now) == results_aggregates_direct(experiment=running, as_of=now)
    assert _stored(second, now) == before
    assert before == results_aggregates_direct(experiment=second, as_of=now)
    assert ExposureValue.objects.filter(experiment=second).count() == rows
    # And each stored row holds two numbers per metric of its experiment
    assert {len(v.metric_values) for v in ExposureValue.objects.filter(experiment=running)} == {8}
    assert {len(v.metric_values) for v in ExposureValue.objects.filter(experiment=second)} == {6}
    if connection.vendor == "postgresql":
        # And one partition per experiment, no staging table left behind
        assert _partitions() == sorted(
            f"experiments_exposurevalue_p{e.pk}" for e in (running, second)
        )


@pytest.mark.django_db(transaction=True)  # a real transaction: SET LOCAL ends with it
@pytest.mark.parametrize("caller_hashagg", ["on", "off"])
def test_results_rebuild__postgresql_settings__hashagg_restored_and_rest_local(
    running, caller_hashagg
):
    # Given (PostgreSQL only: the rebuild turns hash aggregation off for its CREATE TABLE AS)
    # an experiment with traffic, and a caller's transaction with its own enable_hashagg
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's rebuild path")
    now = running.analysis_started_at + timedelta(days=1)
    Traffic(running, seed=23, prefix="h").arrive(
        now, now - STEP, received=timezone.now() - timedelta(days=1)
    )
    with connection.cursor() as cursor:
        cursor.execute("SHOW work_mem")
        session_work_mem = cursor.fetchone()[0]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL enable_hashagg = {caller_hashagg}")
        # When the values are recomputed from scratch in that transaction
        computation = results_values_refresh(experiment=running, as_of=now, rebuild=True)
        # Then the caller's enable_hashagg is back after the CREATE TABLE AS, while the
        # rebuild's other settings hold for the rest of the transaction
        cursor.execute("SHOW enable_hashagg")
        assert cursor.fetchone()[0] == caller_hashagg
        cursor.execute("SHOW jit")
        assert cursor.fetchone()[0] == "off"
        cursor.execute("SHOW work_mem")
        assert cursor.fetchone()[0] == REBUILD_WORK_MEM
    assert computation["mode"] == "from scratch"
    # And after the transaction the session's settings are its own again
    with connection.cursor() as cursor:
        cursor.execute("SHOW work_mem")
        assert cursor.fetchone()[0] == session_work_mem
        cursor.execute("SHOW enable_hashagg")
        assert cursor.fetchone()[0] == "on"
    # And the values (grouped from rows sorted by exposure) sum to the direct computation
    assert ExposureValue.objects.filter(experiment=running).count() > 0
    assert _stored(running, now) == results_aggregates_direct(experiment=running, as_of=now)
