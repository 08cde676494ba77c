"""URLs of the experiments API (included from the project urls under api/v1/)."""

from django.urls import path

from . import views

urlpatterns = [
    path("experiments", views.ExperimentListView.as_view(), name="api-experiments"),
    # Before experiments/<key>: "plan" is not an experiment key.
    path("experiments/plan", views.ExperimentPlanView.as_view(), name="api-experiments-plan"),
    path("experiments/<slug:key>", views.ExperimentDetailView.as_view(), name="api-experiment"),
    path("experiments/<slug:key>/start", views.ExperimentStartView.as_view()),
    path("experiments/<slug:key>/pause", views.ExperimentPauseView.as_view()),
    path("experiments/<slug:key>/stop", views.ExperimentStopView.as_view()),
    path(
        "experiments/<slug:key>/results",
        views.ExperimentResultsView.as_view(),
        name="api-experiment-results",
    ),
    path(
        "experiments/<slug:key>/results.csv",
        views.ExperimentResultsCsvView.as_view(),
        name="api-experiment-results-csv",
    ),
]
