"""The one error shape: domain errors, Django-level failures under /api/, oversized bodies."""

import pytest
from django.test import RequestFactory

from core.errors import (
    Conflict,
    MosaicError,
    Unavailable,
    api_error_view,
    exception_handler,
    unavailable_on_redis_error,
)


def test_exception_handler__domain_error__status_field_and_retry_after():
    # Given a service's refusal carrying its status, field and Retry-After
    error = Unavailable("Queue down; nothing stored.", field="events", retry_after=7)
    # When the API's handler maps it
    response = exception_handler(error, {})
    # Then the answer is the one shape with that status and header
    assert response.status_code == 503
    assert response.data == {
        "errors": [{"field": "events", "message": "Queue down; nothing stored."}]
    }
    assert response["Retry-After"] == "7"


def test_exception_handler__conflict__no_retry_after():
    # Given a refusal a retry cannot fix
    response = exception_handler(Conflict(field="visitor"), {})
    # Then it is a 409 naming the field, without Retry-After
    assert response.status_code == 409
    assert response.data["errors"][0]["field"] == "visitor"
    assert not response.has_header("Retry-After")


def test_exception_handler__untranslated_redis_error__503_with_retry_after():
    # Given a Redis failure no service translated
    import redis

    response = exception_handler(redis.ConnectionError("down"), {})
    # Then the client still gets the one shape, a 503 and when to retry
    assert response.status_code == 503
    assert response.data["errors"][0]["field"] == "body"
    assert int(response["Retry-After"]) > 0


def test_unavailable_on_redis_error__redis_fails__domain_error_raised():
    # Given a service decorated with what a Redis failure means for it
    import redis

    @unavailable_on_redis_error("Nothing was recorded.", field="visitor", retry_after=3)
    def service():
        raise redis.TimeoutError("slow")

    # When Redis fails inside it, Then callers see the domain error, not the transport one
    with pytest.raises(Unavailable) as raised:
        service()
    assert (raised.value.field, raised.value.message, raised.value.retry_after) == (
        "visitor",
        "Nothing was recorded.",
        3,
    )
    assert isinstance(raised.value, MosaicError)


def test_api__unknown_path__json_404(client):
    # When a client calls a path under /api/ that does not exist
    response = client.get("/api/v1/no-such-endpoint")
    # Then it gets the JSON error shape, not Django's HTML page
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert response.json() == {"errors": [{"field": "path", "message": "No such endpoint."}]}


def test_site__unknown_path_outside_api__html_404(client):
    # When a browser asks for an unknown page outside the API, Then Django's page answers
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/v1/events", "/api/v1/consent", "/api/v1/identify"])
def test_api__oversized_body__json_413(client, settings, path):
    # Given the body limit
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    # When a body over it is posted
    body = b'{"events": "' + b"a" * 4096 + b'"}'
    response = client.post(path, data=body, content_type="application/json")
    # Then the answer is a 413 in the one error shape naming the body
    assert response.status_code == 413
    assert response.json() == {"errors": [{"field": "body", "message": "Request body too large."}]}


def test_api_error_view__server_error_under_api__json_500():
    # Given an unhandled server error on an API path
    request = RequestFactory().get("/api/v1/decide")
    # When Django's handler500 answers
    response = api_error_view(500)(request)
    # Then it is the one shape, without detail
    assert response.status_code == 500
    assert response["Content-Type"].startswith("application/json")
