"""Stored per-visitor values: one row per exposed visitor holding all the experiment's metrics
(`metric_values`), instead of one row per visitor and metric; on PostgreSQL the table is
partitioned by experiment (a recomputation from scratch builds an experiment's partition with one
parallel CREATE TABLE AS and swaps it in: see experiments.results).

Data path: the old rows are not converted (they are a cache of exposures and events). Every
experiment's ResultState is reset, so the next beat recomputes its values from scratch ("first
computation"), as `manage.py experiment_results --rebuild` would.
"""

import django.db.models.deletion
from django.db import migrations, models

import experiments.models

TABLE = "experiments_exposurevalue"
PARTITIONED = """
DROP TABLE experiments_exposurevalue;
CREATE TABLE experiments_exposurevalue (
    exposure_id bigint NOT NULL,
    experiment_id bigint NOT NULL,
    arm_key varchar(100) NOT NULL,
    metric_values double precision[] NOT NULL,
    PRIMARY KEY (exposure_id, experiment_id)
) PARTITION BY LIST (experiment_id);
"""


def partition_on_postgresql(apps, schema_editor):
    """The table Django created, replaced by one partitioned by experiment: the primary key
    must include the partition column (its leading exposure_id serves the cascades' lookups)."""
    if schema_editor.connection.vendor == "postgresql":
        # CreateModel's index on experiment_id is deferred to the end of the migration: not
        # wanted on the partitioned table (each partition holds one experiment).
        schema_editor.deferred_sql = [
            sql
            for sql in schema_editor.deferred_sql
            if not (hasattr(sql, "references_table") and sql.references_table(TABLE))
        ]
        schema_editor.execute(PARTITIONED)


def unpartition_on_postgresql(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP TABLE experiments_exposurevalue")
        schema_editor.create_model(apps.get_model("experiments", "ExposureValue"))


def reset_states(apps, schema_editor):
    """The next beat of every experiment recomputes its values from scratch."""
    apps.get_model("experiments", "ResultState").objects.update(
        as_of=None, fingerprint="", rebuilt_at=None
    )


class Migration(migrations.Migration):
    dependencies = [
        ("experiments", "0007_experiment_revisions"),
    ]

    operations = [
        migrations.DeleteModel(name="ExposureValue"),
        migrations.CreateModel(
            name="ExposureValue",
            fields=[
                (
                    "exposure",
                    models.OneToOneField(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="+",
                        serialize=False,
                        to="experiments.exposure",
                    ),
                ),
                ("arm_key", models.CharField(max_length=100)),
                ("metric_values", experiments.models.FloatListField()),
                (
                    "experiment",
                    models.ForeignKey(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="experiments.experiment",
                    ),
                ),
            ],
        ),
        migrations.RunPython(partition_on_postgresql, unpartition_on_postgresql),
        migrations.RunPython(reset_states, migrations.RunPython.noop),
    ]
