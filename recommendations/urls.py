"""URLs of recommendations, under /api/v1/recommendations/ (included by the project urls)."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from .views import ItemViewSet, TrainingRunViewSet, TrainView

router = SimpleRouter()
router.trailing_slash = "/?"  # both /items and /items/, like the other v1 endpoints
router.register("items", ItemViewSet, basename="recs-item")
router.register("runs", TrainingRunViewSet, basename="recs-run")

urlpatterns = [
    path("train", TrainView.as_view(), name="recs-train"),
    *router.urls,
]
