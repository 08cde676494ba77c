"""What the page needs to report recommendation impressions and clicks per model version: the
block's HTML carries the run, source and placement, each item its sku."""

from __future__ import annotations

import importlib
import re

import pytest

from content.models import BlockType
from recommendations.block import TEMPLATE

from .conftest import make_recs_placement

URL = "/api/v1/decide"


@pytest.mark.django_db
def test_decide__recommendations_block__html_carries_run_source_placement_and_skus(
    client, trained_shop
):
    # Given a trained shop and the recommendations block in placement "recs"
    make_recs_placement()
    run = trained_shop[1]
    # When a visitor with a list and a new visitor ask for it
    for visitor, source in (("visitor-0", "als"), ("somebody-new", "popularity:cold_start")):
        block = client.get(URL, {"placements": "recs", "visitor": visitor}).json()["placements"][
            "recs"
        ]
        html = block["html"]
        # Then the block names the model version, the source and the placement
        assert (
            f'data-mosaic-recs="recs" data-mosaic-recs-run="{run.pk}" '
            f'data-mosaic-recs-source="{source}"'
        ) in html
        # and its items, in order, are the skus decide answered with
        skus = re.findall(r'<li class="mosaic-recs__item" data-sku="([^"]+)"', html)
        assert skus == block["data"]["recommendations"]["items"]
        assert len(skus) == 4


@pytest.mark.django_db
def test_migration_0003__old_template_updated__an_editors_own_template_kept():
    # Given the block type with 0002's template
    migration = importlib.import_module("recommendations.migrations.0003_block_reports_clicks")
    from django.apps import apps

    block, _ = BlockType.objects.update_or_create(
        key="recommendations", defaults={"template": migration.OLD_TEMPLATE, "name": "R"}
    )
    # When the migration runs forward / Then it carries the tracking attributes
    migration.forward(apps, None)
    block.refresh_from_db()
    assert block.template == TEMPLATE
    assert "data-mosaic-recs-run" in block.template
    # and backward restores it
    migration.backward(apps, None)
    block.refresh_from_db()
    assert block.template == migration.OLD_TEMPLATE
    # Given an editor's own template / When migrating / Then it is left alone
    BlockType.objects.filter(pk=block.pk).update(template="<p>{{ items|length }}</p>")
    migration.forward(apps, None)
    block.refresh_from_db()
    assert block.template == "<p>{{ items|length }}</p>"
