"""The project's URLs plus one view with a bug, for the error-reporting tests: its exception
message names the visitor, as a careless ``raise`` in a view might."""

from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from config.urls import urlpatterns as project_urlpatterns


@csrf_exempt  # an API-like view: the test posts JSON with a cookie
def broken(request: HttpRequest) -> HttpResponse:
    import json

    visitor = request.GET.get("visitor") or json.loads(request.body)["events"][0]["visitor"]
    raise ValueError(f"cannot decide for visitor {visitor}")


urlpatterns = [path("broken", broken), *project_urlpatterns]
