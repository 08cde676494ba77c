from django.urls import path

from .views import AttributeAnalysisDetailView, AttributeAnalysisView

urlpatterns = [
    path("api/v1/analysis/attributes", AttributeAnalysisView.as_view(), name="api-analysis"),
    path(
        "api/v1/analysis/attributes/<int:analysis_id>",
        AttributeAnalysisDetailView.as_view(),
        name="api-analysis-detail",
    ),
]
