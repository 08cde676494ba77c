"""The content management API: block types, placements and variants (list, create, read, PUT,
PATCH, delete). Views only translate: shapes come from .serializers, every rule from
content.services (the admin's own functions), concurrency from core.conditional."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import status, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.response import Response

from access.permissions import ApiKeyPolicy, ModelPermissionByRole
from core.conditional import (
    ErrorSerializer,
    error_response,
    etag_of,
    precondition_problem,
)

from .. import services
from ..models import BlockType, Placement, Variant
from .serializers import BlockTypeSerializer, PlacementSerializer, VariantSerializer

# Read-only keys left out of the ETag: they change without the object's own fields changing.
_NOT_TAGGED = ("id", "variants", "created_at", "updated_at", "warnings")


class ContentPagination(LimitOffsetPagination):
    default_limit = 100
    max_limit = 500


def _errors(example_field: str, message: str) -> dict:
    return {"errors": [{"field": example_field, "message": message}]}


IF_MATCH = OpenApiParameter(
    "If-Match",
    str,
    OpenApiParameter.HEADER,
    required=True,
    description="The ETag of your last read of the object (or *). Missing: 428; stale: 412.",
)

COMMON_ERRORS = {
    400: OpenApiResponse(ErrorSerializer, description="Invalid input, by field."),
    401: OpenApiResponse(ErrorSerializer, description="Unknown or revoked key."),
    403: OpenApiResponse(ErrorSerializer, description="The caller's role lacks the permission."),
}
WRITE_ERRORS = {
    **COMMON_ERRORS,
    404: OpenApiResponse(ErrorSerializer, description="No such object."),
    412: OpenApiResponse(ErrorSerializer, description="If-Match is stale: read again."),
    428: OpenApiResponse(ErrorSerializer, description="If-Match is missing."),
}


def _author(request) -> str:
    return request.user.get_username()


def _tag(representation: dict) -> str:
    return etag_of({k: v for k, v in representation.items() if k not in _NOT_TAGGED})


def _as_drf(exc: DjangoValidationError) -> ValidationError:
    if hasattr(exc, "error_dict"):
        return ValidationError(
            {("body" if k == "__all__" else k): v for k, v in exc.message_dict.items()}
        )
    return ValidationError({"body": exc.messages})


class _ContentViewSet(viewsets.GenericViewSet):
    """List, create, read, replace (PUT), change (PATCH) and delete one kind of content."""

    permission_classes = [ApiKeyPolicy, ModelPermissionByRole]
    pagination_class = ContentPagination
    permission_model: type
    publishable_key_allowed = False

    # --- hooks of each kind ----------------------------------------------------------------
    def apply(self, obj, data: dict) -> None:
        """Put validated fields on the (unsaved) object."""
        for name, value in data.items():
            setattr(obj, name, value)

    def save(self, obj, author: str) -> None:
        raise NotImplementedError

    def remove(self, obj, author: str) -> None:
        raise NotImplementedError

    # --- the shared protocol ---------------------------------------------------------------
    def _respond(self, obj, code=status.HTTP_200_OK) -> Response:
        representation = self.get_serializer(obj).data
        return Response(representation, status=code, headers={"ETag": _tag(representation)})

    def _save(self, obj, request) -> Response | None:
        try:
            self.save(obj, _author(request))
        except DjangoValidationError as exc:
            raise _as_drf(exc) from exc
        except IntegrityError:  # a concurrent create of the same key
            return error_response(
                status.HTTP_409_CONFLICT, "key", "An object with this key was just created."
            )
        return None

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        obj = self.permission_model()
        self.apply(obj, dict(serializer.validated_data))
        problem = self._save(obj, request)
        if problem is not None:
            return problem
        return self._respond(self.get_queryset().get(pk=obj.pk), status.HTTP_201_CREATED)

    def retrieve(self, request, *args, **kwargs):
        return self._respond(self.get_object())

    def update(self, request, *args, **kwargs):
        return self._write(request, partial=False)

    def partial_update(self, request, *args, **kwargs):
        return self._write(request, partial=True)

    def _write(self, request, *, partial: bool) -> Response:
        obj = self.get_object()
        current = self.get_serializer(obj).data
        current_tag = _tag(current)
        serializer = self.get_serializer(obj, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        self.apply(obj, dict(serializer.validated_data))
        wanted_tag = _tag(self.get_serializer(obj).data)
        if request.headers.get("If-Match") is not None and wanted_tag == current_tag:
            # Nothing to change (a retried PUT, or the same values): the state is already the
            # one asked for, whatever tag the client last saw.
            return Response(current, headers={"ETag": current_tag})
        problem = precondition_problem(request, current_tag)
        if problem is not None:
            return problem
        problem = self._save(obj, request)
        if problem is not None:
            return problem
        return self._respond(self.get_queryset().get(pk=obj.pk))

    def destroy(self, request, *args, **kwargs):
        obj = self.get_object()
        problem = precondition_problem(request, _tag(self.get_serializer(obj).data))
        if problem is not None:
            return problem
        try:
            self.remove(obj, _author(request))
        except DjangoValidationError as exc:
            raise _as_drf(exc) from exc
        return Response(status=status.HTTP_204_NO_CONTENT)


def _crud_schema(name: str, serializer, example: dict, filters=()):
    """The OpenAPI description of the six operations of one kind, each with an example."""
    body = OpenApiExample(f"A {name}", value=example, request_only=False)
    patch = OpenApiExample(
        "Change one field", value={"name": example["name"] + " (renamed)"}, request_only=True
    )
    bad = OpenApiExample(
        "Refused",
        value=_errors("key", "Enter a valid slug."),
        response_only=True,
        status_codes=["400"],
    )
    return extend_schema_view(
        list=extend_schema(
            summary=f"List {name}s",
            parameters=list(filters),
            responses={200: serializer(many=True), **COMMON_ERRORS},
            examples=[OpenApiExample(f"{name}s", value=[example], response_only=True)],
        ),
        create=extend_schema(
            summary=f"Create a {name}",
            request=serializer,
            responses={201: serializer, **COMMON_ERRORS},
            examples=[body, bad],
        ),
        retrieve=extend_schema(
            summary=f"Read a {name} (answer carries its ETag)",
            responses={200: serializer, 404: ErrorSerializer, **COMMON_ERRORS},
            examples=[OpenApiExample(f"A {name}", value=example, response_only=True)],
        ),
        update=extend_schema(
            summary=f"Replace a {name} (idempotent; If-Match required)",
            request=serializer,
            parameters=[IF_MATCH],
            responses={200: serializer, **WRITE_ERRORS},
            examples=[body, bad],
        ),
        partial_update=extend_schema(
            summary=f"Change some fields of a {name} (If-Match required)",
            request=serializer,
            parameters=[IF_MATCH],
            responses={200: serializer, **WRITE_ERRORS},
            examples=[patch, bad],
        ),
        destroy=extend_schema(
            summary=f"Delete a {name} (If-Match required)",
            parameters=[IF_MATCH],
            responses={204: None, **WRITE_ERRORS},
            examples=[
                OpenApiExample(
                    "In use",
                    value=_errors("key", "Variants use this block type: move them first."),
                    response_only=True,
                    status_codes=["400"],
                )
            ],
        ),
    )


BLOCK_TYPE_EXAMPLE = {
    "key": "banner",
    "name": "Banner",
    "description": "A headline with a call to action.",
    "template": '<h2>{{ fields.title }}</h2><a href="{{ fields.url }}">{{ fields.cta }}</a>',
    "schema": {
        "type": "object",
        "properties": {
            "title": {"type": "string", "maxLength": 80},
            "url": {"type": "string", "format": "uri"},
            "cta": {"type": "string"},
        },
        "required": ["title"],
    },
}

PLACEMENT_EXAMPLE = {
    "key": "hero",
    "name": "Home page hero",
    "description": "The banner at the top of the home page.",
    "default_variant": "default",
}

VARIANT_EXAMPLE = {
    "placement": "hero",
    "key": "spring-sale",
    "name": "Spring sale for returning visitors",
    "status": "draft",
    "priority": 10,
    "condition": {"profile.aggregates.purchase_count": {"$gte": 1}},
    "block_type": "banner",
    "block_fields": {"title": "Spring sale", "url": "https://shop.example/sale", "cta": "Shop"},
    "template": "",
    "data": {"campaign": "spring"},
    "locale": "",
    "starts_at": None,
    "ends_at": None,
}


@_crud_schema("block type", BlockTypeSerializer, BLOCK_TYPE_EXAMPLE)
class BlockTypeViewSet(_ContentViewSet):
    serializer_class = BlockTypeSerializer
    permission_model = BlockType
    queryset = BlockType.objects.all()
    lookup_field = "key"
    lookup_value_regex = r"[-a-zA-Z0-9_]+"

    def save(self, obj, author):
        services.block_type_save(block_type=obj, author=author)

    def remove(self, obj, author):
        services.block_type_delete(block_type=obj, author=author)


@_crud_schema("placement", PlacementSerializer, PLACEMENT_EXAMPLE)
class PlacementViewSet(_ContentViewSet):
    serializer_class = PlacementSerializer
    permission_model = Placement
    queryset = Placement.objects.select_related("default_variant").prefetch_related("variants")
    lookup_field = "key"
    lookup_value_regex = r"[-a-zA-Z0-9_]+"

    def apply(self, obj: Placement, data: dict) -> None:
        if "default_variant" in data:
            key = data.pop("default_variant")
            if key is None:
                obj.default_variant = None
            else:
                variant = Variant.objects.filter(placement=obj, key=key).first() if obj.pk else None
                if variant is None:
                    raise ValidationError(
                        {"default_variant": [f'This placement has no variant "{key}".']}
                    )
                obj.default_variant = variant
        super().apply(obj, data)

    def save(self, obj, author):
        services.placement_save(placement=obj, author=author)

    def remove(self, obj, author):
        services.placement_delete(placement=obj, author=author)


@_crud_schema(
    "variant",
    VariantSerializer,
    VARIANT_EXAMPLE,
    filters=[
        OpenApiParameter("placement", str, description="Only this placement's variants (key)."),
        OpenApiParameter("status", str, enum=["draft", "live"]),
    ],
)
class VariantViewSet(_ContentViewSet):
    serializer_class = VariantSerializer
    permission_model = Variant
    queryset = Variant.objects.select_related("placement", "block_type")
    lookup_value_regex = r"[0-9]+"

    def filter_queryset(self, queryset):
        params = self.request.query_params
        if params.get("placement"):
            queryset = queryset.filter(placement__key=params["placement"][:100])
        if params.get("status"):
            queryset = queryset.filter(status=params["status"][:8])
        return queryset

    def save(self, obj, author):
        services.variant_save(variant=obj, author=author, comment="Saved through the API")

    def remove(self, obj, author):
        services.variant_delete(variant=obj, author=author)
