"""Data paths of experiments' migrations for an existing installation: 0008 (per-visitor value
rows, partitioned on PostgreSQL) resets every experiment's result state, so that the next beat
recomputes the values from scratch; 0009 (exposures carry their profile id) links every exposure
whose key has a profile."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

BEFORE = [("experiments", "0007_experiment_revisions")]
AFTER = [("experiments", "0008_exposure_values_per_visitor")]
BEFORE_0009 = [*AFTER, ("profiles", "0001_moved_from_segments")]
AFTER_0009 = [("experiments", "0009_exposure_profile")]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_migration_0008__computed_experiment__state_reset_and_old_rows_gone(hero):
    # Given an experiment with a computed state and old-layout value rows (one per metric)
    apps = _migrate(BEFORE)
    try:
        Experiment = apps.get_model("experiments", "Experiment")
        Exposure = apps.get_model("experiments", "Exposure")
        Metric = apps.get_model("experiments", "Metric")
        OldValue = apps.get_model("experiments", "ExposureValue")
        State = apps.get_model("experiments", "ResultState")
        experiment = Experiment.objects.create(key="old", name="Old", placement_id=hero.pk)
        metric = Metric.objects.create(key="m", name="M", event_type="purchase")
        exposure = Exposure.objects.create(
            experiment=experiment,
            arm_key="a",
            profile_key="p" * 64,
            first_exposed_at=timezone.now(),
        )
        OldValue.objects.create(
            experiment=experiment, exposure=exposure, metric=metric, arm_key="a", post=1, second=0
        )
        State.objects.create(
            experiment=experiment,
            as_of=timezone.now(),
            fingerprint="f" * 64,
            rebuilt_at=timezone.now(),
        )
        # When the migration runs
        apps = _migrate(AFTER)
        # Then the state asks for a first computation (from scratch) and no old row is left
        state = apps.get_model("experiments", "ResultState").objects.get(
            experiment_id=experiment.pk
        )
        assert (state.as_of, state.fingerprint, state.rebuilt_at) == (None, "", None)
        assert not apps.get_model("experiments", "ExposureValue").objects.exists()
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT relkind FROM pg_class WHERE relname = 'experiments_exposurevalue'"
                )
                assert cursor.fetchone()[0] == "p"  # partitioned
    finally:
        _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_migration_0009__existing_exposures__linked_where_a_profile_has_their_key(hero):
    # Given exposures of two visitors, one of whom has a profile
    apps = _migrate(BEFORE_0009)
    try:
        Experiment = apps.get_model("experiments", "Experiment")
        Exposure = apps.get_model("experiments", "Exposure")
        Profile = apps.get_model("profiles", "Profile")
        experiment = Experiment.objects.create(key="old", name="Old", placement_id=hero.pk)
        profile = Profile.objects.create(key="k" * 64)
        for key in ("k" * 64, "n" * 64):
            Exposure.objects.create(
                experiment=experiment, arm_key="a", profile_key=key, first_exposed_at=timezone.now()
            )
        # When the migration runs
        apps = _migrate(AFTER_0009)
        # Then the exposure with a profile is linked to it, the other waits for one
        linked = dict(
            apps.get_model("experiments", "Exposure").objects.values_list(
                "profile_key", "profile_id"
            )
        )
        assert linked == {"k" * 64: profile.pk, "n" * 64: None}
    finally:
        _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
