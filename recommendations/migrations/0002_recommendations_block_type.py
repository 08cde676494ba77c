"""The "recommendations" block type: decide gives its template the items (see decide.py)."""

from django.db import migrations

from recommendations.block import DESCRIPTION, SCHEMA, TEMPLATE


def create(apps, schema_editor):
    BlockType = apps.get_model("content", "BlockType")
    BlockType.objects.get_or_create(
        key="recommendations",
        defaults={
            "name": "Recommendations",
            "description": DESCRIPTION,
            "template": TEMPLATE,
            "schema": SCHEMA,
        },
    )


def remove(apps, schema_editor):
    apps.get_model("content", "BlockType").objects.filter(key="recommendations").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("recommendations", "0001_initial_catalog_runs"),
        ("content", "0002_block_types_and_revisions"),
    ]

    operations = [migrations.RunPython(create, remove)]
