"""Admin: the catalog, and training runs with a chart of their figures over time."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db import transaction
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from . import selectors
from .models import Item, SimilarItems, TrainingRun, VisitorRecommendation


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = ["sku", "title", "category", "price", "in_stock", "updated_at"]
    list_filter = ["in_stock", "category"]
    search_fields = ["sku", "title"]
    list_editable = ["in_stock"]
    readonly_fields = ["updated_at"]


def _ctr_text(counts) -> str:
    """clicks / impressions as a rate, with the counts (impressions are the denominator: a
    click without a counted impression still counts, so the rate can exceed 100 %)."""
    if not counts or not counts["impressions"]:
        return (
            f"- (clicks {counts['clicks']}, no impression)" if counts and counts["clicks"] else "-"
        )
    rate = counts["clicks"] / counts["impressions"]
    return f"{rate:.2%} ({counts['clicks']} / {counts['impressions']})"


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.4f}"


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    change_list_template = "admin/recommendations/trainingrun/change_list.html"
    list_display = [
        "id",
        "started_at",
        "status",
        # early in the row: visible at 1280 px without scrolling the table sideways
        "online_ctr",
        "precision_vs_baseline",
        "ndcg_vs_baseline",
        "map_shown",
        "coverage_shown",
        "interactions",
        "users",
    ]
    list_filter = ["status", "trigger"]
    actions = ["train_now"]
    readonly_fields = [f.name for f in TrainingRun._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="P@k (popularity)")
    def precision_vs_baseline(self, run):
        return f"{_fmt(run.precision)} ({_fmt(run.baseline_precision)})"

    @admin.display(description="NDCG@k (popularity)")
    def ndcg_vs_baseline(self, run):
        return f"{_fmt(run.ndcg)} ({_fmt(run.baseline_ndcg)})"

    @admin.display(description="R@k")
    def recall_shown(self, run):
        return _fmt(run.recall)

    @admin.display(description="MAP@k")
    def map_shown(self, run):
        return _fmt(run.map)

    @admin.display(description="coverage")
    def coverage_shown(self, run):
        return _fmt(run.coverage)

    @admin.display(description="online CTR (clicks / impressions)")
    def online_ctr(self, run):
        counts = getattr(self, "_ctr", {}).get(run.pk)
        if not counts or not counts["by_source"]:
            return _ctr_text(counts)
        return format_html(
            "{}<br><small>{}</small>",
            _ctr_text(counts),
            format_html_join(
                mark_safe("<br>"),
                "{}: {}",
                ((source, _ctr_text(c)) for source, c in sorted(counts["by_source"].items())),
            ),
        )

    def get_changelist_instance(self, request):
        changelist = super().get_changelist_instance(request)
        # one grouped query for the page's runs, not one per row
        self._ctr = selectors.runs_online_ctr(run_ids=[r.pk for r in changelist.result_list])
        return changelist

    @admin.action(description="Train now (queue a new run)")
    def train_now(self, request, queryset):
        from .tasks import recommendations_train

        transaction.on_commit(lambda: recommendations_train.delay("admin"))
        self.message_user(request, "A training run is queued.", messages.SUCCESS)

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "chart_runs": selectors.runs_for_chart()}
        return super().changelist_view(request, extra_context=extra_context)


@admin.register(VisitorRecommendation)
class VisitorRecommendationAdmin(admin.ModelAdmin):
    list_display = ["profile", "run", "computed_at"]
    readonly_fields = ["profile", "run", "items", "computed_at"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(SimilarItems)
class SimilarItemsAdmin(admin.ModelAdmin):
    list_display = ["sku", "run"]
    search_fields = ["sku"]
    readonly_fields = ["run", "sku", "similar"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
