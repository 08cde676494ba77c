"""Profile, Event, ConsentRecord and AuditEntry, moved from segments with their tables (issue #12).

State only: each model keeps its `segments_*` table (Meta.db_table) and its data; segments 0012
removes them from segments' state and moves their content types here.
"""

import django.db.models.deletion
import django.utils.timezone
import uuid
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("segments", "0010_webhook_delivery_claim"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            # State only: the tables, columns, indexes and constraints stay as they are.
            state_operations=[
                migrations.CreateModel(
                    name="AuditEntry",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        (
                            "action",
                            models.CharField(
                                choices=[
                                    ("export", "Export"),
                                    ("erase", "Erase"),
                                    ("consent_change", "Consent change"),
                                    ("key_change", "API key change"),
                                    ("retention_purge", "Retention purge"),
                                    ("content_change", "Content change"),
                                    ("segment_change", "Segment change"),
                                    ("experiment_change", "Experiment change"),
                                ],
                                db_index=True,
                                max_length=32,
                            ),
                        ),
                        (
                            "actor",
                            models.CharField(
                                help_text='Username, or "api" for public endpoints.', max_length=150
                            ),
                        ),
                        (
                            "subject",
                            models.CharField(
                                db_index=True,
                                default="-",
                                help_text='Pseudonymous profile key, or "-" (none, or erased since).',
                                max_length=64,
                            ),
                        ),
                        (
                            "details",
                            models.JSONField(
                                blank=True, default=dict, help_text="Counts and choices only."
                            ),
                        ),
                        (
                            "created_at",
                            models.DateTimeField(db_index=True, default=django.utils.timezone.now),
                        ),
                    ],
                    options={
                        "verbose_name_plural": "audit entries",
                        "db_table": "segments_auditentry",
                        "ordering": ["-created_at", "-id"],
                    },
                ),
                migrations.CreateModel(
                    name="Profile",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        (
                            "key",
                            models.CharField(
                                help_text="HMAC-SHA256 of the visitor id (never the raw id).",
                                max_length=64,
                                unique=True,
                            ),
                        ),
                        (
                            "user_key",
                            models.CharField(
                                blank=True,
                                db_index=True,
                                default="",
                                help_text="HMAC of the user id.",
                                max_length=64,
                            ),
                        ),
                        ("traits", models.JSONField(blank=True, default=dict)),
                        (
                            "aggregates",
                            models.JSONField(
                                blank=True,
                                default=dict,
                                help_text="Behaviour aggregates kept current by ingestion.",
                            ),
                        ),
                        (
                            "consent",
                            models.JSONField(
                                blank=True,
                                default=dict,
                                help_text="Current consent per purpose (history: ConsentRecord).",
                            ),
                        ),
                        (
                            "scores",
                            models.JSONField(
                                blank=True,
                                default=dict,
                                help_text='Model scores by namespace, e.g. {"rfm": {"r": 5, "f": 4, "m": 3, ...}}; conditions read them as profile.rfm.r etc.',
                            ),
                        ),
                        ("first_seen", models.DateTimeField(default=django.utils.timezone.now)),
                        (
                            "last_seen",
                            models.DateTimeField(db_index=True, default=django.utils.timezone.now),
                        ),
                    ],
                    options={
                        "db_table": "segments_profile",
                        "ordering": ["-last_seen"],
                        "permissions": [
                            ("export_profile", "Can export a visitor's data"),
                            ("erase_profile", "Can erase a visitor from every store"),
                        ],
                    },
                ),
                migrations.CreateModel(
                    name="ConsentRecord",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        (
                            "purposes",
                            models.JSONField(
                                help_text='e.g. {"analytics": true, "personalization": false}'
                            ),
                        ),
                        ("source", models.CharField(blank=True, default="", max_length=64)),
                        ("policy_version", models.CharField(blank=True, default="", max_length=32)),
                        (
                            "gpc",
                            models.BooleanField(default=False, help_text="Sec-GPC: 1 was present."),
                        ),
                        (
                            "recorded_at",
                            models.DateTimeField(db_index=True, default=django.utils.timezone.now),
                        ),
                        (
                            "profile",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="consent_history",
                                to="profiles.profile",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "segments_consentrecord",
                        "ordering": ["-recorded_at"],
                    },
                ),
                migrations.CreateModel(
                    name="Event",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        (
                            "event_id",
                            models.UUIDField(
                                default=uuid.uuid4, help_text="Idempotency key.", unique=True
                            ),
                        ),
                        (
                            "type",
                            models.CharField(
                                choices=[
                                    ("page_view", "Page view"),
                                    ("product_view", "Product view"),
                                    ("add_to_cart", "Add to cart"),
                                    ("remove_from_cart", "Remove from cart"),
                                    ("purchase", "Purchase"),
                                    ("search", "Search"),
                                    ("custom", "Custom"),
                                ],
                                db_index=True,
                                max_length=32,
                            ),
                        ),
                        ("name", models.CharField(blank=True, default="", max_length=200)),
                        ("properties", models.JSONField(blank=True, default=dict)),
                        (
                            "value",
                            models.DecimalField(
                                blank=True, decimal_places=2, max_digits=14, null=True
                            ),
                        ),
                        ("currency", models.CharField(blank=True, default="", max_length=3)),
                        ("context", models.JSONField(blank=True, default=dict)),
                        ("occurred_at", models.DateTimeField(db_index=True)),
                        ("received_at", models.DateTimeField(default=django.utils.timezone.now)),
                        (
                            "profile",
                            models.ForeignKey(
                                db_constraint=False,
                                db_index=False,
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="events",
                                to="profiles.profile",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "segments_event",
                        "ordering": ["-occurred_at"],
                        "indexes": [
                            models.Index(
                                fields=["profile", "occurred_at"],
                                name="segments_ev_profile_e06f8e_idx",
                            )
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
