"""The "recommendations" block type: decide gives its template the items (see decide.py).

Created by a data migration, and again on use when missing (a database flushed by tests, or
an editor who deleted it), by ``block_type_ensure``.
"""

from __future__ import annotations

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


DESCRIPTION = (
    "Items for the visitor (ALS top-N; popularity without consent or history), or similar items "
    "when the page passes context.attributes.item (a sku)."
)


def block_type_ensure():
    """The recommendations BlockType, created if missing."""
    from content.models import BlockType

    block, _ = BlockType.objects.get_or_create(
        key="recommendations",
        defaults={
            "name": "Recommendations",
            "description": DESCRIPTION,
            "template": TEMPLATE,
            "schema": SCHEMA,
        },
    )
    return block
