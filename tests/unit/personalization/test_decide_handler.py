"""personalization/api/handler.py: decide calls without a session or CSRF cookie served by the
decide edge (as config/wsgi.py composes it), with every behaviour of the decide endpoint: keys,
origins, CORS (preflight included), rate limits with Retry-After, field errors, consent, the
security headers, the 503 of a dead database, each answer as Django's own handler gives it;
every other request by Django's own handler."""

from __future__ import annotations

import json
import re

import pytest
from django.conf import settings as django_settings
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, connection
from django.test import RequestFactory

from access import services as access_services
from personalization.api import handler as decide_handler
from profiles import services as profile_services
from profiles.models import Profile
from tests.factories import make_placement, make_variant

URL = "/api/v1/decide"
SHOP = "https://shop.example"
SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}


class Answer:
    def __init__(self, status: str, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status_code = int(status.split(" ", 1)[0])
        self.headers = {name.lower(): value for name, value in headers}
        self.body = body

    def __getitem__(self, name: str) -> str:
        return self.headers[name.lower()]

    def json(self):
        return json.loads(self.body)


@pytest.fixture
def app(db):
    """The WSGI application as config/wsgi.py composes it (without the access log). Database
    connections stay open across its requests, as Django's test client keeps them (the test's
    transaction lives on the connection)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        application = decide_handler.decide_dispatched(WSGIHandler())
        # The edge's own call of close_old_connections, unhooked the same way.
        application.decide_handler.database_hygiene = lambda: None
        yield application
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def call(app, method: str, path: str = URL, **kwargs) -> Answer:
    request = getattr(RequestFactory(), method)(path, **kwargs)
    started: list = []
    chunks = app(request.environ, lambda status, headers: started.append((status, headers)))
    try:
        body = b"".join(chunks)
    finally:
        if hasattr(chunks, "close"):  # Django's responses; the edge answers with a list
            chunks.close()
    return Answer(*started[0], body)


@pytest.fixture
def hero(db):
    placement = make_placement("hero")
    make_variant(placement, "gold-hero", condition={"profile.traits.tier": "gold"})
    return placement


@pytest.fixture
def keys_required(settings):
    settings.MOSAIC_REQUIRE_API_KEY = True


@pytest.fixture
def site_key(db) -> str:
    _, raw = access_services.api_key_create(
        name="web", kind="publishable", allowed_origins=[SHOP], rate_limit_per_minute=600
    )
    return raw


def keyed_get(app, raw: str, origin: str | None = SHOP, **params) -> Answer:
    headers = {"X-Mosaic-Key": raw}
    if origin:
        headers["Origin"] = origin
    return call(app, "get", data={"placements": "hero", **params}, headers=headers)


def test_decide_middleware__settings__all_but_the_page_machinery_in_order():
    # Given the project's middleware
    # When the lean handler's chain is derived from it
    chain = decide_handler.decide_middleware()
    # Then it is settings.MIDDLEWARE in order, less only the named page machinery (a middleware
    # added later is kept), and the security, CORS and session (Vary) middleware are in it
    skipped = decide_handler.NOT_FOR_DECIDE
    assert chain == [m for m in django_settings.MIDDLEWARE if m not in skipped]
    assert set(django_settings.MIDDLEWARE) >= skipped
    for kept in (
        "django.middleware.security.SecurityMiddleware",
        "corsheaders.middleware.CorsMiddleware",
        "personalization.middleware.SessionMiddleware",
        "django.middleware.clickjacking.XFrameOptionsMiddleware",
    ):
        assert kept in chain


@pytest.mark.parametrize(
    ("path", "cookie", "routed"),
    [
        (URL, "", True),
        (URL, "theme=dark", True),
        (URL, f"{django_settings.SESSION_COOKIE_NAME}=abc", False),
        (URL, f"theme=dark; {django_settings.CSRF_COOKIE_NAME}=abc", False),
        (URL + "/", "", False),
        ("/api/v1/events", "", False),
        ("/healthz", "", False),
    ],
)
def test_routed_to_decide__path_and_cookies__only_cookieless_decide(path, cookie, routed):
    # Given a request's path and cookies
    environ = {"PATH_INFO": path}
    if cookie:
        environ["HTTP_COOKIE"] = cookie
    # When the dispatcher looks at it
    # Then only decide without a session or CSRF cookie goes to the lean handler
    assert decide_handler._routed_to_decide(environ) is routed


@pytest.mark.django_db
def test_decide_edge__keyed_call_from_allowed_origin__decision_with_cors_and_security_headers(
    app, hero, keys_required, site_key
):
    # Given production's call: keys required, a publishable key, the shop's Origin
    # When it asks for the hero
    answer = keyed_get(app, site_key, visitor="ann")
    # Then the decision, with CORS for the shop, the security headers, Vary and a length
    assert answer.status_code == 200
    assert answer.json()["placements"]["hero"]["reason"] == "default"
    assert answer["Content-Type"] == "application/json"
    assert answer["Access-Control-Allow-Origin"] == SHOP
    assert {"origin", "cookie"} <= {v.strip().lower() for v in answer["Vary"].split(",")}
    for name, value in SECURITY_HEADERS.items():
        assert answer[name] == value
    assert int(answer["Content-Length"]) == len(answer.body)
    assert answer["Allow"] == "GET, POST, HEAD, OPTIONS"
    assert "set-cookie" not in answer.headers


@pytest.mark.django_db
def test_decide_edge__post_json__same_decision_as_get(app, hero, keys_required, site_key):
    # Given a gold visitor
    profile_services.profile_set_traits(visitor="ann", traits={"tier": "gold"})
    # When the page asks by POST with a JSON body
    answer = call(
        app,
        "post",
        data={"placements": ["hero"], "visitor": "ann"},
        content_type="application/json",
        headers={"X-Mosaic-Key": site_key, "Origin": SHOP},
    )
    # Then the targeted variant is served, as by GET
    assert answer.status_code == 200
    assert answer.json()["placements"]["hero"]["reason"] == "targeted:gold-hero"
    assert keyed_get(app, site_key, visitor="ann").json() == answer.json()


@pytest.mark.django_db
def test_decide_edge__unknown_key__401_names_api_key(app, hero, keys_required):
    # Given a key nobody issued
    # When it calls decide
    answer = keyed_get(app, "mk_pub_forged")
    # Then 401 in the one error shape, naming the field, with the challenge and the security
    # headers
    assert answer.status_code == 401
    assert [e["field"] for e in answer.json()["errors"]] == ["api_key"]
    assert answer["WWW-Authenticate"] == 'Bearer realm="mosaic"'
    assert answer["X-Content-Type-Options"] == "nosniff"


@pytest.mark.django_db
def test_decide_edge__keys_required_keyless__401(app, hero, keys_required):
    answer = call(app, "get", data={"placements": "hero"})
    assert answer.status_code == 401
    assert [e["field"] for e in answer.json()["errors"]] == ["api_key"]


@pytest.mark.django_db
def test_decide_edge__key_from_other_origin__403_names_origin_without_cors(
    app, hero, keys_required, site_key
):
    # Given the shop's key sent from another site
    # When it calls decide
    answer = keyed_get(app, site_key, origin="https://evil.example")
    # Then 403 naming the origin, and no CORS permission for that site
    assert answer.status_code == 403
    assert [e["field"] for e in answer.json()["errors"]] == ["origin"]
    assert "access-control-allow-origin" not in answer.headers


@pytest.mark.django_db
def test_decide_edge__cors_preflight__allowed_for_the_shop_with_the_key_header(
    app, hero, keys_required, site_key
):
    # Given a browser on the shop about to send the key header
    # When it sends the preflight
    answer = call(
        app,
        "options",
        headers={
            "Origin": SHOP,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "x-mosaic-key",
        },
    )
    # Then the shop may send it (and another site is not told so)
    assert answer.status_code == 200
    assert answer["Access-Control-Allow-Origin"] == SHOP
    assert "x-mosaic-key" in answer["Access-Control-Allow-Headers"]
    other = call(
        app,
        "options",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert "access-control-allow-origin" not in other.headers


@pytest.mark.django_db
def test_decide_edge__over_the_rate_limit__429_with_retry_after(
    app, hero, keys_required, frozen_rate_window
):
    # Given a key allowed 3 calls a minute
    _, raw = access_services.api_key_create(
        name="tiny", kind="publishable", allowed_origins=[SHOP], rate_limit_per_minute=3
    )
    # When a visitor of the shop calls 5 times
    answers = [keyed_get(app, raw) for _ in range(5)]
    # Then 3 are served and the rest are told when to come back, naming the key
    assert [a.status_code for a in answers] == [200, 200, 200, 429, 429]
    refused = answers[-1]
    assert [e["field"] for e in refused.json()["errors"]] == ["api_key"]
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert refused["Access-Control-Allow-Origin"] == SHOP


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("params", "field"),
    [({"placements": "bad key!"}, "placements[0]"), ({"device": "fridge"}, "context.device")],
)
def test_decide_edge__invalid_query__400_names_field(
    app, hero, keys_required, site_key, params, field
):
    answer = keyed_get(app, site_key, **params)
    assert answer.status_code == 400
    assert field in [e["field"] for e in answer.json()["errors"]]
    assert answer["Access-Control-Allow-Origin"] == SHOP


@pytest.mark.django_db
def test_decide_edge__unknown_body_field__400_names_it(app, hero, keys_required, site_key):
    answer = call(
        app,
        "post",
        data={"placements": ["hero"], "colour": "red"},
        content_type="application/json",
        headers={"X-Mosaic-Key": site_key, "Origin": SHOP},
    )
    assert answer.status_code == 400
    assert [e["field"] for e in answer.json()["errors"]] == ["colour"]


@pytest.mark.django_db
def test_decide_edge__no_personalization_consent__profile_rules_skipped(
    app, hero, keys_required, site_key
):
    # Given a gold visitor who refused personalization
    profile = profile_services.profile_set_traits(visitor="bea", traits={"tier": "gold"})
    Profile.objects.filter(pk=profile.pk).update(consent={"personalization": False})
    profile_services.profile_cache_write(profile_ids=[profile.pk])
    # When deciding
    body = keyed_get(app, site_key, visitor="bea").json()
    # Then the profile is not used, and the reason says why
    assert body["personalization"] is False
    assert body["placements"]["hero"]["reason"] == "default:no_consent"


@pytest.mark.django_db
def test_decide_edge__staff_session__full_cycle_with_explanations(app, admin_client, hero):
    # Given a staff member signed in (a session cookie; admin_client logs in without a request)
    cookie = "; ".join(f"{m.key}={m.value}" for m in admin_client.cookies.values())
    # When they ask decide to explain
    answer = call(app, "get", data={"placements": "hero", "explain": "1"}, HTTP_COOKIE=cookie)
    # Then Django's full cycle loaded the session and the explanation is given
    assert answer.status_code == 200
    assert "explain" in answer.json()["placements"]["hero"]


@pytest.mark.django_db(transaction=True)
def test_decide_edge__database_down_key_not_cached__503_naming_database(
    app, hero, keys_required, site_key
):
    # Given a key this process has not looked up yet, and the database unreachable
    original = connection.settings_dict["NAME"]
    connection.close()
    connection.settings_dict["NAME"] = (
        "/nonexistent-dir/mosaic-down.sqlite3"
        if connection.vendor == "sqlite"
        else "mosaic_database_that_does_not_exist"
    )
    try:
        # When the shop's page calls decide
        answer = keyed_get(app, site_key)
    finally:
        connection.close()
        connection.settings_dict["NAME"] = original
    # Then 503 in the one error shape, with Retry-After (not an HTML 500)
    assert answer.status_code == 503, answer.body[:300]
    assert answer["Content-Type"] == "application/json"
    assert answer["Retry-After"]
    assert [e["field"] for e in answer.json()["errors"]] == ["database"]


def test_cors_settings__every_one_corsheaders_reads__defined_with_its_default():
    # Given the settings django-cors-headers reads on every /api/ call (its conf properties)
    # and the legacy names it evaluates as their defaults
    from corsheaders.conf import Settings
    from corsheaders.defaults import default_methods

    read = [name for name in vars(Settings) if name.startswith("CORS_")]
    legacy = ["CORS_ORIGIN_ALLOW_ALL", "CORS_ORIGIN_WHITELIST", "CORS_ORIGIN_REGEX_WHITELIST"]
    # When the project's settings are looked at
    # Then each is defined (an undefined one costs a raised AttributeError per read)
    for name in [*read, *legacy]:
        assert hasattr(django_settings._wrapped, name), name
    # And those the project has no value of its own for keep corsheaders' defaults
    assert django_settings.CORS_ALLOW_ALL_ORIGINS is False
    assert django_settings.CORS_ALLOW_CREDENTIALS is False
    assert django_settings.CORS_ALLOW_PRIVATE_NETWORK is False
    assert tuple(django_settings.CORS_ALLOWED_ORIGIN_REGEXES) == ()
    assert tuple(django_settings.CORS_EXPOSE_HEADERS) == ()
    assert django_settings.CORS_PREFLIGHT_MAX_AGE == 86400
    assert tuple(django_settings.CORS_ALLOW_METHODS) == tuple(default_methods)


# --- the edge answers as Django's own handler would ----------------------------------------------


def django_and_edge(app) -> tuple:
    """Django's own handler (every path through the whole cycle) and the edge beside it."""
    return WSGIHandler(), app


def same_answer(app, method: str, path: str = URL, **kwargs) -> tuple[Answer, Answer]:
    django_app, edge_app = django_and_edge(app)
    return call(django_app, method, path, **kwargs), call(edge_app, method, path, **kwargs)


def assert_same(django_answer: Answer, edge_answer: Answer) -> None:
    assert edge_answer.status_code == django_answer.status_code
    assert edge_answer.headers == django_answer.headers
    if django_answer.headers.get("content-type") == "application/json":
        assert edge_answer.json() == django_answer.json()
    else:
        assert edge_answer.body == django_answer.body


KEYED = {"HTTP_X_MOSAIC_KEY": None, "HTTP_ORIGIN": SHOP}  # the key filled in by the test


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "kwargs", "status"),
    [
        ("get", {"data": {"placements": "hero", "visitor": "ann"}}, 200),
        ("get", {"data": {"placements": "hero"}, "HTTP_X_MOSAIC_KEY": "mk_pub_forged"}, 401),
        ("get", {"data": {"placements": "hero"}, "HTTP_ORIGIN": "https://evil.example"}, 403),
        ("get", {"data": {"placements": "bad key!"}}, 400),
        ("get", {"data": {"placements": "hero"}, "HTTP_ORIGIN": None}, 200),
        (
            "post",
            {
                "data": {"placements": ["hero"], "visitor": "ann"},
                "content_type": "application/json",
            },
            200,
        ),
        ("post", {"data": "placements=hero", "content_type": "text/plain"}, 415),
        ("post", {"data": "{not json", "content_type": "application/json"}, 400),
        ("put", {"data": {}, "content_type": "application/json"}, 405),
        ("head", {"data": {"placements": "hero"}}, 200),
        ("get", {"data": {"placements": "hero", **{f"f{i}": "x" for i in range(1001)}}}, 400),
        (
            "options",
            {"HTTP_ACCESS_CONTROL_REQUEST_METHOD": "GET", "HTTP_X_MOSAIC_KEY": None},
            200,
        ),
    ],
    ids=[
        "decision",
        "unknown-key",
        "other-origin",
        "invalid-field",
        "no-origin",
        "post-json",
        "post-not-json",
        "post-malformed",
        "method-not-allowed",
        "head",
        "too-many-fields",
        "preflight",
    ],
)
def test_decide_edge__any_call__the_answer_of_djangos_own_handler(
    app, hero, keys_required, site_key, method, kwargs, status
):
    # Given production's settings and a call of each kind, keyed from the shop unless it says
    # otherwise
    profile_services.profile_set_traits(visitor="ann", traits={"tier": "gold"})
    headers = {**KEYED, "HTTP_X_MOSAIC_KEY": site_key}
    headers.update({k: v for k, v in kwargs.items() if k.startswith("HTTP_")})
    headers = {k: v for k, v in headers.items() if v is not None}
    rest = {k: v for k, v in kwargs.items() if not k.startswith("HTTP_")}
    # When Django's whole cycle answers it, and then the edge
    django_answer, edge_answer = same_answer(app, method, **rest, **headers)
    # Then both give the same status, the same headers (security, CORS, Vary, length...) and
    # the same body
    assert django_answer.status_code == status
    assert_same(django_answer, edge_answer)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("setting", "value", "extra", "status"),
    [
        # SecurityMiddleware's process_request answers: only the steps before it run after
        ("SECURE_SSL_REDIRECT", True, {}, 301),
        # CommonMiddleware's process_request raises PermissionDenied: Django's 403, through the
        # security, CORS and session steps only
        ("DISALLOWED_USER_AGENTS", [re.compile("EvilBot")], {"HTTP_USER_AGENT": "EvilBot/1"}, 403),
        # request.get_host() refuses the Host: Django's 400 for a DisallowedHost
        ("ALLOWED_HOSTS", ["shop.example"], {}, 400),
    ],
    ids=["ssl-redirect", "disallowed-agent", "disallowed-host"],
)
def test_decide_edge__a_middleware_answers_first__the_answer_of_djangos_own_handler(
    app, hero, keys_required, site_key, settings, setting, value, extra, status
):
    # Given a setting under which a middleware answers before the view (the application
    # composed after it: SecurityMiddleware reads its settings when it is made)
    setattr(settings, setting, value)
    application = decide_handler.decide_dispatched(WSGIHandler())
    application.decide_handler.database_hygiene = lambda: None
    # When a keyed decide call reaches Django's whole cycle and then the edge
    django_answer, edge_answer = same_answer(
        application,
        "get",
        data={"placements": "hero"},
        HTTP_X_MOSAIC_KEY=site_key,
        HTTP_ORIGIN=SHOP,
        **extra,
    )
    # Then that middleware's answer, through the same steps, from both
    assert django_answer.status_code == status
    assert_same(django_answer, edge_answer)


