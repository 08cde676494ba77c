"""Migration 0009 (exposures carry their profile id): its data path links every existing
exposure whose key has a profile, and leaves the others for the results beat."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

BEFORE = [
    ("experiments", "0008_exposure_values_per_visitor"),
    ("profiles", "0001_moved_from_segments"),
]
AFTER = [("experiments", "0009_exposure_profile")]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_migration_0009__existing_exposures__linked_where_a_profile_has_their_key(hero):
    # Given exposures of two visitors, one of whom has a profile
    apps = _migrate(BEFORE)
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
        apps = _migrate(AFTER)
        # Then the exposure with a profile is linked to it, the other waits for one
        linked = dict(
            apps.get_model("experiments", "Exposure").objects.values_list(
                "profile_key", "profile_id"
            )
        )
        assert linked == {"k" * 64: profile.pk, "n" * 64: None}
    finally:
        _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
