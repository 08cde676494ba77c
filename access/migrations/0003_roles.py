"""The role groups (Editor, Analyst, Experimenter, Privacy officer, Admin) with their model
permissions, as declared in access/roles.py."""

from django.db import migrations


def create_roles(apps, schema_editor):
    from access.roles import roles_sync

    roles_sync(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("access", "0002_api_key_role"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("content", "0003_placement_revisions"),
        ("segments", "0006_audit_content_actions_privacy_permissions"),
        ("experiments", "0002_exposure"),
        ("identity", "0001_initial"),
    ]

    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]
