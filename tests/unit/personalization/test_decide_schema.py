"""The decide request's one schema (personalization.api.schemas) and its lean path.

Every decide call validates through DecideRequest; a plainly valid call without a session is
answered without DRF's request cycle (checked with a spy on APIView.initial), anything else by
DRF, with the same schema's refusals in the one error shape. Behaviour only: status, fields named,
headers, what was counted.
"""

from __future__ import annotations

import json
from typing import get_args
from unittest import mock

import pytest
from rest_framework.views import APIView

from access import services as access_services
from personalization.api.schemas import DecideRequest, DecideResponse, Device
from personalization.context import DEVICES
from profiles import services
from tests.factories import make_experiment, make_placement, make_segment, make_variant

URL = "/api/v1/decide"
VIP = {"profile.segments": {"$in": ["vip"]}}


@pytest.fixture
def placements(db):
    hero = make_placement("hero")
    make_variant(
        hero, "vip-hero", condition=VIP, template="<p>Hi {{ profile.traits.name }}\u2028é</p>"
    )
    make_variant(hero, "mobile-hero", condition={"request.device": "mobile"}, priority=50)
    make_segment("vip", {"profile.traits.tier": "gold"})
    make_experiment(make_placement("promo"), key="promo-test")
    services.profile_set_traits(visitor="ann", traits={"tier": "gold", "name": "Ånn \u2029"})
    return hero


def _get(client, params, **extra):
    return client.get(URL, params, **extra)


def _post(client, body, content_type="application/json", **extra):
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post(URL, data, content_type=content_type, **extra)


def _drf_spy():
    """Records whether DRF's request handling (APIView.initial: auth, permission...) ran."""
    return mock.patch.object(APIView, "initial", autospec=True, side_effect=APIView.initial)


def _plain_answer(response) -> dict:
    """The answer of a served call: 200, JSON, the decide answer's declared shape."""
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    assert "Cookie" in response["Vary"]
    assert response["Allow"] == "GET, POST, HEAD, OPTIONS"
    body = response.json()
    DecideResponse.model_validate(body)  # the declared answer schema is what is served
    return body


GET_CASES = [
    {"placements": "hero", "visitor": "ann"},
    {"placements": "hero,promo,nope", "visitor": "bob"},
    {"placements": "hero,hero", "visitor": "ann", "device": "mobile", "locale": "de"},
    {"placements": "promo", "url": "https://shop.example/x?utm_source=news", "referrer": ""},
    {"placements": "hero", "utm_source": "news", "explain": "1"},
    {"placements": "hero"},
]


@pytest.mark.django_db
@pytest.mark.parametrize("params", GET_CASES)
def test_lean_path__valid_get__answered_without_drf(client, placements, params):
    # Given a valid GET without session cookie
    # When it is answered
    with _drf_spy() as spy:
        response = _get(client, params)
    # Then by the lean path (DRF's request cycle did not run), in the declared answer shape
    body = _plain_answer(response)
    assert not spy.called
    assert set(body["placements"]) == set(params["placements"].split(","))
    assert "explain" not in body["placements"]["hero" if "hero" in body["placements"] else "promo"]


RAW_QUERIES = [
    # (query, placements decided): the last value of a repeated parameter counts; blanks skipped
    ("placements=promo&placements=hero&&visitor=ann&x", {"hero"}),
    ("placements=hero,,promo,&visitor=&device=mobile&", {"hero", "promo"}),
    ("placements=hero&visitor=a=b&locale=de", {"hero"}),
    ("visitor=ann&placements=hero&url=https://shop.example/a?b=c;d", {"hero"}),
    ("placements=%68ero+&visitor=%C3%A5nn", {"hero"}),  # escapes, "+" a space (trimmed)
]


@pytest.mark.django_db
@pytest.mark.parametrize(("query", "decided"), RAW_QUERIES)
def test_lean_path__raw_query__read_as_django_reads_it(client, placements, query, decided):
    with _drf_spy() as spy:
        response = client.get(f"{URL}?{query}")
    assert set(_plain_answer(response)["placements"]) == decided
    assert not spy.called


