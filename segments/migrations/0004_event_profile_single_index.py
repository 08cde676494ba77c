"""Drop the index of Event.profile alone: the (profile, occurred_at) index starts with it.

Only the index goes. Django's own AlterField would also drop and re-add the foreign key, which
re-checks every stored event while it holds a lock on the table; the state change is recorded
separately. The name is Django's generated one, the same on PostgreSQL and SQLite.
"""

import django.db.models.deletion
from django.db import migrations, models

INDEX = "segments_event_profile_id_868f9f11"


class Migration(migrations.Migration):
    dependencies = [
        ("segments", "0003_pendingaggregate"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="event",
                    name="profile",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="events",
                        to="segments.profile",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    f'DROP INDEX IF EXISTS "{INDEX}"',
                    reverse_sql=(
                        f'CREATE INDEX IF NOT EXISTS "{INDEX}" ON "segments_event" ("profile_id")'
                    ),
                ),
            ],
        ),
    ]
