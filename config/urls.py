"""URL map: demo page, admin, the v1 API and its OpenAPI documentation."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from core.errors import api_error_view
from demo import views as demo_views
from identity.views import IdentifyView, TraitsView
from ingestion.views import EventsView
from personalization import admin_views
from personalization.api.preview import VariantPreviewView
from personalization.api.views import DecideView
from personalization.middleware import DECIDE_PATH
from profiles.views import ConsentView, ProfileEraseView, ProfileExportView
from segments.builder import condition_check

from . import views

admin.site.site_header = "Mosaic"
admin.site.site_title = "Mosaic admin"
admin.site.index_title = "Personalization"

urlpatterns = [
    # First: the hot path (Django tries the patterns in order; each failing one costs a little,
    # the admin include a Resolver404). No other pattern matches "api/v1/decide", so the order
    # changes no URL's view.
    path(DECIDE_PATH.removeprefix("/"), DecideView.as_view(), name="api-decide"),
    path("", demo_views.demo, name="demo"),
    path("demo/server", demo_views.demo_server, name="demo-server"),
    path("demo/webhook-echo", demo_views.webhook_echo, name="demo-webhook-echo"),
    path("healthz", views.healthz, name="healthz"),
    path("metrics", views.metrics_view, name="metrics"),
    path(
        "admin/mosaic/variants/<int:variant_id>/preview/",
        admin_views.variant_preview,
        name="mosaic-variant-preview",
    ),
    path("admin/mosaic/conditions/check", condition_check, name="mosaic-condition-check"),
    path("admin/", admin.site.urls),
    path("api/v1/events", EventsView.as_view(), name="api-events"),
    path("api/v1/consent", ConsentView.as_view(), name="api-consent"),
    # path: visitor ids may contain "/"; the export route is tried first.
    path(
        "api/v1/profiles/<path:visitor>/export",
        ProfileExportView.as_view(),
        name="api-profile-export",
    ),
    path("api/v1/profiles/<path:visitor>", ProfileEraseView.as_view(), name="api-profile-erase"),
    path("api/v1/identify", IdentifyView.as_view(), name="api-identify"),
    path("api/v1/traits", TraitsView.as_view(), name="api-traits"),
    path(
        "api/v1/variants/<int:variant_id>/preview",
        VariantPreviewView.as_view(),
        name="api-variant-preview",
    ),
    path("api/v1/", include("content.api.urls")),
    path("api/v1/", include("experiments.api.urls")),
    path("api/v1/", include("segments.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("", include("analysis.urls")),
    path("api/v1/recommendations/", include("recommendations.urls")),
]

# Unknown paths, oversized bodies and server errors under /api/ answer the one JSON error shape.
handler400 = api_error_view(400)
handler403 = api_error_view(403)
handler404 = api_error_view(404)
handler500 = api_error_view(500)