def test_vip_visitor__personalized_on_get_and_post(client, placements):
    # Given a visitor in the vip segment (the fixture's profile)
    # When asked by GET and by POST
    answers = [
        _get(client, {"placements": "hero", "visitor": "ann"}),
        _post(client, {"placements": ["hero"], "visitor": "ann"}),
    ]
    # Then both are the vip variant, its rendered text intact (U+2028/9 escaped in the bytes)
    for response in answers:
        hero = _plain_answer(response)["placements"]["hero"]
        assert hero["variant"] == "vip-hero"
        assert hero["html"] == "<p>Hi Ånn \u2029\u2028é</p>"
        # U+2028/U+2029 escaped in the bytes, as DRF's renderer does (safe inside a script)
        assert b"\\u2028" in response.content
        assert "\u2028".encode() not in response.content


POST_CASES = [
    {"placements": ["hero"], "visitor": "ann"},
    {"placements": ["hero", "promo", "nope"], "visitor": "bob", "context": {"device": ""}},
    {"placements": ["promo"], "context": {"url": "https://shop/x", "locale": "fr"}},
    {"placements": ["hero"], "context": {"utm": {"source": "x"}, "attributes": {"a": [1]}}},
    {"placements": [1]},  # a number is taken as its text (an unknown placement "1")
    {"placements": ["hero "], "visitor": 42},  # trimmed; the visitor "42"
]


@pytest.mark.django_db
@pytest.mark.parametrize("body", POST_CASES)
def test_lean_path__valid_post__answered_without_drf(client, placements, body):
    with _drf_spy() as spy:
        response = _post(client, body)
    answer = _plain_answer(response)
    assert not spy.called
    assert set(answer["placements"]) == {str(p).strip() for p in body["placements"]}


@pytest.mark.django_db
def test_lean_path__utf8_charset__still_lean(client, placements):
    body = {"placements": ["hero"], "visitor": "ann"}
    with _drf_spy() as spy:
        response = _post(client, body, content_type="application/json; charset=UTF-8")
    _plain_answer(response)
    assert not spy.called


@pytest.mark.django_db
def test_drf_path__latin1_charset__served_through_drf(client, placements):
    body = {"placements": ["hero"], "visitor": "ann"}
    with _drf_spy() as spy:
        response = _post(client, body, content_type="application/json; charset=latin-1")
    assert _plain_answer(response)["placements"]["hero"]["variant"] == "vip-hero"
    assert spy.called


DATA_CASES = [
    # (no U+0000: PostgreSQL's jsonb cannot store it)
    {"headline": 'Hi \u2028 \u2029 é \U0001f600 \x01\x1f\x7f \\ " / <b>', "n": -3, "ok": True},
    {"nested": [{"a": None, "b": [1, 2, {"c": "d"}]}, [], {}], "big": 2**63},
    {"price": 19.99, "tiny": 1e-05, "huge": 1e16, "neg": -0.0},
    {"list": [1, 2.5]},
    {"beyond_64_bits": 2**70},  # beyond orjson: the standard library's encoder writes it
]


@pytest.mark.django_db
@pytest.mark.parametrize("data", DATA_CASES)
def test_lean_path__variant_data__round_trips(client, placements, data):
    # Given a variant whose data holds any kind of JSON value
    make_variant(placements, "data-hero", priority=1, data=data)
    # When it is served
    response = _get(client, {"placements": "hero"})
    # Then the page reads back exactly that data
    assert _plain_answer(response)["placements"]["hero"]["data"] == data


