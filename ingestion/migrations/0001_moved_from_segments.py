"""PendingAggregate, moved from segments with its table (issue #12); state only."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("segments", "0010_webhook_delivery_claim"),
        ("profiles", "0001_moved_from_segments"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            # State only: the tables, columns, indexes and constraints stay as they are.
            state_operations=[
                migrations.CreateModel(
                    name="PendingAggregate",
                    fields=[
                        (
                            "event",
                            models.OneToOneField(
                                db_constraint=False,
                                on_delete=django.db.models.deletion.CASCADE,
                                primary_key=True,
                                related_name="+",
                                serialize=False,
                                to="profiles.event",
                            ),
                        ),
                        ("profile_id", models.BigIntegerField()),
                        ("event_uuid", models.UUIDField()),
                        ("type", models.CharField(max_length=32)),
                        ("occurred_us", models.BigIntegerField()),
                        ("value", models.DecimalField(decimal_places=2, max_digits=14, null=True)),
                        ("category", models.CharField(max_length=100, null=True)),
                    ],
                    options={
                        "db_table": "segments_pendingaggregate",
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
