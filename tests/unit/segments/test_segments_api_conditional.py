"""Segment management API against lost updates: GET answers an ETag; PUT, PATCH and DELETE need
If-Match (428 without, 412 stale, in the one error shape); a PUT repeating the current state
changes nothing (no revision, no run); roles: Analysts edit segments, Editors and
Experimenters only read them; documented in the OpenAPI schema."""

from __future__ import annotations

import pytest

from segments import segment_services
from segments.models import Segment

URL = "/api/v1/segments/buyers"
BUYERS = {"profile.aggregates.purchase_count": {"$gte": 1}}
PUT_BODY = {"key": "buyers", "name": "Buyers", "kind": "condition", "condition": BUYERS}


@pytest.fixture
def buyers(db) -> Segment:
    return segment_services.segment_create(
        data={"key": "buyers", "name": "Buyers", "condition": BUYERS}, author="ann"
    )


@pytest.fixture
def analyst(role_client):
    return role_client("Analyst")


def _send(client, method: str, body=None, **headers):
    return getattr(client, method)(URL, body or {}, format="json", **headers)


def test_segment_api_get__any_reader__etag_header(analyst, buyers):
    # When read
    response = analyst.get(URL)
    # Then the answer carries a quoted ETag
    assert response.status_code == 200
    assert response["ETag"].startswith('"')
    assert response["ETag"].endswith('"')


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_segment_api_write__no_if_match__428_names_if_match(analyst, buyers, method):
    # When written without If-Match
    response = _send(analyst, method, {**PUT_BODY, "name": "Changed"})
    # Then 428 in the error shape naming If-Match, nothing written
    assert response.status_code == 428
    assert response.json()["errors"][0]["field"] == "If-Match"
    buyers.refresh_from_db()
    assert buyers.name == "Buyers"


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_segment_api_write__stale_if_match__412_with_current_etag(analyst, buyers, method):
    # Given a client's read, then another change
    stale = analyst.get(URL)["ETag"]
    segment_services.segment_update(segment=buyers, data={"description": "x"}, author="bob")
    # When the client writes with its stale tag
    response = _send(analyst, method, {**PUT_BODY, "name": "Changed"}, HTTP_IF_MATCH=stale)
    # Then 412 naming If-Match, with the current ETag; nothing written
    assert response.status_code == 412
    assert response.json()["errors"][0]["field"] == "If-Match"
    assert response["ETag"] == analyst.get(URL)["ETag"] != stale
    assert Segment.objects.get(key="buyers").name == "Buyers"


def test_segment_api_patch__fresh_if_match__200_new_etag_and_revision_by_caller(analyst, buyers):
    # Given a fresh read
    etag = analyst.get(URL)["ETag"]
    # When renamed with it
    response = _send(analyst, "patch", {"name": "Buyers (EU)"}, HTTP_IF_MATCH=etag)
    # Then saved, with a new ETag, and recorded under the caller's name
    assert response.status_code == 200, response.content
    assert response["ETag"] != etag
    assert response["ETag"] == analyst.get(URL)["ETag"]
    latest = buyers.revisions.first()
    assert (latest.author, latest.state["name"]) == ("analyst", "Buyers (EU)")


def test_segment_api_put__repeats_current_state__200_no_revision_no_run(
    analyst, buyers, django_capture_on_commit_callbacks
):
    # Given a client whose tag is stale (another change happened since it read)
    stale = analyst.get(URL)["ETag"]
    segment_services.segment_update(segment=buyers, data={"name": "Buyers"}, author="bob")
    revisions = buyers.revisions.count()
    # When it PUTs the state that is already stored (a retry after a lost answer)
    with django_capture_on_commit_callbacks() as callbacks:
        response = _send(analyst, "put", PUT_BODY, HTTP_IF_MATCH=stale)
        again = _send(analyst, "put", PUT_BODY, HTTP_IF_MATCH=response["ETag"])
    # Then both succeed and nothing is written: no revision, no run
    assert (response.status_code, again.status_code) == (200, 200)
    assert buyers.revisions.count() == revisions
    assert callbacks == []


def test_segment_api_put__if_match_star__overwrites(analyst, buyers):
    response = _send(analyst, "put", {**PUT_BODY, "name": "All buyers"}, HTTP_IF_MATCH="*")
    assert response.status_code == 200
    assert Segment.objects.get(key="buyers").name == "All buyers"


def test_segment_api_delete__fresh_if_match__204(analyst, buyers):
    etag = analyst.get(URL)["ETag"]
    assert _send(analyst, "delete", HTTP_IF_MATCH=etag).status_code == 204
    assert not Segment.objects.filter(key="buyers").exists()


def test_segment_api_create__201_etag_equals_read(analyst, db):
    # When created through the API
    response = analyst.post("/api/v1/segments", PUT_BODY, format="json")
    # Then the answer's ETag is the one a read gives, and the revision names the caller
    assert response.status_code == 201, response.content
    assert response["ETag"] == analyst.get(URL)["ETag"]
    assert Segment.objects.get(key="buyers").revisions.get().author == "analyst"


@pytest.mark.parametrize(
    ("role", "read", "write"),
    [
        ("Analyst", 200, 200),
        ("Admin", 200, 200),
        ("Editor", 200, 403),
        ("Experimenter", 200, 403),
        ("Privacy officer", 403, 403),
    ],
)
def test_segment_api__role__reads_and_writes_as_its_permissions(
    role_client, analyst, buyers, role, read, write
):
    # Given a fresh ETag
    etag = analyst.get(URL)["ETag"]
    client = role_client(role)
    # When the role reads and renames the segment
    got = client.get(URL)
    patched = _send(client, "patch", {"name": f"By {role}"}, HTTP_IF_MATCH=etag)
    # Then each is allowed or refused (403 naming the permission) as the role says
    assert got.status_code == read
    assert patched.status_code == write, patched.content
    if write == 403:
        assert patched.json()["errors"][0]["field"] in ("permission", "api_key")
        assert Segment.objects.get(key="buyers").name == "Buyers"


def test_segment_api_schema__if_match_etag_412_428_documented_with_example(admin_client):
    # When the OpenAPI document is read
    schema = admin_client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    operations = schema["paths"]["/api/v1/segments/{key}"]
    # Then writes require If-Match, answer 412/428 with an example, and reads document the ETag
    for method in ("put", "patch", "delete"):
        operation = operations[method]
        if_match = [p for p in operation["parameters"] if p["name"] == "If-Match"]
        assert if_match
        assert if_match[0]["required"] is True
        assert {"412", "428"} <= set(operation["responses"])
    stale = operations["put"]["responses"]["412"]["content"]["application/json"]
    assert stale["examples"]
    assert "ETag" in operations["get"]["responses"]["200"]["headers"]
