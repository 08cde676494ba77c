"""Profiles, events, consent, the audit log (to profiles) and pending aggregates (to ingestion)
leave segments' state; their tables stay (issue #12).

State only, except the content types: their app label follows the model, so admin log entries
and permissions (which point at the content type) keep working under the new app.
"""

import django.db.models.deletion
from django.db import migrations, models

# model -> the app it moved to
MOVED = {
    "profile": "profiles",
    "event": "profiles",
    "consentrecord": "profiles",
    "auditentry": "profiles",
    "pendingaggregate": "ingestion",
}


def _relabel(apps, *, forward: bool) -> None:
    """Give the moved models' content types their new app label (or back).

    Renaming the row keeps its id, so permissions (and the groups and users holding them) and
    admin log entries follow. If a row under the target label exists already (a fresh database
    where access 0003 created both while the two states overlapped), the old row's permissions,
    grants and log entries are merged into it and the old row is deleted.
    """
    content_type = apps.get_model("contenttypes", "ContentType")
    permission = apps.get_model("auth", "Permission")
    log_entry = apps.get_model("admin", "LogEntry")
    for model, new_label in MOVED.items():
        source, target = ("segments", new_label) if forward else (new_label, "segments")
        old = content_type.objects.filter(app_label=source, model=model).first()
        if old is None:
            continue
        new = content_type.objects.filter(app_label=target, model=model).first()
        if new is None:
            old.app_label = target
            old.save(update_fields=["app_label"])
            continue
        for perm in permission.objects.filter(content_type=old):
            twin = permission.objects.filter(content_type=new, codename=perm.codename).first()
            if twin is None:
                perm.content_type = new
                perm.save(update_fields=["content_type"])
                continue
            for group in perm.group_set.all():
                group.permissions.add(twin)
            for user in perm.user_set.all():
                user.user_permissions.add(twin)
            perm.delete()
        log_entry.objects.filter(content_type=old).update(content_type=new)
        old.delete()
    content_type.objects.clear_cache()


def content_types_forward(apps, schema_editor) -> None:
    _relabel(apps, forward=True)


def content_types_backward(apps, schema_editor) -> None:
    _relabel(apps, forward=False)


class Migration(migrations.Migration):
    dependencies = [
        ("admin", "0003_logentry_add_action_flag_choices"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("ingestion", "0001_moved_from_segments"),
        ("identity", "0004_profile_moved_to_profiles"),
        ("profiles", "0001_moved_from_segments"),
        ("recommendations", "0003_profile_moved_to_profiles"),
        ("segments", "0011_segment_revisions"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            # State only: the tables, columns, indexes and constraints stay as they are.
            state_operations=[
                migrations.DeleteModel(
                    name="AuditEntry",
                ),
                migrations.RemoveField(
                    model_name="event",
                    name="profile",
                ),
                migrations.RemoveField(
                    model_name="pendingaggregate",
                    name="event",
                ),
                migrations.AlterField(
                    model_name="segmentmembershipchange",
                    name="profile",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="profiles.profile",
                    ),
                ),
                migrations.AlterField(
                    model_name="webhookdelivery",
                    name="profile",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="profiles.profile",
                    ),
                ),
                migrations.AlterField(
                    model_name="segmentmembership",
                    name="profile",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="memberships",
                        to="profiles.profile",
                    ),
                ),
                migrations.DeleteModel(
                    name="ConsentRecord",
                ),
                migrations.DeleteModel(
                    name="Event",
                ),
                migrations.DeleteModel(
                    name="PendingAggregate",
                ),
                migrations.DeleteModel(
                    name="Profile",
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(content_types_forward, content_types_backward),
    ]
