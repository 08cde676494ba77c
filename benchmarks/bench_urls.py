"""Benchmark-only URLs: the project's URLs plus a bare JsonResponse view (the HTTP baseline).

Only loaded through benchmarks.bench_settings (DJANGO_SETTINGS_MODULE), never in production.
"""

from django.http import JsonResponse
from django.urls import path

from config.urls import urlpatterns as project_urlpatterns


def bare(request):
    return JsonResponse({"ok": True})


urlpatterns = [path("bench/bare", bare, name="bench-bare"), *project_urlpatterns]
