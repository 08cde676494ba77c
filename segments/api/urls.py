"""URLs of the segment management API (included under api/v1/ by the project urls)."""

from django.urls import path

from . import views

urlpatterns = [
    path("segments", views.SegmentListView.as_view(), name="api-segments"),
    path("segments/<slug:key>", views.SegmentDetailView.as_view(), name="api-segment"),
    path(
        "segments/<slug:key>/members",
        views.SegmentMembersView.as_view(),
        name="api-segment-members",
    ),
    path("segments/<slug:key>/runs", views.SegmentRunsView.as_view(), name="api-segment-runs"),
    path(
        "segments/<slug:key>/warnings",
        views.SegmentWarningsView.as_view(),
        name="api-segment-warnings",
    ),
]
