"""REST API of recommendations: the catalog (CRUD by sku), training runs, train on demand.

Secret API key or staff session only (access.permissions.IsSecretKeyOrStaff): no browser calls
these. Errors use the project's one shape, naming the field.
"""

from __future__ import annotations

from django.db import transaction
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from access.permissions import ApiKeyPolicy, IsSecretKeyOrStaff

from .models import Item, TrainingRun
from .serializers import ItemSerializer, TrainingRunSerializer, TrainRequestSerializer


class Pages(LimitOffsetPagination):
    default_limit = 100
    max_limit = 1000


@extend_schema_view(
    list=extend_schema(tags=["recommendations"], summary="List catalog items"),
    retrieve=extend_schema(tags=["recommendations"], summary="One catalog item by sku"),
    create=extend_schema(tags=["recommendations"], summary="Add a catalog item"),
    update=extend_schema(tags=["recommendations"], summary="Replace a catalog item"),
    partial_update=extend_schema(tags=["recommendations"], summary="Change a catalog item"),
    destroy=extend_schema(tags=["recommendations"], summary="Remove a catalog item"),
)
class ItemViewSet(viewsets.ModelViewSet):
    """Catalog items, addressed by sku. Events refer to them by ``properties.sku``."""

    queryset = Item.objects.all().order_by("sku")
    serializer_class = ItemSerializer
    permission_classes = [ApiKeyPolicy, IsSecretKeyOrStaff]
    publishable_key_allowed = False
    lookup_field = "sku"
    lookup_value_regex = r"[-A-Za-z0-9_.:]+"
    pagination_class = Pages

    def perform_update(self, serializer):
        if "sku" in serializer.validated_data and (
            serializer.validated_data["sku"] != serializer.instance.sku
        ):
            from rest_framework.exceptions import ValidationError

            raise ValidationError({"sku": ["Cannot change; create a new item instead."]})
        serializer.save()


@extend_schema_view(
    list=extend_schema(tags=["recommendations"], summary="Training runs, newest first"),
    retrieve=extend_schema(tags=["recommendations"], summary="One training run"),
)
class TrainingRunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Training runs with their test figures and the popularity baseline's."""

    queryset = TrainingRun.objects.all().order_by("-started_at")
    serializer_class = TrainingRunSerializer
    permission_classes = [ApiKeyPolicy, IsSecretKeyOrStaff]
    publishable_key_allowed = False
    pagination_class = Pages


class TrainView(APIView):
    """Queue a training run now (the beat schedule runs one periodically too)."""

    permission_classes = [ApiKeyPolicy, IsSecretKeyOrStaff]
    publishable_key_allowed = False

    @extend_schema(
        tags=["recommendations"], request=TrainRequestSerializer, responses={202: dict, 400: dict}
    )
    def post(self, request):
        TrainRequestSerializer(data=request.data or {}).is_valid(raise_exception=True)
        from .tasks import recommendations_train

        transaction.on_commit(lambda: recommendations_train.delay("api"))
        return Response({"queued": True}, status=status.HTTP_202_ACCEPTED)
