"""The API's JSON renderer (core.renderers): orjson, with DRF's encoder for what orjson lacks."""

from __future__ import annotations

import datetime
import decimal
import json
import uuid

import pytest
from django.utils.translation import gettext_lazy
from rest_framework.renderers import JSONRenderer

from core.renderers import ORJSONRenderer, json_bytes


@pytest.mark.parametrize(
    "value",
    [
        {"a": [1, -2, 2**63 - 1, None, True, 'é \U0001f600 \x01 \\ " </script>']},
        {"price": 19.99, "tiny": 1e-05, "neg": -0.0, "nested": [[{}], []]},
        {"beyond_64_bits": 2**70, "x": "y"},  # orjson refuses it: DRF's renderer writes it
        {1: "int key", "s": "str key"},
    ],
)
def test_json_bytes__any_json__reads_back_as_the_standard_library_reads_it(value):
    rendered = json_bytes(value)
    assert json.loads(rendered) == json.loads(JSONRenderer().render(value))


def test_json_bytes__line_separators__escaped_as_drf_does():
    # U+2028/U+2029 are valid JSON but end a line in older JavaScript: escaped in the bytes
    rendered = json_bytes({"t": "a\u2028b\u2029c\u2013"})
    assert rendered == b'{"t":"a\\u2028b\\u2029c\xe2\x80\x93"}'
    assert json.loads(rendered) == {"t": "a\u2028b\u2029c\u2013"}


def test_json_bytes__types_orjson_lacks__as_drf_represents_them():
    # Lazy translations, decimals, datetimes, UUIDs: DRF's encoder's representation
    value = {
        "lazy": gettext_lazy("Not found."),
        "amount": decimal.Decimal("12.50"),
        "at": datetime.datetime(2026, 1, 2, 3, 4, 5, 600000, tzinfo=datetime.UTC),
        "id": uuid.UUID(int=1),
    }
    assert json.loads(json_bytes(value)) == json.loads(JSONRenderer().render(value))


def test_json_bytes__lone_surrogate__fails_as_drf_fails():
    # Not Unicode: neither renderer can write it as UTF-8 (input never carries one: the parser
    # refuses it, core.parsers)
    with pytest.raises(UnicodeEncodeError):
        JSONRenderer().render({"s": "\ud800"})
    with pytest.raises(UnicodeEncodeError):
        json_bytes({"s": "\ud800"})


def test_renderer__none__empty_body():
    assert ORJSONRenderer().render(None) == b""
    assert ORJSONRenderer.media_type == "application/json"
