"""The decide hot path (DecideView._fast_answer) answers exactly as the DRF path would.

A plainly valid GET or POST without session cookie or explain, keyless or with a key that passes
its checks, is answered without DRF; everything else goes through DRF unchanged. Compared here
byte for byte, headers included.
"""

from __future__ import annotations

import json
from unittest import mock

import pytest
from rest_framework.views import APIView

from access import services as access_services
from personalization.api.views import DecideView
from profiles import services as profile_services
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
    profile_services.profile_set_traits(
        visitor="ann", traits={"tier": "gold", "name": "Ånn \u2029"}
    )
    return hero


def _get(client, params, **extra):
    return client.get(URL, params, **extra)


def _post(client, body, content_type="application/json", **extra):
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post(URL, data, content_type=content_type, **extra)


def _drf_spy():
    """Records whether DRF's request handling (APIView.initial: auth, permission...) ran."""
    return mock.patch.object(APIView, "initial", autospec=True, side_effect=APIView.initial)


def _both(call):
    """(fast, drf) answers of the same call, and whether DRF's `initial` ran for each."""
    answers = []
    for fast in (True, False):
        with mock.patch.object(DecideView, "fast_path", fast), _drf_spy() as spy:
            answers.append((call(), spy.called))
    return answers


def _same(fast, drf) -> None:
    assert fast.status_code == drf.status_code
    assert fast.content == drf.content
    assert dict(fast.headers) == dict(drf.headers)


GET_CASES = [
    {"placements": "hero", "visitor": "ann"},
    {"placements": "hero,promo,nope", "visitor": "bob"},
    {"placements": "hero,hero", "visitor": "ann", "device": "mobile", "locale": "de"},
    {"placements": "promo", "url": "https://shop.example/x?utm_source=news", "referrer": ""},
    {"placements": "hero"},
]


@pytest.mark.django_db
@pytest.mark.parametrize("params", GET_CASES)
def test_fast_path__get__same_bytes_and_headers_as_drf(client, placements, params):
    (fast, fast_used_drf), (drf, drf_used_drf) = _both(lambda: _get(client, params))
    assert fast.status_code == 200
    assert not fast_used_drf
    assert drf_used_drf
    _same(fast, drf)


RAW_QUERIES = [
    "placements=promo&placements=hero&&visitor=ann&x",
    "placements=hero,,promo,&visitor=&device=mobile&",
    "placements=hero&visitor=a=b&locale=de",
    "visitor=ann&placements=hero&url=https://shop.example/a?b=c;d",
]


@pytest.mark.django_db
@pytest.mark.parametrize("query", RAW_QUERIES)
def test_fast_path__raw_query__same_bytes_and_headers_as_drf(client, placements, query):
    (fast, fast_used_drf), (drf, _) = _both(lambda: client.get(f"{URL}?{query}"))
    assert fast.status_code == 200
    assert not fast_used_drf
    _same(fast, drf)


QUERY_STRINGS = [
    "",
    "a",
    "a=",
    "=b",
    "a=1&a=2&b=3",
    "&&a=1&&",
    "a==b&c=d=e",
    "placements=hero,promo&visitor=x&device=mobile",
    "a+b=c+d",
    "a=%41%2C&b=%zz",
    "a=\u00e9",  # non-ASCII, as WSGI hands it over (latin-1 decoded UTF-8 bytes)
    "a=\u00c3\u00a9",
    "a=1;b=2",
    "a=1&b=2&c=3&d=4",  # over the limit below
]


@pytest.mark.parametrize("query", QUERY_STRINGS)
@pytest.mark.parametrize("charset", ["utf-8", "latin-1", "utf-16"])
def test_query_params__same_as_request_get(rf, settings, query, charset):
    from django.core.exceptions import TooManyFieldsSent

    from personalization.api.views import _query_params

    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 3
    settings.DEFAULT_CHARSET = charset

    def outcome(read):
        request = rf.get(URL)
        request.META["QUERY_STRING"] = query
        try:
            params = read(request)
        except TooManyFieldsSent:
            return "too many fields"
        names = set(params) | {"a", "b", "", "placements", "visitor", "c"}
        return {name: params[name] for name in names if name in params}

    assert outcome(_query_params) == outcome(lambda request: request.GET)


