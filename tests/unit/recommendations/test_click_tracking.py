"""What the page needs to report recommendation impressions and clicks per model version: the
decide answer's data.recommendations (run, source) and items carrying data-sku; the template tag
writes the same attributes mosaic.js sets in the browser."""

from __future__ import annotations

import re

import pytest
from django.template import Context, Template
from django.test import RequestFactory

from .conftest import make_recs_placement

URL = "/api/v1/decide"


@pytest.mark.django_db
def test_decide__recommendations_block__answer_names_run_source_and_items_carry_skus(
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
        # Then the answer names the model version and source (what mosaic.js puts on the block)
        recs = block["data"]["recommendations"]
        assert (recs["run"], recs["source"]) == (run.pk, source)
        # and the items in the HTML, in order, carry the skus decide answered with
        skus = re.findall(r'<li class="mosaic-recs__item" data-sku="([^"]+)"', block["html"])
        assert skus == recs["items"]
        assert len(skus) == 4


@pytest.mark.django_db
def test_template_tag__recommendations_block__wrapper_carries_run_source_and_placement(
    trained_shop,
):
    # Given the recommendations block in placement "recs", rendered by the server
    make_recs_placement()
    run = trained_shop[1]
    request = RequestFactory().get("/shop")
    request.COOKIES["mosaic_vid"] = "visitor-0"
    # When the page renders it with the template tag
    html = Template('{% load mosaic %}{% mosaic_placement "recs" %}').render(
        Context({"request": request})
    )
    # Then its wrapper carries what mosaic.js reports with, as in the browser
    assert (
        f'data-mosaic-reason="default;recommendations:als" data-mosaic-recs="recs" '
        f'data-mosaic-recs-run="{run.pk}" data-mosaic-recs-source="als">'
    ) in html
    assert html.count("data-sku=") == 4


@pytest.mark.django_db
def test_template_tag__other_placement__no_recommendation_attributes(db):
    # Given a plain placement / When rendered by the tag / Then nothing to report
    from tests.factories import make_placement

    make_placement("hero", default_html="<p>Hi</p>")
    request = RequestFactory().get("/shop")
    html = Template('{% load mosaic %}{% mosaic_placement "hero" %}').render(
        Context({"request": request})
    )
    assert "data-mosaic-recs" not in html
    assert "<p>Hi</p>" in html
