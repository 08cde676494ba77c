"""Demo data for recommendations: a record shop with taste groups, trained once.

Used by ``manage.py seed_demo``. Idempotent: items by sku, events by a uuid5 of their content,
the "for-you" variant by key; a training run is added only when none is active.

- Catalog: 5 genres (taste groups) x 12 records = 60 items (the demo's six CDs among them).
- Behaviour: 500 synthetic shoppers, each loyal to one genre: 80 % of their product views,
  carts and purchases in it, the rest anywhere (a few global bestsellers draw most of those).
- Personas: demo-jazz browses jazz, demo-loyal buys rock, demo-cart carts electronic records,
  demo-new has no history (gets the bestsellers).
- The demo's "recs" placement gets a "for-you" variant with the recommendations block, after
  the editors' "jazz-picks" (priority 10, for the jazz-fans segment): the jazz fan keeps the
  hand-picked grid, every other visitor gets their recommendations.
"""

from __future__ import annotations

import random
import uuid
from datetime import timedelta

from django.utils import timezone

NAMESPACE = uuid.UUID("0c7b5f0e-3a51-4f7e-8d0b-2f6a9c1d4e73")
GENRES = {
    "jazz": [
        "Blue",
        "Midnight",
        "Smoky",
        "Velvet",
        "Bebop",
        "Cool",
        "Late",
        "Swing",
        "Modal",
        "Harlem",
        "Brass",
        "Quiet",
    ],
    "rock": [
        "Thunder",
        "Electric",
        "Highway",
        "Stone",
        "Wild",
        "Iron",
        "Rebel",
        "Neon",
        "Garage",
        "Amplified",
        "Crimson",
        "Loud",
    ],
    "electronic": [
        "Pulse",
        "Synthetic",
        "Circuit",
        "Digital",
        "Laser",
        "Ambient",
        "Techno",
        "Binary",
        "Analog",
        "Voltage",
        "Orbit",
        "Fractal",
    ],
    "classical": [
        "Sonata",
        "Nocturne",
        "Requiem",
        "Fugue",
        "Prelude",
        "Concerto",
        "Etude",
        "Overture",
        "Serenade",
        "Adagio",
        "Rhapsody",
        "Partita",
    ],
    "hiphop": [
        "Block",
        "Corner",
        "Flow",
        "Rhyme",
        "Beat",
        "Cipher",
        "Street",
        "Crown",
        "Vinyl",
        "Boom",
        "Metro",
        "Verse",
    ],
}
NOUNS = [
    "Sessions",
    "Nights",
    "Hours",
    "Stories",
    "Dreams",
    "Lines",
    "Waves",
    "Tapes",
    "Letters",
    "Roads",
    "Rooms",
    "Signals",
]
EXISTING = {  # the demo's own CDs keep their skus and titles
    ("jazz", 0): ("cd-101", "Kind of Blue"),
    ("jazz", 1): ("cd-102", "A Love Supreme"),
    ("jazz", 2): ("cd-103", "Time Out"),
    ("rock", 0): ("cd-201", "Abbey Road"),
    ("rock", 1): ("cd-202", "Rumours"),
    ("electronic", 0): ("cd-301", "Blue Lines"),
}
SHOPPERS = 500
PERSONA_EVENTS = {
    "demo-jazz": [("product_view", "jazz", i) for i in (0, 1, 4, 5, 7)],
    "demo-loyal": [("purchase", "rock", i) for i in (0, 2, 3)] + [("product_view", "rock", 5)],
    "demo-cart": [("product_view", "electronic", i) for i in (1, 2, 3)]
    + [("add_to_cart", "electronic", 2)],
}