REFUSED_GET = [
    ({}, "placements"),
    ({"placements": ""}, "placements"),
    ({"placements": "bad key!"}, "placements[0]"),
    ({"placements": ",".join(f"p{i}" for i in range(21))}, "placements"),
    ({"placements": "hero", "device": "fridge"}, "context.device"),
    ({"placements": "hero", "visitor": "x" * 201}, "visitor"),
    ({"placements": "hero", "visitor": "a\x01b"}, "visitor"),
    ({"placements": "hero", "locale": "x" * 36}, "context.locale"),
    ({"placements": "hero", "url": "https://a/\x00"}, "context.url"),
    ({"placements": "hero", "utm_source": " "}, "context.utm.source"),
    ({"placements": "hero", "explain": "maybe"}, "explain"),
    ({"placements": "hero", "force_arm": "no-colon"}, "force_arm"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("params", "field"), REFUSED_GET)
def test_decide_get__invalid__400_names_the_field(client, placements, params, field):
    # When an invalid query is sent
    with _drf_spy() as spy:
        response = _get(client, params)
    # Then the schema's refusal is answered by DRF's handler in the one error shape
    assert response.status_code == 400
    assert spy.called
    errors = response.json()["errors"]
    assert field in {e["field"] for e in errors}, errors
    assert all(set(e) == {"field", "message"} and e["message"] for e in errors)


REFUSED_POST = [
    ('{"placements": ["hero"], "visitor": NaN}', None, "body", 400),
    ("{oops", None, "body", 400),
    ("[1, 2]", None, "body", 400),
    ({"placements": "hero"}, None, "placements", 400),
    ({"placements": []}, None, "placements", 400),
    ({"placements": ["hero"], "visitor": None}, None, "visitor", 400),
    ({"placements": ["hero"], "visitor": True}, None, "visitor", 400),
    # A lone surrogate is not Unicode: the parser refuses the body, naming the string's field.
    ({"placements": ["hero"], "visitor": "\ud800"}, None, "visitor", 400),
    ({"placements": ["hero"], "visitor": "a\x00"}, None, "visitor", 400),
    ({"placements": ["hero"], "context": ["url"]}, None, "context", 400),
    ({"placements": ["hero"], "context": None}, None, "context", 400),
    ({"placements": ["hero"], "context": {"device": ["mobile"]}}, None, "context.device", 400),
    ({"placements": ["hero"], "context": {"cookie": 1}}, None, "context.cookie", 400),
    ({"placements": ["hero"], "surprise": True}, None, "surprise", 400),
    (
        {"placements": ["h"], "context": {"utm": {f"k{i}": "v" for i in range(21)}}},
        None,
        "context.utm",
        400,
    ),
    (
        {"placements": ["h"], "context": {"attributes": {f"k{i}": 1 for i in range(101)}}},
        None,
        "context.attributes",
        400,
    ),
    ({f"k{i}": 1 for i in range(40)}, None, "body", 400),
    ({"placements": ["hero"]}, "text/plain", "body", 415),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("body", "content_type", "field", "status"), REFUSED_POST)
def test_decide_post__invalid__4xx_names_the_field(
    client, placements, body, content_type, field, status
):
    response = _post(client, body, content_type=content_type or "application/json")
    assert response.status_code == status
    errors = response.json()["errors"]
    assert field in {e["field"] for e in errors}, errors


def test_schema__refuses_230k_placements_before_validating_them():
    # A bounded list is refused by its length before any of its items is validated
    import pydantic

    body = {"placements": ["bad key!"] * 230_000}
    with pytest.raises(pydantic.ValidationError) as refused:
        DecideRequest.model_validate(body)
    assert [e["loc"] for e in refused.value.errors()] == [("placements",)]


def test_schema__devices__as_the_context_knows_them():
    assert set(get_args(Device)) == {"", *DEVICES}


@pytest.mark.django_db
def test_lean_path__secret_key__explain_given_without_drf(client, placements):
    # Given a secret key (a server), which may ask for explanations
    _, raw = access_services.api_key_create(name="srv", kind="secret")
    # When it asks for one
    with _drf_spy() as spy:
        response = _get(client, {"placements": "hero", "explain": "1"}, HTTP_X_MOSAIC_KEY=raw)
    # Then the lean path gives it
    assert [s["rule"] for s in _plain_answer(response)["placements"]["hero"]["explain"]] == [
        "vip-hero",
        "mobile-hero",
    ]
    assert not spy.called


@pytest.mark.django_db
def test_lean_path__publishable_key__no_explain_no_forced_arm(client, placements, publishable):
    headers = {"HTTP_X_MOSAIC_KEY": publishable, "HTTP_ORIGIN": PRODUCTION}
    params = {"placements": "hero,promo", "explain": "1", "force_arm": "promo-test:b"}
    body = _plain_answer(_get(client, params, **headers))
    assert all("explain" not in d for d in body["placements"].values())
    assert body["placements"]["promo"]["reason"] != "experiment:promo-test/b"


@pytest.mark.django_db
def test_lean_path__keyed_calls__authenticated_and_rate_limited(
    client, placements, frozen_rate_window, redis_client
):
    # Given a secret key allowed 2 requests per minute (the clock pinned inside one minute)
    api_key, raw = access_services.api_key_create(
        name="srv", kind="secret", rate_limit_per_minute=2
    )
    # When it calls decide three times (GET, POST, GET)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    with _drf_spy() as spy:
        answers = [
            _get(client, {"placements": "hero"}, **auth),
            _post(client, {"placements": ["hero"]}, **auth),
            _get(client, {"placements": "hero"}, **auth),
        ]
    # Then the two allowed calls were answered by the lean path, the third is rate-limited by
    # DRF's answer to the same check; each admitted call counted once (the refused one was
    # refused from the process's own count, without counting it in Redis)
    assert spy.call_count == 1
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[2]["Retry-After"] == "30"
    assert {e["field"] for e in answers[2].json()["errors"]} == {"api_key"}
    window = int(frozen_rate_window // 60)
    assert int(redis_client.get(f"mosaic:ratelimit:{{{api_key.pk}}}:{window}")) == 2


PRODUCTION = "https://shop.example"


@pytest.fixture
def publishable(db, settings):
    """Keys required (production), and a publishable key for PRODUCTION's pages."""
    settings.MOSAIC_REQUIRE_API_KEY = True
    _, raw = access_services.api_key_create(
        name="web", kind="publishable", allowed_origins=[PRODUCTION], rate_limit_per_minute=1000
    )
    return raw


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("headers", "status", "field"),
    [
        ({"HTTP_ORIGIN": PRODUCTION}, 401, "api_key"),
        ({"HTTP_X_MOSAIC_KEY": "mk_pub_nope", "HTTP_ORIGIN": PRODUCTION}, 401, "api_key"),
        ({"HTTP_X_MOSAIC_KEY": "KEY", "HTTP_ORIGIN": "https://evil.example"}, 403, "origin"),
    ],
)
def test_decide__key_refused__drf_answers_in_the_error_shape(
    client, placements, publishable, headers, status, field
):
    # Given a call with no key, an unknown key, or a key from an origin it does not allow
    headers = {k: publishable if v == "KEY" else v for k, v in headers.items()}
    # When it is answered
    with _drf_spy() as spy:
        response = _get(client, {"placements": "hero"}, **headers)
    # Then DRF gives its refusal, naming the field
    assert spy.called
    assert response.status_code == status
    assert {e["field"] for e in response.json()["errors"]} == {field}


@pytest.mark.django_db
def test_lean_path__publishable_key_on_other_endpoint__unchanged(client, placements, publishable):
    # A publishable key still cannot export a profile (secret-only endpoint, not decide)
    response = client.get("/api/v1/profiles/ann/export", HTTP_X_MOSAIC_KEY=publishable)
    assert response.status_code == 403


@pytest.mark.django_db
def test_lean_path__unknown_key__401(client, placements):
    response = _get(client, {"placements": "hero"}, HTTP_X_MOSAIC_KEY="mk_pub_nope")
    assert response.status_code == 401
    assert {e["field"] for e in response.json()["errors"]} == {"api_key"}


@pytest.mark.django_db
def test_lean_path__keys_required__no_key_still_401(client, placements, settings):
    settings.MOSAIC_REQUIRE_API_KEY = True
    response = _get(client, {"placements": "hero"})
    assert response.status_code == 401


@pytest.mark.django_db
def test_lean_path__staff_session__explain_and_csrf_through_drf(admin_client, placements):
    # A staff session (cookie) is resolved by DRF: explain is given...
    body = admin_client.get(URL, {"placements": "hero", "visitor": "x", "explain": "1"}).json()
    assert "explain" in body["placements"]["hero"]
    # ...and a session-authenticated POST without a CSRF token is refused, as before.
    admin_client.handler.enforce_csrf_checks = True
    response = _post(admin_client, {"placements": ["hero"]})
    assert response.status_code == 403


@pytest.mark.django_db
def test_lean_path__steady_state__no_database_query(client, placements, django_assert_num_queries):
    _get(client, {"placements": "hero,promo", "visitor": "ann"})  # warm the snapshot
    with django_assert_num_queries(0):
        assert _get(client, {"placements": "hero,promo", "visitor": "ann"}).status_code == 200
        assert _post(client, {"placements": ["hero"], "visitor": "bob"}).status_code == 200


@pytest.mark.django_db
def test_schema__decide_documented_for_get_and_post(client):
    # When the OpenAPI document is read
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    decide = schema["paths"]["/api/v1/decide"]
    components = schema["components"]["schemas"]
    # Then both methods are there, the GET parameters derived from the schema's fields
    assert set(decide) >= {"get", "post"}
    parameters = {p["name"]: p for p in decide["get"]["parameters"]}
    assert set(parameters) >= {"placements", "visitor", "url", "device", "utm_source", "explain"}
    assert parameters["placements"]["required"] is True
    assert parameters["explain"]["schema"]["type"] == "boolean"
    # And the POST body is the request schema, with its limits
    post_body = decide["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert post_body["$ref"].endswith("/DecideRequest")
    request = components["DecideRequest"]
    assert request["properties"]["placements"]["maxItems"] == 20
    assert request["additionalProperties"] is False
    assert "DecideContext" in components
    # And every answer: 200 in the answer schema, the refusals in the one error shape
    for method in ("get", "post"):
        responses = decide[method]["responses"]
        answer = responses["200"]["content"]["application/json"]["schema"]
        assert answer["$ref"].endswith("/DecideResponse")
        assert set(responses) >= {"200", "400", "401", "403", "413", "415", "429"}
        error = responses["429"]["content"]["application/json"]["schema"]
        assert error["$ref"].endswith("/Error")
    assert client.get("/api/docs/").status_code == 200


@pytest.mark.django_db
def test_lean_path__keyed_steady_state__no_database_query(
    client, placements, publishable, django_assert_num_queries, redis_client
):
    # Given production's call (publishable key, allowed Origin), the key and snapshot warm
    headers = {"HTTP_X_MOSAIC_KEY": publishable, "HTTP_ORIGIN": PRODUCTION}
    _get(client, {"placements": "hero", "visitor": "ann"}, **headers)
    # When it is called again
    with django_assert_num_queries(0):
        answers = [_get(client, {"placements": "hero", "visitor": "ann"}, **headers)]
        answers.append(_post(client, {"placements": ["hero"], "visitor": "ann"}, **headers))
    # Then no database query, and no rate-limit count in Redis yet (the process's own share)
    assert [a.status_code for a in answers] == [200, 200]
    assert redis_client.keys("mosaic:ratelimit:*") == []


# --- the query's parameters on the lean path (personalization.api.views._query_params) ----------


@pytest.mark.parametrize(
    "query",
    [
        "placements=hero,promo-bar&visitor=ann",
        "placements=a&placements=b&visitor=ann&visitor=bob",
        "visitor=",
        "visitor",
        "visitor=%C3%A9l%C3%A8ve&locale=fr-FR",
        "visitor=%FF%FE%00",
        "a+b=c+d&utm_source=news%20letter",
        "x=1;y=2",
        "",
        "&&=&a=%&%zz=1",
        "visitor=\u00e9l\u00e8ve",  # not ASCII (a raw Latin-1 byte in the environ's string)
    ],
)
def test_query_params__any_query__the_last_values_request_get_gives(query):
    # Given a decide call's query string, as a WSGI server puts it in the environ
    from django.test import RequestFactory

    from personalization.api.views import _query_params

    request = RequestFactory().get("/api/v1/decide")
    request.META["QUERY_STRING"] = query
    # When the lean path reads its parameters
    params = _query_params(request)
    # Then they are what Django's request.GET gives, name by name (its last value)
    assert {name: params[name] for name in params} == {
        name: request.GET[name] for name in request.GET
    }


def test_query_params__more_fields_than_allowed__djangos_refusal(settings):
    # Given a query over DATA_UPLOAD_MAX_NUMBER_FIELDS
    from django.core.exceptions import TooManyFieldsSent
    from django.test import RequestFactory

    from personalization.api.views import _query_params

    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 3
    request = RequestFactory().get("/api/v1/decide")
    request.META["QUERY_STRING"] = "a=1&b=2&c=3&d=4&e=5"
    # When the lean path reads its parameters
    # Then Django's QueryDict refuses them (answered 400 as a SuspiciousOperation)
    with pytest.raises(TooManyFieldsSent):
        dict(_query_params(request))
