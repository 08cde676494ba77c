"""VisitorAlias.profile points at profiles.Profile (the same table): state only, the foreign key
constraint in the database is untouched.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("identity", "0003_traitdefinition_shareable"),
        ("profiles", "0001_moved_from_segments"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            # State only: the tables, columns, indexes and constraints stay as they are.
            state_operations=[
                migrations.AlterField(
                    model_name="visitoralias",
                    name="profile",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="aliases",
                        to="profiles.profile",
                    ),
                ),
            ],
            database_operations=[],
        ),
    ]
