"""VisitorRecommendation.profile points at profiles.Profile (the same table): state only, the
foreign key constraint in the database is untouched.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("profiles", "0001_moved_from_segments"),
        ("recommendations", "0002_recommendations_block_type"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            # State only: the tables, columns, indexes and constraints stay as they are.
            state_operations=[
                migrations.AlterField(
                    model_name="visitorrecommendation",
                    name="profile",
                    field=models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="recommendation",
                        to="profiles.profile",
                    ),
                ),
            ],
            database_operations=[],
        ),
    ]