POST_CASES = [
    {"placements": ["hero"], "visitor": "ann"},
    {"placements": ["hero", "promo", "nope"], "visitor": "bob", "context": {"device": ""}},
    {"placements": ["promo"], "context": {"url": "https://shop/x", "locale": "fr"}},
]


@pytest.mark.django_db
@pytest.mark.parametrize("body", POST_CASES)
def test_fast_path__post__same_bytes_and_headers_as_drf(client, placements, body):
    (fast, fast_used_drf), (drf, _) = _both(lambda: _post(client, body))
    assert fast.status_code == 200
    assert not fast_used_drf
    _same(fast, drf)


@pytest.mark.django_db
def test_fast_path__utf8_charset__still_fast(client, placements):
    body = {"placements": ["hero"], "visitor": "ann"}
    (fast, used_drf), (drf, _) = _both(
        lambda: _post(client, body, content_type="application/json; charset=UTF-8")
    )
    assert not used_drf
    _same(fast, drf)


DATA_CASES = [
    # (no U+0000: PostgreSQL's jsonb cannot store it)
    {"headline": 'Hi \u2028 \u2029 é \U0001f600 \x01\x1f\x7f \\ " / <b>', "n": -3, "ok": True},
    {"nested": [{"a": None, "b": [1, 2, {"c": "d"}]}, [], {}], "big": 2**63},
    {"price": 19.99, "tiny": 1e-05, "huge": 1e16, "neg": -0.0},  # floats: the DRF encoder
    {"list": [1, 2.5]},
    {"beyond_64_bits": 2**70},
]


@pytest.mark.django_db
@pytest.mark.parametrize("data", DATA_CASES)
def test_fast_path__variant_data__same_bytes_as_drf(client, placements, data):
    # Given a variant whose data holds any kind of JSON value
    make_variant(placements, "data-hero", priority=1, data=data)
    (fast, used_drf), (drf, _) = _both(lambda: _get(client, {"placements": "hero"}))
    assert not used_drf
    _same(fast, drf)
    assert fast.json()["placements"]["hero"]["data"] == data


@pytest.mark.parametrize("data", [*DATA_CASES, {"x": float("nan")}, {"x": "\ud800"}])
def test_json_bytes__as_drf_json_renderer(data):
    # The fast path's encoder writes JSONRenderer's bytes, or fails as it does.
    from rest_framework.renderers import JSONRenderer

    from personalization.api.views import _json_bytes

    payload = {
        "profile": "found",
        "personalization": True,
        "snapshot": 7,
        "placements": {
            "a": {"variant": "v", "html": "<p>\u2028</p>", "data": data, "reason": "default"},
            "b": {"variant": None, "html": "", "data": {}, "reason": "x", "experiment": None},
        },
    }
    try:
        expected = JSONRenderer().render(payload)
    except Exception as exc:  # NaN (ValueError), a lone surrogate (UnicodeEncodeError)
        with pytest.raises(type(exc)):
            _json_bytes(payload)
    else:
        assert _json_bytes(payload) == expected


