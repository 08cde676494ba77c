"""Routes of the content management API (included from the project's urls)."""

from rest_framework.routers import SimpleRouter

from .views import BlockTypeViewSet, PlacementViewSet, VariantViewSet

router = SimpleRouter(trailing_slash=False)
router.register("block-types", BlockTypeViewSet, basename="api-block-type")
router.register("placements", PlacementViewSet, basename="api-placement")
router.register("variants", VariantViewSet, basename="api-variant")

urlpatterns = router.urls
