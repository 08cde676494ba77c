"""The recommendations block type's template carries the model version, source and placement
(on the block) and the sku (on each item), so that the page reports impressions and clicks per
model version (mosaic.js). Updated only where the template is still the one 0002 created: an
editor's own template is left alone (it can add the same data attributes)."""

from django.db import migrations

from recommendations.block import TEMPLATE

# The template 0002 created before this change, frozen here.
OLD_TEMPLATE = """<section class="mosaic-recs"><h3>{{ fields.title or "Recommended for you" }}</h3>
<ul class="mosaic-recs__items">{% for item in items %}
<li class="mosaic-recs__item" data-sku="{{ item.sku }}"><a href="{{ item.url }}">
{% if item.image_url %}<img src="{{ item.image_url }}" alt="">{% endif %}
<span class="mosaic-recs__title">{{ item.title }}</span>
<span class="mosaic-recs__price">{{ item.price_text }}</span></a></li>{% endfor %}
</ul></section>"""


def forward(apps, schema_editor):
    BlockType = apps.get_model("content", "BlockType")
    BlockType.objects.filter(key="recommendations", template=OLD_TEMPLATE).update(template=TEMPLATE)


def backward(apps, schema_editor):
    BlockType = apps.get_model("content", "BlockType")
    BlockType.objects.filter(key="recommendations", template=TEMPLATE).update(template=OLD_TEMPLATE)


class Migration(migrations.Migration):
    dependencies = [("recommendations", "0002_recommendations_block_type")]

    operations = [migrations.RunPython(forward, backward)]
