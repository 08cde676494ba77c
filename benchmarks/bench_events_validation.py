"""Benchmark: validating a realistic batch of events in process (ingestion.schemas, per event).

Run ``.venv/bin/python benchmarks/bench_events_validation.py`` (``--events`` per batch, default
500; ``--old FILE``: also time a former validator module's ``event_fast_validate`` and
``EventSerializer`` on the same batch, e.g. ``git show 788f884:ingestion/serializers.py >
/tmp/old.py``; it checks that both give the same queued dicts). The schema is timed as the view
uses it (``events_validate``: the batch in one call) and event by event (``event_validate``:
the path of a batch holding a refused event). The batch mixes page views,
product views and add-to-carts with properties, purchases with an amount, and searches, each
with a context (url, referrer, utm, locale). Median over --rounds rounds (15), the contenders
taking turns. Informs, exits 0.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def realistic_batch(count: int) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    events = []
    for i in range(count):
        event: dict[str, Any] = {
            "event_id": str(uuid.uuid4()),
            "visitor": f"visitor-{i % 50}",
            "occurred_at": (now - timedelta(seconds=i)).isoformat(),
            "context": {
                "url": f"https://shop.test/p/{i}",
                "referrer": "https://search.test/",
                "utm": {"source": "news", "campaign": "winter"},
                "locale": "en-GB",
            },
        }
        kind = i % 5
        if kind == 0:
            event["type"] = "page_view"
        elif kind == 1:
            event["type"] = "product_view"
            event["properties"] = {"sku": f"sku-{i}", "category": "shoes", "price": 59.9}
        elif kind == 2:
            event["type"] = "add_to_cart"
            event["properties"] = {"sku": f"sku-{i}", "qty": 2, "tags": ["a", "b"]}
        elif kind == 3:
            event.update(type="purchase", value="119.80", currency="EUR")
            event["properties"] = {"order": f"o-{i}", "items": [{"sku": "s1", "qty": 2}]}
        else:
            event.update(type="search", properties={"q": "red shoes"})
        events.append(event)
    return events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--old", type=Path, help="a former ingestion/serializers.py to compare")
    args = parser.parse_args()
    import django

    django.setup()
    from django.utils import timezone

    from benchmarks._support import interleaved_us
    from ingestion.schemas import event_validate, events_validate

    events = realistic_batch(args.events)

    def new() -> list:
        now, zone = timezone.now(), timezone.get_current_timezone()
        accepted, rejected = events_validate(events, now=now, zone=zone)
        assert not rejected, "the realistic batch must be valid"
        return accepted

    def one_by_one() -> list:
        now, zone = timezone.now(), timezone.get_current_timezone()
        return [event_validate(event, now=now, zone=zone)[0] for event in events]

    assert all(one_by_one()), "the realistic batch must be valid"
    contenders = {
        "schema, whole batch (events_validate)": new,
        "schema, event by event (event_validate)": one_by_one,
    }
    if args.old is not None:
        spec = importlib.util.spec_from_file_location("old_serializers", args.old)
        assert spec is not None
        assert spec.loader is not None
        old = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(old)

        def fast() -> list:
            now, zone = timezone.now(), timezone.get_current_timezone()
            return [old.event_fast_validate(event, now=now, zone=zone) for event in events]

        print("same queued dicts:", fast() == new())
        contenders["former event_fast_validate"] = fast
    # The contenders take turns round by round: a noisy neighbour slows each alike.
    per_batch = interleaved_us(contenders, args.rounds)
    for name, us in per_batch.items():
        print(f"{name:42s} {us / 1000:6.2f} ms per batch, {us / len(events):5.1f} µs per event")
    if args.old is not None:
        ratio = (
            per_batch["schema, whole batch (events_validate)"]
            / per_batch["former event_fast_validate"]
        )
        print(f"schema / former fast path: {ratio:.2f}")


if __name__ == "__main__":
    main()
