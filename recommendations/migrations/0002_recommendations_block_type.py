"""The "recommendations" block type: decide gives its template the items (see decide.py)."""

from django.db import migrations

TEMPLATE = """<section class="mosaic-recs"><h3>{{ fields.title or "Recommended for you" }}</h3>
<ul class="mosaic-recs__items">{% for item in items %}
<li class="mosaic-recs__item" data-sku="{{ item.sku }}"><a href="{{ item.url }}">
{% if item.image_url %}<img src="{{ item.image_url }}" alt="">{% endif %}
<span class="mosaic-recs__title">{{ item.title }}</span>
<span class="mosaic-recs__price">{{ item.price_text }}</span></a></li>{% endfor %}
</ul></section>"""

SCHEMA = {
    "type": "object",
    "properties": {
        "title": {"type": "string", "maxLength": 200},
        "count": {"type": "integer", "minimum": 1, "maximum": 20},
    },
}


def create(apps, schema_editor):
    BlockType = apps.get_model("content", "BlockType")
    BlockType.objects.get_or_create(
        key="recommendations",
        defaults={
            "name": "Recommendations",
            "description": "Items for the visitor (ALS top-N; popularity without consent or "
            "history), or similar items when the page passes context.attributes.item (a sku).",
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