def catalog_rows() -> list[dict]:
    rows = []
    for genre, words in GENRES.items():
        for n in range(12):
            sku, title = EXISTING.get(
                (genre, n), (f"{genre[:2]}-{n:03d}", f"{words[n]} {NOUNS[n]}")
            )
            rows.append(
                {
                    "sku": sku,
                    "title": title,
                    "category": genre,
                    "price": 9.5 + (n * 7 % 10),
                    "url": f"https://shop.example/records/{sku}",
                    "in_stock": n != 11,
                    "attributes": {"genre": genre, "format": "CD"},
                }
            )
    return rows


def _sku(genre: str, n: int) -> str:
    return EXISTING.get((genre, n), (f"{genre[:2]}-{n:03d}", ""))[0]


def _event(visitor: str, index: int, kind: str, sku: str, when, price) -> dict:
    event_id = uuid.uuid5(NAMESPACE, f"{visitor}|{index}|{kind}|{sku}")
    return {
        "event_id": str(event_id),
        "visitor": visitor,
        "type": kind,
        "name": sku,
        "value": price if kind in ("add_to_cart", "purchase") else None,
        "occurred_at": when.isoformat(),
        "properties": {"sku": sku},
    }


def behaviour_events(now=None) -> list[dict]:
    rng = random.Random(17)
    now = (now or timezone.now()).replace(microsecond=0)
    genres = list(GENRES)
    prices = {r["sku"]: r["price"] for r in catalog_rows()}
    bestsellers = [_sku("rock", 0), _sku("jazz", 0), _sku("electronic", 0), _sku("classical", 0)]
    events = []
    for s in range(SHOPPERS):
        visitor = f"demo-shopper-{s:04d}"
        genre = genres[s % len(genres)]
        for i in range(rng.randint(6, 20)):
            if rng.random() < 0.8:
                # within the genre, earlier records are more popular
                sku = _sku(genre, min(int(rng.expovariate(1 / 4)), 11))
            else:
                sku = (
                    rng.choice(bestsellers)
                    if rng.random() < 0.6
                    else _sku(rng.choice(genres), rng.randrange(12))
                )
            kind = rng.choices(["product_view", "add_to_cart", "purchase"], [7, 2, 1])[0]
            when = now - timedelta(days=rng.randint(1, 60), minutes=i)
            events.append(_event(visitor, i, kind, sku, when, prices[sku]))
    for visitor, history in PERSONA_EVENTS.items():
        for i, (kind, genre, n) in enumerate(history):
            sku = _sku(genre, n)
            events.append(
                _event(visitor, 100 + i, kind, sku, now - timedelta(hours=5 - i), prices[sku])
            )
    return events


def seed_recommendations(*, write=print, tuning_seconds: float = 10.0) -> None:
    """Catalog, behaviour, the for-you variant, and one training run (if none is active)."""
    from content.models import Placement, Variant, VariantStatus
    from ingestion import aggregate as ingestion_aggregate
    from ingestion import store as ingestion_store

    from . import selectors, services
    from .block import block_type_ensure

    rows = services.catalog_rows_from_dicts(catalog_rows())
    result = services.catalog_import(rows=rows)
    write(
        f"catalog: {result.created} created, {result.updated} updated, {result.unchanged} unchanged"
    )
    stored = ingestion_store.events_store(events=behaviour_events()).stored
    ingestion_aggregate.profiles_aggregate_all_pending()
    write(f"recommendation behaviour: {stored} new events")
    placement = Placement.objects.filter(key="recs").first()
    if placement is not None:
        Variant.objects.update_or_create(
            placement=placement,
            key="for-you",
            defaults={
                "name": "For you (recommendations)",
                "priority": 20,
                "condition": {},
                "block_type": block_type_ensure(),
                "block_fields": {"title": "Recommended for you", "count": 4},
                "template": "",
                "status": VariantStatus.LIVE,
            },
        )
    if selectors.run_active() is None:
        run = services.training_run(trigger="seed", tuning_seconds=tuning_seconds)
        if run is not None:
            write(
                f"recommendations: run {run.pk} {run.status}, precision@{run.k} "
                f"{run.precision} vs popularity {run.baseline_precision}"
            )
