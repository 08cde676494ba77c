"""Migrating a populated database across the move of profiles, events, consent, the audit log
(segments -> profiles) and pending aggregates (segments -> ingestion): the tables stay, the data
stays, foreign keys from the other apps resolve, content types and their permissions follow."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from identity.models import VisitorAlias
from ingestion.models import PendingAggregate
from profiles.models import AuditEntry, Event, Profile
from recommendations.models import VisitorRecommendation
from segments.models import SegmentMembership, SegmentMembershipChange, WebhookDelivery

# The last state of every app the move touches before it (main before issue #12's move).
BEFORE = [
    ("segments", "0011_segment_revisions"),
    ("identity", "0003_traitdefinition_shareable"),
    ("recommendations", "0002_recommendations_block_type"),
    ("profiles", None),
    ("ingestion", None),
]
OCCURRED = datetime(2026, 11, 2, 10, 30, tzinfo=UTC)
KEY_A, KEY_B = "a" * 64, "b" * 64


def _migrate(targets) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    ContentType.objects.clear_cache()
    return MigrationExecutor(connection)


def _state_apps(executor: MigrationExecutor):
    """The models as the applied migrations define them."""
    return executor.loader.project_state(list(executor.loader.applied_migrations)).apps


def _latest() -> list[tuple[str, str]]:
    return MigrationExecutor(connection).loader.graph.leaf_nodes()


def _populate(apps) -> dict[str, object]:
    """Rows of every moved model and of every model pointing at one, written through the
    models as they were before the move (the migration state `BEFORE`)."""
    profile_model = apps.get_model("segments", "Profile")
    a = profile_model.objects.create(key=KEY_A, traits={"plan": "pro"}, consent={"analytics": True})
    b = profile_model.objects.create(key=KEY_B)
    event_model = apps.get_model("segments", "Event")
    stored = event_model.objects.create(
        profile=a,
        event_id=uuid.uuid4(),
        type="purchase",
        value=Decimal("12.50"),
        properties={"category": "shoes"},
        occurred_at=OCCURRED,
    )
    pending_event = event_model.objects.create(
        profile=b, event_id=uuid.uuid4(), type="page_view", occurred_at=OCCURRED
    )
    apps.get_model("segments", "PendingAggregate").objects.create(
        event=pending_event,
        profile_id=b.pk,
        event_uuid=pending_event.event_id,
        type="page_view",
        occurred_us=1_793_000_000_000_000,
        value=None,
        category=None,
    )
    apps.get_model("segments", "ConsentRecord").objects.create(
        profile=a, purposes={"analytics": True, "personalization": False}, source="banner"
    )
    apps.get_model("segments", "AuditEntry").objects.create(
        action="consent_change", actor="api", subject=KEY_A, details={"analytics": True}
    )
    segment = apps.get_model("segments", "Segment").objects.create(key="buyers", name="Buyers")
    apps.get_model("segments", "SegmentMembership").objects.create(segment=segment, profile=a)
    apps.get_model("segments", "SegmentMembershipChange").objects.create(
        segment=segment, profile=a, event="entered"
    )
    trigger = apps.get_model("segments", "SegmentTrigger").objects.create(
        segment=segment, url="https://hooks.example.com/in", secret="s" * 64
    )
    apps.get_model("segments", "WebhookDelivery").objects.create(
        trigger=trigger, profile=a, event="entered", body="{}"
    )
    apps.get_model("identity", "VisitorAlias").objects.create(alias_key="c" * 64, profile=a)
    run = apps.get_model("recommendations", "TrainingRun").objects.create()
    apps.get_model("recommendations", "VisitorRecommendation").objects.create(
        profile=b, run=run, items=["sku-1"]
    )
    # A role holding a moved model's permission, and an admin log entry about a profile.
    content_type = apps.get_model("contenttypes", "ContentType")
    profile_type = content_type.objects.get(app_label="segments", model="profile")
    export = apps.get_model("auth", "Permission").objects.get(
        content_type=profile_type, codename="export_profile"
    )
    group = apps.get_model("auth", "Group").objects.create(name="Officers (before the move)")
    group.permissions.add(export)
    user = apps.get_model("auth", "User").objects.create(username="officer")
    apps.get_model("admin", "LogEntry").objects.create(
        user=user,
        content_type=profile_type,
        object_id=str(a.pk),
        object_repr="profile",
        action_flag=CHANGE,
        change_message="[]",
    )
    return {"a": a.pk, "b": b.pk, "stored": stored.pk, "pending": pending_event.pk}


@pytest.mark.django_db(transaction=True)
def test_migrate__populated_database_across_the_move__every_row_readable_through_new_models():
    # Given a database at the state before the move, with rows in every moved table and in
    # every table pointing at one
    try:
        executor = _migrate(BEFORE)
        ids = _populate(_state_apps(executor))

        # When it is migrated to the latest state
        _migrate(_latest())

        # Then every row is there through the new models, and the foreign keys resolve
        a, b = Profile.objects.get(pk=ids["a"]), Profile.objects.get(pk=ids["b"])
        assert (a.key, a.traits, a.consent) == (KEY_A, {"plan": "pro"}, {"analytics": True})
        stored = Event.objects.get(pk=ids["stored"])
        assert (stored.profile, stored.type, stored.value) == (a, "purchase", Decimal("12.50"))
        assert stored.occurred_at == OCCURRED
        pending = PendingAggregate.objects.get(pk=ids["pending"])
        assert (pending.event.profile, pending.profile_id) == (b, b.pk)
        assert [r.source for r in a.consent_history.all()] == ["banner"]
        assert AuditEntry.objects.get().subject == KEY_A
        assert list(a.memberships.values_list("segment__key", flat=True)) == ["buyers"]
        assert SegmentMembership.objects.get().profile == a
        assert SegmentMembershipChange.objects.get().profile == a
        assert WebhookDelivery.objects.get().profile == a
        assert VisitorAlias.objects.get().profile == a
        assert VisitorRecommendation.objects.get().profile == b
        assert a.aliases.get().alias_key == "c" * 64
        # ... the content types moved with their models: the group keeps its permission under
        # the new app label, the admin's log entry still finds its profile
        assert ContentType.objects.get_for_model(Profile).app_label == "profiles"
        assert ContentType.objects.get_for_model(PendingAggregate).app_label == "ingestion"
        assert not ContentType.objects.filter(app_label="segments", model="profile").exists()
        group = Group.objects.get(name="Officers (before the move)")
        assert list(group.permissions.values_list("content_type__app_label", "codename")) == [
            ("profiles", "export_profile")
        ]
        assert LogEntry.objects.get().get_edited_object() == a

        # When it is migrated back to the state before the move
        executor = _migrate(BEFORE)

        # Then the old models read the same rows, and the content types are segments' again
        apps = _state_apps(executor)
        old_profile = apps.get_model("segments", "Profile")
        assert old_profile.objects.get(pk=ids["a"]).key == KEY_A
        old_event = apps.get_model("segments", "Event").objects.get(pk=ids["stored"])
        assert old_event.profile_id == ids["a"]
        assert apps.get_model("segments", "PendingAggregate").objects.count() == 1
        assert apps.get_model("identity", "VisitorAlias").objects.get().profile.key == KEY_A
        assert ContentType.objects.filter(app_label="segments", model="profile").exists()
        assert not ContentType.objects.filter(app_label="profiles").exists()
    finally:
        # Leave the test database at the latest state for the tests that follow.
        _migrate(_latest())
