"""Serving the ``recommendations`` block inside a decision: no database or Redis call per decision.

The visitor's precomputed list arrives in the profile document (``profile["recs"]``, written
there by the document writer from the active run's rows), so it comes with the profile's one
GET. Catalog data (in-stock items only), the active run's popularity lists and similar items are
held per process and reloaded when the snapshot version moves (the catalog import, the admin and
an activated run bump it), exactly like the content snapshot.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

logger = logging.getLogger(__name__)

BLOCK_KEY = "recommendations"
DEFAULT_COUNT = 4
MAX_COUNT = 20


@dataclass(frozen=True)
class ServingState:
    version: int
    run_id: int | None
    items: dict[str, Any]  # in-stock items only, by sku (read-only mappings)
    category_of: dict[str, str]  # every catalog sku (in stock or not) -> category
    popular: list[str] = field(default_factory=list)
    popular_by_category: dict[str, list[str]] = field(default_factory=dict)
    similar: dict[str, list[str]] = field(default_factory=dict)
    # segment key -> (specificity rank, items, source): a member without a list of their own
    # gets the list of their most specific segment (fewest interacting members) that has one;
    # its in-stock items, topped up with bestsellers, prepared here once per version (stock
    # changes bump the version) so that a decision only slices them
    popular_by_segment: dict[str, tuple[int, tuple[Any, ...], str]] = field(default_factory=dict)


_state: ServingState | None = None
_lock = threading.Lock()


def state_build(version: int) -> ServingState:
    """Read the catalog and the active run (a few queries; once per version and process)."""
    from .models import Item, RunStatus, SimilarItems, TrainingRun

    items: dict[str, dict[str, Any]] = {}
    category_of: dict[str, str] = {}
    for row in Item.objects.values(
        "sku", "title", "category", "price", "url", "image_url", "in_stock", "attributes"
    ):
        category_of[row["sku"]] = row["category"]
        if row["in_stock"]:
            price = row["price"]
            row["price"] = float(price) if price is not None else None
            # formatted once here rather than by a filter in every render
            row["price_text"] = f"{price:.2f}" if price is not None else ""
            items[row["sku"]] = _frozen(row)
    run = TrainingRun.objects.filter(status=RunStatus.ACTIVE).order_by("-started_at").first()
    popular: list[str] = []
    by_category: dict[str, list[str]] = {}
    similar: dict[str, list[str]] = {}
    stored_segments: Any = None
    if run is not None:
        popular = list(run.popular.get("global", []))
        by_category = {k: list(v) for k, v in run.popular.get("by_category", {}).items()}
        similar = dict(SimilarItems.objects.filter(run=run).values_list("sku", "similar"))
        stored_segments = run.popular.get("by_segment")
    if not popular:  # no run yet: the catalog's order, so the block still shows items
        popular = list(items)[:50]
    by_segment = _segment_lists(stored_segments, items, popular)
    return ServingState(
        version,
        run.pk if run else None,
        items,
        category_of,
        popular,
        by_category,
        similar,
        by_segment,
    )


def _segment_lists(
    stored: Any, items: dict[str, Any], popular: list[str]
) -> dict[str, tuple[int, tuple[Any, ...], str]]:
    """The run's per-segment lists ({key: {"users": n, "items": [sku...]}}), ranked most
    specific first (fewest interacting members, then key): the rank decides between a
    visitor's segments at serve time without sorting per decision. Each list holds the
    segment's in-stock items, topped up with in-stock bestsellers it lacks, up to MAX_COUNT."""
    if not isinstance(stored, dict):
        return {}
    entries = []
    for key, entry in stored.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("items"), list):
            continue
        users = entry.get("users")
        entries.append((users if isinstance(users, int) else 0, str(key), entry["items"]))
    entries.sort(key=lambda e: (e[0], e[1]))
    out = {}
    for rank, (_users, key, skus) in enumerate(entries):
        chosen = _pick(items, skus, MAX_COUNT)
        if len(chosen) < MAX_COUNT:
            chosen += _pick(items, popular, MAX_COUNT - len(chosen), exclude={*skus})
        out[key] = (rank, tuple(chosen), f"popularity:segment:{key}")
    return out