@pytest.mark.django_db
def test_decide_edge__view_raises__djangos_500_and_its_signal(
    app, hero, keys_required, site_key, monkeypatch
):
    # Given a decision that fails unexpectedly (a defect, not a refusal)
    from django.core.signals import got_request_exception

    from personalization.api import views

    def broken(**kwargs):
        raise RuntimeError("defect")

    monkeypatch.setattr(views, "decide", broken)
    raised: list = []

    def on_exception(sender, request, **kwargs):
        raised.append(request.path)

    got_request_exception.connect(on_exception)
    try:
        # When Django's whole cycle and then the edge answer a keyed call
        django_answer, edge_answer = same_answer(
            app, "get", data={"placements": "hero"}, HTTP_X_MOSAIC_KEY=site_key, HTTP_ORIGIN=SHOP
        )
    finally:
        got_request_exception.disconnect(on_exception)
    # Then both answer Django's 500 with the same headers, and both report the exception
    assert django_answer.status_code == 500
    assert_same(django_answer, edge_answer)
    assert raised == [URL, URL]


class _OwnCallMiddleware:
    """A middleware with its own __call__ (the edge cannot know its steps)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response["X-Own-Call"] = "yes"
        return response


@pytest.mark.django_db
def test_decide_edge__middleware_with_its_own_call__decide_through_djangos_chain(
    hero, settings, caplog
):
    # Given a middleware added to the project that the edge knows no steps of
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, f"{__name__}._OwnCallMiddleware"]
    # When the application is composed
    with caplog.at_level("WARNING", logger="personalization.api.handler"):
        application = decide_handler.decide_dispatched(WSGIHandler())
    edge = application.decide_handler
    # Then the edge is off, says why, and decide calls still get what that middleware does
    assert edge.on is False
    assert "_OwnCallMiddleware" in caplog.text
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        answer = call(application, "get", data={"placements": "hero"})
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    assert answer.status_code == 200
    assert answer["X-Own-Call"] == "yes"
    assert answer.json()["placements"]["hero"]["reason"] == "default"


def test_edge_steps__project_middleware__every_one_known_so_the_edge_is_on():
    # Given the project's middleware, less what decide skips
    # When the edge derives each one's steps
    from django.utils.module_loading import import_string

    steps = {
        path: decide_handler.edge_steps(import_string(path)(lambda request: None))
        for path in decide_handler.decide_middleware()
    }
    # Then every one is known (else decide would lose the edge in production)
    assert all(step is not None for step in steps.values()), steps
    assert decide_handler.DecideEdge().on is True


@pytest.mark.django_db(transaction=True)
def test_decide_edge__database_used__connection_closed_after_the_call_at_conn_max_age_0(
    hero, settings
):
    # Given connections closed at the end of each request (CONN_MAX_AGE 0), and a keyed call
    # whose key this process has not looked up yet (a query)
    settings.MOSAIC_REQUIRE_API_KEY = True
    _, raw = access_services.api_key_create(
        name="web", kind="publishable", allowed_origins=[SHOP], rate_limit_per_minute=600
    )
    connection.close()
    application = decide_handler.decide_dispatched(WSGIHandler())
    saved = connection.settings_dict["CONN_MAX_AGE"]
    connection.settings_dict["CONN_MAX_AGE"] = 0
    try:
        # When the edge answers it
        answer = keyed_get(application, raw)
        # Then the answer is given and the connection it opened is closed, as Django's
        # request_finished would close it
        assert answer.status_code == 200
        assert connection.connection is None
    finally:
        connection.settings_dict["CONN_MAX_AGE"] = saved


@pytest.mark.django_db
def test_decide_edge__error_reporting_on__ids_remembered_while_deciding_and_forgotten_after(
    app, hero, settings, monkeypatch
):
    # Given error reporting's middleware installed first, as the settings install it with a DSN
    from core import error_reporting
    from personalization.api import views

    settings.MIDDLEWARE = ["core.error_reporting.RequestIdsRemembered", *settings.MIDDLEWARE]
    application = decide_handler.decide_dispatched(WSGIHandler())
    application.decide_handler.database_hygiene = lambda: None
    seen: list = []
    real_decide = views.decide

    def recording(**kwargs):
        seen.append(error_reporting._request_ids_var.get())
        return real_decide(**kwargs)

    monkeypatch.setattr(views, "decide", recording)
    # When a decide call naming a visitor is answered
    answer = call(application, "get", data={"placements": "hero", "visitor": "ann-42"})
    # Then the edge stayed on (the middleware's steps are known), the id was remembered while
    # deciding (an error event then would redact it) and is forgotten after
    assert application.decide_handler.on is True
    assert answer.status_code == 200
    assert seen == [frozenset({"ann-42"})]
    assert error_reporting._request_ids_var.get() == frozenset()


@pytest.mark.django_db
def test_decide_edge__database_hygiene_fails__answer_given_and_failure_logged(app, hero, caplog):
    # Given closing old database connections failing after a call (a broken connection)
    def broken():
        raise RuntimeError("connection reset")

    app.decide_handler.database_hygiene = broken
    # When a decide call is answered
    with caplog.at_level("ERROR", logger="personalization.api.handler"):
        answer = call(app, "get", data={"placements": "hero"})
    # Then the answer is given all the same, and the failure is logged
    assert answer.status_code == 200
    assert answer.json()["placements"]["hero"]["reason"] == "default"
    assert "closing old database connections failed" in caplog.text
