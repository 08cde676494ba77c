"""Every management operation is in the OpenAPI document with its schemas and an example."""

from __future__ import annotations

import pytest
import yaml


@pytest.fixture
def schema(client, db) -> dict:
    response = client.get("/api/schema/")
    assert response.status_code == 200
    return yaml.safe_load(response.content)


OPERATIONS = [
    ("/api/v1/block-types", "get"),
    ("/api/v1/block-types", "post"),
    ("/api/v1/block-types/{key}", "get"),
    ("/api/v1/block-types/{key}", "put"),
    ("/api/v1/block-types/{key}", "patch"),
    ("/api/v1/block-types/{key}", "delete"),
    ("/api/v1/placements", "get"),
    ("/api/v1/placements", "post"),
    ("/api/v1/placements/{key}", "get"),
    ("/api/v1/placements/{key}", "put"),
    ("/api/v1/placements/{key}", "patch"),
    ("/api/v1/placements/{key}", "delete"),
    ("/api/v1/variants", "get"),
    ("/api/v1/variants", "post"),
    ("/api/v1/variants/{id}", "get"),
    ("/api/v1/variants/{id}", "put"),
    ("/api/v1/variants/{id}", "patch"),
    ("/api/v1/variants/{id}", "delete"),
    ("/api/v1/variants/{variant_id}/preview", "post"),
]


def _examples(operation: dict) -> list:
    found = []
    for part in [operation.get("requestBody", {}), *operation["responses"].values()]:
        for media in part.get("content", {}).values():
            found.extend((media.get("examples") or {}).values())
    return found


@pytest.mark.parametrize(("path", "method"), OPERATIONS)
def test_openapi__management_operation__schemas_and_an_example(schema, path, method):
    operation = schema["paths"][path][method]
    ok = [code for code in operation["responses"] if code.startswith("2")]
    assert ok, operation["responses"]
    if method in ("post", "put", "patch"):
        assert operation["requestBody"]["content"]["application/json"]["schema"]
    if method != "delete":
        assert operation["responses"][ok[0]]["content"]["application/json"]["schema"]
    assert "400" in operation["responses"] or method == "get"
    assert _examples(operation), f"{method} {path} has no example"
    if method in ("put", "patch", "delete"):
        assert any(p["name"] == "If-Match" for p in operation["parameters"])
