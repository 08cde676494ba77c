"""Exposures carry their visitor's profile id (results join events on it instead of on the
64-character key through every profile: see experiments.results).

Data path: every existing exposure whose key has a profile is linked to it, in one statement
(one profile lookup by key per exposure: on a large table, a long migration); the rest are
linked later, when a profile with their key has an event a results beat looks at. The stored values do not change: they were computed through the same
key.
"""

import django.db.models.deletion
from django.db import migrations, models

LINK = """
UPDATE experiments_exposure
SET profile_id = (SELECT p.id FROM segments_profile p WHERE p.key = experiments_exposure.profile_key)
WHERE profile_id IS NULL
  AND EXISTS (SELECT 1 FROM segments_profile p WHERE p.key = experiments_exposure.profile_key)
"""


class Migration(migrations.Migration):
    dependencies = [
        ("experiments", "0008_exposure_values_per_visitor"),
        ("profiles", "0001_moved_from_segments"),
    ]

    operations = [
        migrations.AddField(
            model_name="exposure",
            name="profile",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                help_text="The visitor's profile, once one exists.",
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="experiment_exposures",
                to="profiles.profile",
            ),
        ),
        migrations.RunSQL(LINK, reverse_sql=migrations.RunSQL.noop, elidable=False),
        # After the link: the index holds only the exposures still without a profile.
        migrations.AddIndex(
            model_name="exposure",
            index=models.Index(
                condition=models.Q(("profile__isnull", True)),
                fields=["experiment"],
                name="exposure_unlinked",
            ),
        ),
    ]
