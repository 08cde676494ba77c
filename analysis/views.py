"""/api/v1/analysis/attributes: create an attribute analysis, list them, read one as JSON."""

from __future__ import annotations

from django.db import transaction
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from access.permissions import IsSecretKeyOrStaff
from core.errors import NotFound

from . import services
from .models import AttributeAnalysis
from .serializers import AttributeAnalysisRequestSerializer

EXAMPLE = {
    "target": {"event_type": "purchase", "window_days": 90},
    "attributes": ["recency_days", "frequency", "monetary", "tenure_days", "count.page_view"],
    "as_of": "2026-09-01T00:00:00Z",
    "threshold": 0.8,
}


def analysis_document(analysis: AttributeAnalysis, *, full: bool = True) -> dict:
    doc = {
        "id": analysis.pk,
        "status": analysis.status,
        "target": analysis.target,
        "attributes": analysis.attributes,
        "as_of": analysis.as_of.isoformat(),
        "threshold": analysis.threshold,
        "created_at": analysis.created_at.isoformat(),
        "finished_at": analysis.finished_at.isoformat() if analysis.finished_at else None,
        "duration_ms": analysis.duration_ms,
        "profiles": analysis.profiles,
        "errors": analysis.errors,
    }
    if full:
        doc["results"] = analysis.results
    return doc


class AttributeAnalysisView(APIView):
    """Attribute analysis: correlations, tests against a target, mutual information, PCA."""

    permission_classes = [IsSecretKeyOrStaff]

    @extend_schema(
        request=AttributeAnalysisRequestSerializer,
        responses={202: dict, 400: dict, 403: dict},
        examples=[OpenApiExample("Purchase in the next 90 days", value=EXAMPLE)],
        description="Queue an analysis (a Celery task); poll /api/v1/analysis/attributes/<id>.",
    )
    def post(self, request):
        serializer = AttributeAnalysisRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        user = getattr(request, "user", None)
        actor = user.get_username() if getattr(user, "is_authenticated", False) else "api"
        with transaction.atomic():
            analysis = services.attribute_analysis_create(
                target=dict(data["target"]),
                attributes=list(data["attributes"]),
                as_of=data["as_of"],
                threshold=data["threshold"],
                actor=actor,
            )
        return Response(
            {
                **analysis_document(analysis, full=False),
                "url": f"/api/v1/analysis/attributes/{analysis.pk}",
            },
            status=status.HTTP_202_ACCEPTED,
        )

    @extend_schema(
        operation_id="analysis_attributes_list",
        responses={200: dict, 403: dict},
        description="The 20 latest analyses.",
    )
    def get(self, request):
        latest = AttributeAnalysis.objects.all()[:20]
        return Response({"results": [analysis_document(a, full=False) for a in latest]})


class AttributeAnalysisDetailView(APIView):
    permission_classes = [IsSecretKeyOrStaff]

    @extend_schema(
        responses={200: dict, 403: dict, 404: dict},
        description="One analysis with its results (when it has succeeded).",
    )
    def get(self, request, analysis_id: int):
        analysis = AttributeAnalysis.objects.filter(pk=analysis_id).first()
        if analysis is None:
            raise NotFound("No attribute analysis with this id.", field="id")
        return Response(analysis_document(analysis))
