"""Segment API: CRUD, members (paginated, CSV), runs, static lists; 4xx naming the field."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.core.management import call_command

from access import services as access_services
from core.pseudonym import pseudonymize
from segments import runs
from segments.models import Profile, Segment, SegmentMembership, SegmentRun, StaticListEntry

BASE = "/api/v1/segments"


@pytest.fixture
def api(client, db):
    """A test client that sends a secret API key."""
    _, raw = access_services.api_key_create(name="server", kind="secret")

    class Api:
        def __init__(self) -> None:
            self.auth = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}

        def get(self, url, **params):
            return client.get(url, params, **self.auth)

        def send(self, method, url, body=None, **headers):
            return getattr(client, method)(
                url,
                data=json.dumps(body or {}),
                content_type="application/json",
                **self.auth,
                **headers,
            )

        def upload(self, url, text, **fields):
            return client.post(
                url,
                {"file": io.BytesIO(text if isinstance(text, bytes) else text.encode()), **fields},
                format="multipart",
                **self.auth,
            )

    return Api()


def fields(response) -> set[str]:
    return {e["field"] for e in response.json()["errors"]}


@pytest.fixture
def profiles(db):
    Profile.objects.bulk_create(
        [Profile(key=f"{i:064x}", traits={"plan": "pro" if i % 2 else "free"}) for i in range(7)]
    )


@pytest.mark.django_db
def test_segments_api__anonymous_or_publishable__refused(client):
    # Given no key, then a publishable key
    _, publishable = access_services.api_key_create(name="web", kind="publishable")
    # Then both are refused: these endpoints are for servers and staff
    assert client.get(BASE).status_code in (401, 403)
    response = client.get(BASE, HTTP_AUTHORIZATION=f"Bearer {publishable}")
    assert response.status_code == 403


def test_segments_api__create_read_update_delete__round_trip(
    api, django_capture_on_commit_callbacks
):
    # When a condition segment is created
    with django_capture_on_commit_callbacks() as callbacks:
        response = api.send(
            "post",
            BASE,
            {"key": "pro", "name": "Pro", "condition": {"profile.traits.plan": "pro"}},
        )
    # Then it is stored and a run is queued
    assert response.status_code == 201, response.content
    assert response.json()["kind"] == "condition"
    assert len(callbacks) == 1
    # And it is listed and readable
    assert [s["key"] for s in api.get(BASE).json()["results"]] == ["pro"]
    assert api.get(f"{BASE}/pro").json()["name"] == "Pro"
    # When renamed (with the ETag of the last read)
    etag = api.get(f"{BASE}/pro")["ETag"]
    response = api.send("patch", f"{BASE}/pro", {"name": "Pro plan"}, HTTP_IF_MATCH=etag)
    assert response.status_code == 200, response.content
    assert Segment.objects.get(key="pro").name == "Pro plan"
    # When deleted, it is gone
    etag = response["ETag"]
    assert api.send("delete", f"{BASE}/pro", HTTP_IF_MATCH=etag).status_code == 204
    assert not Segment.objects.exists()
    assert api.get(f"{BASE}/pro").status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"key": "x", "name": "X", "kind": "no-such-kind"}, "kind"),
        ({"key": "x", "name": "X", "kind": "nonsense"}, "kind"),
        ({"key": "x", "name": "X", "condition": {"profile.a": {"$bogus": 1}}}, "condition"),
        ({"key": "x", "name": "X", "condition": [1]}, "condition"),
        (
            {"key": "x", "name": "X", "kind": "rfm", "config": {"segments": ["kings"]}},
            "config.segments[0]",
        ),
        ({"key": "x", "name": "X", "kind": "rfm"}, "config.segments"),
        (
            {
                "key": "x",
                "name": "X",
                "kind": "rfm",
                "config": {"segments": ["lost"]},
                "condition": {"a": 1},
            },
            "condition",
        ),
        ({"key": "x", "name": "X", "kind": "static", "config": {"a": 1}}, "config"),
        ({"key": "bad key!", "name": "X"}, "key"),
        ({"name": "X"}, "key"),
        ({"key": "x", "name": "X", "colour": "red"}, "colour"),
        ({"key": "x", "name": "X" * 500}, "name"),
        ({"key": "x", "name": "X", "is_active": "perhaps"}, "is_active"),
    ],
)
def test_segments_api__bad_create__400_names_field(api, body, field):
    response = api.send("post", BASE, body)
    assert response.status_code == 400, response.content
    assert field in fields(response), response.json()
    assert not Segment.objects.exists()


def test_segments_api__duplicate_key_or_key_change__400_names_key(api):
    Segment.objects.create(key="pro", name="Pro", condition={})
    assert fields(api.send("post", BASE, {"key": "pro", "name": "Again"})) == {"key"}
    assert fields(api.send("patch", f"{BASE}/pro", {"key": "other"})) == {"key"}


def test_segments_api__malformed_json__400_names_body(api, client):
    response = client.post(BASE, data="{nope", content_type="application/json", **api.auth)
    assert response.status_code == 400
    assert fields(response) == {"body"}


def test_segments_api__members__paginated_and_csv(api, profiles):
    # Given a run segment of the 3 pro profiles (of 7)
    segment = Segment.objects.create(
        key="pro", name="Pro", condition={"profile.traits.plan": "pro"}
    )
    runs.segment_run(segment_id=segment.pk)
    # When its members are read two per page
    first = api.get(f"{BASE}/pro/members", page_size=2).json()
    last = api.get(f"{BASE}/pro/members", page_size=2, page=2).json()
    # Then the pages cover the members once
    assert (first["count"], first["next"], last["next"]) == (3, 2, None)
    keys = [m["profile"] for m in first["results"] + last["results"]]
    expected = set(
        SegmentMembership.objects.filter(segment=segment).values_list("profile__key", flat=True)
    )
    assert sorted(keys) == sorted(expected)
    # And the CSV export holds all of them with a header
    response = api.get(f"{BASE}/pro/members", export="csv")
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == ["profile", "since", "score"]
    assert {r[0] for r in rows[1:]} == expected


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"page": 0}, "page"),
        ({"page_size": 5000}, "page_size"),
        ({"page": "x"}, "page"),
        ({"export": "xml"}, "export"),
        ({"sort": "a"}, "sort"),
    ],
)
def test_segments_api__members_bad_params__400_names_field(api, params, field):
    Segment.objects.create(key="pro", name="Pro", condition={})
    response = api.get(f"{BASE}/pro/members", **params)
    assert response.status_code == 400
    assert fields(response) == {field}


def test_segments_api__runs__post_queues_get_lists(
    api, profiles, django_capture_on_commit_callbacks
):
    segment = Segment.objects.create(
        key="pro", name="Pro", condition={"profile.traits.plan": "pro"}
    )
    with django_capture_on_commit_callbacks() as callbacks:
        response = api.send("post", f"{BASE}/pro/runs")
    assert response.status_code == 202
    assert response.json() == {"queued": True, "segment": "pro"}
    assert len(callbacks) == 1
    runs.segment_run(segment_id=segment.pk, trigger="api")
    listed = api.get(f"{BASE}/pro/runs").json()
    assert listed["count"] == 1
    run = listed["results"][0]
    assert (run["status"], run["size"], run["entered"], run["profiles_scanned"]) == (
        "succeeded",
        3,
        3,
        7,
    )
    assert api.get(f"{BASE}/nope/runs").status_code == 404
    assert fields(api.send("post", f"{BASE}/nope/runs")) == {"key"}


def test_segments_api__static_ids_json_and_csv__listed_pseudonymised(
    api, django_capture_on_commit_callbacks
):
    Segment.objects.create(key="vip", name="VIP", kind="static")
    with django_capture_on_commit_callbacks():
        added = api.send("post", f"{BASE}/vip/members", {"visitor_ids": ["v1", "v2"]})
    assert added.status_code == 200, added.content
    assert added.json()["added"] == 2
    uploaded = api.upload(f"{BASE}/vip/members", "user_id\nu1\nu2\n")
    assert uploaded.status_code == 200, uploaded.content
    assert (uploaded.json()["id_type"], uploaded.json()["added"]) == ("user", 2)
    assert set(StaticListEntry.objects.values_list("key", flat=True)) == {
        pseudonymize(i) for i in ("v1", "v2", "u1", "u2")
    }
    removed = api.send("delete", f"{BASE}/vip/members", {"visitor_ids": ["v1"]})
    assert removed.json()["removed"] == 1
    assert StaticListEntry.objects.count() == 3


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"visitor_ids": ["ok", ""]}, "visitor_ids[1]"),
        ({"visitor_ids": ["ok", {"a": 1}]}, "visitor_ids[1]"),
        ({"visitor_ids": "v1"}, "visitor_ids"),
        ({}, "body"),
        ({"visitor_ids": ["a"], "user_ids": ["b"]}, "body"),
        ({"visitor_ids": ["a"], "extra": 1}, "extra"),
    ],
)
def test_segments_api__static_bad_ids__400_names_field_nothing_stored(api, body, field):
    Segment.objects.create(key="vip", name="VIP", kind="static")
    response = api.send("post", f"{BASE}/vip/members", body)
    assert response.status_code == 400, response.content
    assert fields(response) == {field}
    assert not StaticListEntry.objects.exists()


def test_segments_api__static_bad_csv_or_not_static__400(api):
    Segment.objects.create(key="vip", name="VIP", kind="static")
    Segment.objects.create(key="cond", name="C", condition={})
    assert fields(api.upload(f"{BASE}/vip/members", "v1\n\x00bad\n")) == {"line 2"}
    assert fields(api.upload(f"{BASE}/vip/members", b"v1\n\xff\xfe\n")) == {"file"}
    assert fields(api.send("post", f"{BASE}/cond/members", {"visitor_ids": ["a"]})) == {"key"}
    assert not StaticListEntry.objects.exists()


def test_segment_run_command__json__prints_run_record(profiles, capsys):
    Segment.objects.create(key="pro", name="Pro", condition={"profile.traits.plan": "pro"})
    call_command("segment_run", "pro", "--json")
    record = json.loads(capsys.readouterr().out)
    assert (record["segment"], record["status"], record["size"], record["entered"]) == (
        "pro",
        "succeeded",
        3,
        3,
    )
    assert record["id"] == SegmentRun.objects.get().pk


def test_segments_api__schema__documents_paths_with_examples(api, client):
    response = client.get("/api/schema/", {"format": "json"})
    schema = json.loads(response.content)
    for path in (
        "/api/v1/segments",
        "/api/v1/segments/{key}",
        "/api/v1/segments/{key}/members",
        "/api/v1/segments/{key}/runs",
    ):
        assert path in schema["paths"], path
    create = schema["paths"]["/api/v1/segments"]["post"]["requestBody"]["content"][
        "application/json"
    ]
    assert "Cart abandoners (condition)" in str(create.get("examples"))


JUNK = [
    "null",
    "[]",
    '"text"',
    "{}",
    '{"kind": null}',
    '{"condition": "x", "config": 7}',
    '{"kind": "rfm", "config": {"segments": [null, 1, {"a": []}]}}',
    '{"visitor_ids": [null]}',
    '{"user_ids": [' + ",".join(['"a"'] * 50) + "]}",
    '{"key": "' + "k" * 300 + '", "name": ""}',
    '{"name": "\\u0000"}',
]


@pytest.mark.parametrize("kind", ["condition", "rfm", "static", "default"])
def test_segments_api__junk_on_existing_segment_as_staff__4xx_never_500(admin_client, kind):
    # Given an existing segment of each kind, and staff (past the permission checks)
    config = {"segments": ["lost"]} if kind == "rfm" else {}
    Segment.objects.create(key="seg", name="Seg", kind=kind, config=config)
    urls = [BASE, f"{BASE}/seg", f"{BASE}/seg/members", f"{BASE}/seg/runs"]
    # When junk is sent to every endpoint with every method, Then never a 500, errors named
    for url in urls:
        for body in JUNK:
            for method in ("post", "put", "patch", "delete"):
                response = getattr(admin_client, method)(
                    url, data=body, content_type="application/json"
                )
                assert response.status_code < 500, (url, method, body, response.content[:300])
                if 400 <= response.status_code < 500 and response.status_code != 405:
                    errors = response.json()["errors"]
                    assert all(e["field"] and e["message"] for e in errors)
            Segment.objects.get_or_create(
                key="seg", defaults={"name": "Seg", "kind": kind, "config": config}
            )


def test_segments_api__static_file_too_large__400_names_file(api, settings):
    # Given a limit of 10 ids per list (so a file over 2,020 bytes is refused unread)
    settings.MOSAIC_STATIC_LIST_MAX_IDS = 10
    Segment.objects.create(key="vip", name="VIP", kind="static")
    response = api.upload(f"{BASE}/vip/members", "v\n" * 2000)
    assert response.status_code == 400
    assert fields(response) == {"file"}
    assert not StaticListEntry.objects.exists()