def _frozen(value: Any) -> Any:
    """A read-only copy: decisions share these items, and the sandbox still lets a template
    call a dict's update(); a mapping proxy has none (and reads as fast as a dict)."""
    if isinstance(value, dict):
        return MappingProxyType({k: _frozen(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    return value


def state_for(version: int) -> ServingState:
    global _state
    state = _state
    if state is not None and state.version == version:
        return state
    with _lock:
        if _state is None or _state.version != version:
            _state = state_build(version)
        return _state


def reset() -> None:
    global _state
    with _lock:
        _state = None


@dataclass(frozen=True, slots=True)
class BlockItems:
    items: list[Any]  # read-only mappings of catalog data (see state_build)
    # als, similar, similar:category, popularity:no_consent, popularity:segment:<key>,
    # popularity:cold_start
    source: str
    run_id: int | None


def block_items(
    *,
    version: int,
    profile: dict[str, Any] | None,
    personalization_allowed: bool,
    request_context: dict[str, Any],
    fields: Any,
) -> BlockItems:
    """The items of a recommendations block for this visitor and page (in stock, catalog data)."""
    state = state_for(version)
    count = _count(fields)
    attributes = request_context.get("attributes") or {}
    context_item = attributes.get("item") if isinstance(attributes, dict) else None
    if isinstance(context_item, str) and context_item:
        # "similar items" on a product page: context, not the profile, so no consent needed
        similar = state.similar.get(context_item)
        source = "similar"
        if not similar:
            category = state.category_of.get(context_item)
            similar = state.popular_by_category.get(category, []) if category is not None else []
            source = "similar:category"
        chosen = _in_stock(state, similar, count, exclude={context_item})
        if len(chosen) < count:
            chosen += _in_stock(
                state,
                state.popular,
                count - len(chosen),
                exclude={context_item, *(i["sku"] for i in chosen)},
            )
        return BlockItems(chosen, source, state.run_id)
    if not personalization_allowed:
        return BlockItems(
            _in_stock(state, state.popular, count), "popularity:no_consent", state.run_id
        )
    recs = (profile or {}).get("recs") if isinstance(profile, dict) else None
    skus = recs.get("items") if isinstance(recs, dict) else None
    if isinstance(skus, list) and skus:
        chosen = _in_stock(state, skus, count)
        if len(chosen) < count:  # out of stock since training: topped up with bestsellers
            chosen += _in_stock(state, state.popular, count - len(chosen), exclude={*skus})
        run = recs.get("run")
        return BlockItems(chosen, "als", run if isinstance(run, int) else state.run_id)
    segment = _segment_of(state, profile)
    if segment is not None:
        # no list of their own, but a segment with one: what its members like (personalization:
        # it uses the profile's memberships, hence only with consent, checked above)
        return BlockItems(list(segment[1][:count]), segment[2], state.run_id)
    return BlockItems(_in_stock(state, state.popular, count), "popularity:cold_start", state.run_id)


def _segment_of(state: ServingState, profile: Any) -> tuple[int, tuple[Any, ...], str] | None:
    """The prepared list of the visitor's most specific segment that has one, if any."""
    lists = state.popular_by_segment
    if not lists or not isinstance(profile, dict):
        return None
    keys = profile.get("segments")
    if not isinstance(keys, list):
        return None
    best = None
    for segment_key in keys:
        entry = lists.get(segment_key) if isinstance(segment_key, str) else None
        if entry is not None and (best is None or entry[0] < best[0]):
            best = entry
    return best


def _count(fields: Any) -> int:
    try:
        value = int(fields.get("count", DEFAULT_COUNT))
    except (TypeError, ValueError, AttributeError):
        return DEFAULT_COUNT
    return min(max(value, 1), MAX_COUNT)


def _in_stock(state: ServingState, skus, count: int, exclude=frozenset()) -> list[Any]:
    return _pick(state.items, skus, count, exclude)


def _pick(items: dict[str, Any], skus, count: int, exclude=frozenset()) -> list[Any]:
    out = []
    for sku in skus:
        if len(out) >= count:
            break
        if isinstance(sku, str) and sku not in exclude:
            item = items.get(sku)
            if item is not None:
                out.append(item)  # read-only (see _frozen): shared, not copied
    return out