UNUSUAL_GET = [
    ({"placements": "hero", "explain": "1"}, None),
    ({"placements": "hero", "utm_source": "news"}, None),
    ({"placements": ""}, "placements"),
    ({"placements": "bad key!"}, "placements[0]"),
    ({"placements": ",".join(f"p{i}" for i in range(21))}, "placements"),
    ({"placements": "hero", "device": "fridge"}, "context.device"),
    ({"placements": "hero", "visitor": "x" * 201}, "visitor"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("params", "field"), UNUSUAL_GET)
def test_fast_path__unusual_get__goes_through_drf(client, placements, params, field):
    (fast, used_drf), (drf, _) = _both(lambda: _get(client, params))
    assert used_drf
    _same(fast, drf)
    if field is not None:
        assert fast.status_code == 400
        assert field in {e["field"] for e in fast.json()["errors"]}, fast.json()


UNUSUAL_POST = [
    ('{"placements": ["hero"], "visitor": NaN}', None, "body"),
    ("{oops", None, "body"),
    ("[1, 2]", None, "body"),
    ({"placements": "hero"}, None, "placements"),
    ({"placements": ["hero"], "visitor": 42}, None, None),  # DRF accepts it as "42"
    ({"placements": ["hero"], "visitor": None}, None, "visitor"),
    # A lone surrogate is not Unicode: the parser refuses the body, naming the string's field.
    ({"placements": ["hero"], "visitor": "\ud800"}, None, "visitor"),
    ({"placements": ["hero"], "context": ["url"]}, None, "context"),
    ({"placements": ["hero"], "context": {"device": ["mobile"]}}, None, "context.device"),
    ({"placements": ["hero"], "context": {"utm": {"source": "x"}}}, None, None),
    ({"placements": ["hero"], "explain": True}, None, None),
    ({"placements": [1]}, None, None),  # DRF accepts it as "1" (an unknown placement)
    ({"placements": ["hero "]}, None, None),  # DRF trims it
    ({"placements": ["hero"]}, "text/plain", "body"),
    ({"placements": ["hero"]}, "application/json; charset=latin-1", None),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("body", "content_type", "field"), UNUSUAL_POST)
def test_fast_path__unusual_post__goes_through_drf(client, placements, body, content_type, field):
    content_type = content_type or "application/json"
    (fast, used_drf), (drf, _) = _both(lambda: _post(client, body, content_type=content_type))
    assert used_drf
    _same(fast, drf)
    if field is not None:
        assert fast.status_code in (400, 415)
        assert field in {e["field"] for e in fast.json()["errors"]}, fast.json()


@pytest.mark.django_db
def test_fast_path__keyed_calls__authenticated_and_rate_limited(
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
    # DRF's answer to the same check, and each call counted once against the limit
    assert spy.call_count == 1
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[2]["Retry-After"] == "30"
    assert {e["field"] for e in answers[2].json()["errors"]} == {"api_key"}
    window = int(frozen_rate_window // 60)
    assert int(redis_client.get(f"mosaic:ratelimit:{{{api_key.pk}}}:{window}")) == 3


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
@pytest.mark.parametrize("params", GET_CASES)
def test_fast_path__publishable_key_and_origin__same_bytes_and_headers_as_drf(
    client, placements, publishable, params
):
    # Given production's call: keys required, a publishable key, an allowed Origin
    headers = {"HTTP_X_MOSAIC_KEY": publishable, "HTTP_ORIGIN": PRODUCTION}
    # When it is answered by the lean path and by DRF
    (fast, fast_used_drf), (drf, drf_used_drf) = _both(lambda: _get(client, params, **headers))
    # Then the same bytes and headers (CORS included), without DRF on the lean path
    assert fast.status_code == 200
    assert fast["Access-Control-Allow-Origin"] == PRODUCTION
    assert not fast_used_drf
    assert drf_used_drf
    _same(fast, drf)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("headers", "status", "field"),
    [
        ({"HTTP_ORIGIN": PRODUCTION}, 401, "api_key"),
        ({"HTTP_X_MOSAIC_KEY": "mk_pub_nope", "HTTP_ORIGIN": PRODUCTION}, 401, "api_key"),
        ({"HTTP_X_MOSAIC_KEY": "KEY", "HTTP_ORIGIN": "https://evil.example"}, 403, "origin"),
    ],
)
def test_fast_path__key_refused__drf_answer_same_on_both_paths(
    client, placements, publishable, headers, status, field, redis_client
):
    # Given a call with no key, an unknown key, or a key from an origin it does not allow
    headers = {k: publishable if v == "KEY" else v for k, v in headers.items()}
    # When it is answered with the lean path on and off
    (fast, fast_used_drf), (drf, _) = _both(lambda: _get(client, {"placements": "hero"}, **headers))
    # Then DRF gives its refusal, the same on both
    assert fast_used_drf
    assert fast.status_code == status
    assert {e["field"] for e in fast.json()["errors"]} == {field}
    _same(fast, drf)


@pytest.mark.django_db
def test_fast_path__publishable_key_on_other_endpoint__unchanged(client, placements, publishable):
    # A publishable key still cannot export a profile (secret-only endpoint, not decide)
    response = client.get("/api/v1/profiles/ann/export", HTTP_X_MOSAIC_KEY=publishable)
    assert response.status_code == 403


@pytest.mark.django_db
def test_fast_path__unknown_key__401(client, placements):
    response = _get(client, {"placements": "hero"}, HTTP_X_MOSAIC_KEY="mk_pub_nope")
    assert response.status_code == 401
    assert {e["field"] for e in response.json()["errors"]} == {"api_key"}


@pytest.mark.django_db
def test_fast_path__keys_required__no_key_still_401(client, placements, settings):
    settings.MOSAIC_REQUIRE_API_KEY = True
    response = _get(client, {"placements": "hero"})
    assert response.status_code == 401


@pytest.mark.django_db
def test_fast_path__staff_session__explain_and_csrf_through_drf(admin_client, placements):
    # A staff session (cookie) is resolved by DRF: explain is given...
    body = admin_client.get(URL, {"placements": "hero", "visitor": "x", "explain": "1"}).json()
    assert "explain" in body["placements"]["hero"]
    # ...and a session-authenticated POST without a CSRF token is refused, as before.
    admin_client.handler.enforce_csrf_checks = True
    response = _post(admin_client, {"placements": ["hero"]})
    assert response.status_code == 403


@pytest.mark.django_db
def test_fast_path__steady_state__no_database_query(client, placements, django_assert_num_queries):
    _get(client, {"placements": "hero,promo", "visitor": "ann"})  # warm the snapshot
    with django_assert_num_queries(0):
        assert _get(client, {"placements": "hero,promo", "visitor": "ann"}).status_code == 200
        assert _post(client, {"placements": ["hero"], "visitor": "bob"}).status_code == 200


@pytest.mark.parametrize(
    "query",
    [
        {"placements": "promo"},
        {"placements": "promo,hero", "visitor": "ann", "device": "mobile", "locale": "de-DE"},
        {"placements": "promo", "visitor": "", "url": "https://shop.example/a?utm_source=x"},
        {"placements": "promo", "referrer": "https://news.example/", "device": ""},
    ],
)
def test_decide_get__fast_validation__same_as_serializer(query):
    # Given a plainly valid GET query (the decide hot path skips the DRF serializer for these)
    from django.http import QueryDict

    from personalization.api.serializers import DecideRequestSerializer
    from personalization.api.views import _fast_validated, _query_to_body

    params = QueryDict(mutable=True)
    params.update(query)
    body = _query_to_body(params)
    # When validated both ways
    serializer = DecideRequestSerializer(data=body)
    assert serializer.is_valid(), serializer.errors
    # Then the fast path yields exactly what the serializer does
    assert _fast_validated(body) == json.loads(json.dumps(serializer.validated_data))


@pytest.mark.parametrize(
    "body",
    [
        {"placements": ["bad key!"]},
        {"placements": ["p"] * 25},
        {"placements": ["p"], "visitor": " padded "},
        {"placements": ["p"], "context": {"device": "toaster"}},
        {"placements": ["p"], "context": {"utm": {"source": "x"}}},
        {"placements": ["p"], "explain": "1"},
    ],
)
def test_decide_get__unusual_query__left_to_serializer(body):
    from personalization.api.views import _fast_validated

    assert _fast_validated(body) is None


@pytest.mark.django_db
def test_schema__decide_documented_for_get_and_post(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    decide = schema["paths"]["/api/v1/decide"]
    assert set(decide) >= {"get", "post"}
    assert {p["name"] for p in decide["get"]["parameters"]} >= {"placements", "visitor", "url"}
    post_body = decide["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert post_body["$ref"].endswith("/DecideRequest")
    for method in ("get", "post"):
        answer = decide[method]["responses"]["200"]["content"]["application/json"]["schema"]
        assert answer["$ref"].endswith("/DecideResponse")
    assert {"DecideRequest", "DecideResponse"} <= set(schema["components"]["schemas"])
    assert client.get("/api/docs/").status_code == 200
