"""Seed the demo: catalog, placements and variants, segments, an experiment, visitors with events.

Idempotent: everything is keyed (placements, variants, segments by key; events by a uuid5 of
their content), so a second run changes nothing.
"""

from __future__ import annotations

import os
import random
import secrets
import uuid
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from content.models import BlockType, Placement, Variant, VariantStatus
from core.embedded_redis import embedded_redis_running
from core.pseudonym import pseudonymize
from experiments.models import Arm, Experiment, ExperimentStatus
from ingestion import aggregate as ingestion_aggregate
from ingestion import store as ingestion_store
from profiles import services as profile_services
from profiles.consent import OPT_IN
from profiles.models import Profile
from recommendations.demo_seed import seed_recommendations
from segments import kpis, rfm
from segments import services as segment_services
from segments.models import Segment, SegmentKind, SegmentTrigger

NAMESPACE = uuid.UUID("6f1c1a52-8f5e-4c2e-9a53-0d1f3c5b7e21")

CATALOG = [
    {
        "sku": "cd-101",
        "title": "Kind of Blue",
        "artist": "Miles Davis",
        "genre": "jazz",
        "price": 12.0,
    },
    {
        "sku": "cd-102",
        "title": "A Love Supreme",
        "artist": "John Coltrane",
        "genre": "jazz",
        "price": 13.5,
    },
    {
        "sku": "cd-103",
        "title": "Time Out",
        "artist": "Dave Brubeck",
        "genre": "jazz",
        "price": 11.0,
    },
    {
        "sku": "cd-201",
        "title": "Abbey Road",
        "artist": "The Beatles",
        "genre": "rock",
        "price": 14.0,
    },
    {
        "sku": "cd-202",
        "title": "Rumours",
        "artist": "Fleetwood Mac",
        "genre": "rock",
        "price": 12.5,
    },
    {
        "sku": "cd-301",
        "title": "Blue Lines",
        "artist": "Massive Attack",
        "genre": "electronic",
        "price": 11.5,
    },
]

# Block types: reusable modules (template + JSON schema of their fields).
BLOCKS = {
    "hero-banner": (
        "Hero banner",
        """<section class="hero hero--{{ fields.tone }}">
  <h2>{{ fields.title }}</h2>
  <p>{{ fields.text }}</p>
  {% if fields.cta %}<a class="button" href="{{ fields.link }}">{{ fields.cta }}</a>{% endif %}
</section>""",
        {
            "type": "object",
            "properties": {
                "title": {"type": "string", "maxLength": 120},
                "text": {"type": "string", "format": "textarea"},
                "cta": {"type": "string", "title": "Button label"},
                "link": {"type": "string", "format": "uri", "title": "Button link"},
                "tone": {"type": "string", "enum": ["plain", "gold", "warm", "cool"]},
            },
            "required": ["title", "tone"],
        },
    ),
    "promo-bar": (
        "Promo bar",
        """<div class="promo">{{ fields.text }}</div>""",
        {
            "type": "object",
            "properties": {"text": {"type": "string", "maxLength": 200}},
            "required": ["text"],
        },
    ),
    "product-grid": (
        "Product grid",
        """<div class="recs">
  <h3>{{ fields.title }}</h3>
  <ul>
  {% for p in fields.products %}
    <li><strong>{{ p.title }}</strong><span>{{ p.artist }}</span>
      <em>${{ '%.2f' % p.price }}</em></li>
  {% endfor %}
  </ul>
</div>""",
        {
            "type": "object",
            "properties": {
                "title": {"type": "string"},
                "products": {"type": "array", "items": {"type": "object"}},
            },
            "required": ["title", "products"],
        },
    ),
    "recommendation-carousel": (
        "Recommendation carousel",
        """<div class="recs">
  <h3>{{ fields.title }}</h3>
  <ul>{% for sku in profile.recommendations or fields.fallback_skus %}
    <li>{{ sku }}</li>{% endfor %}</ul>
</div>""",
        {
            "type": "object",
            "properties": {
                "title": {"type": "string"},
                "fallback_skus": {"type": "array", "items": {"type": "string"}},
            },
            "required": ["title"],
        },
    ),
    "testimonial": (
        "Testimonial",
        """<blockquote class="testimonial">
  <p>{{ fields.quote }}</p><footer>{{ fields.author }}</footer>
</blockquote>""",
        {
            "type": "object",
            "properties": {
                "quote": {"type": "string", "format": "textarea"},
                "author": {"type": "string"},
            },
            "required": ["quote", "author"],
        },
    ),
    "free-html": (
        "Free HTML",
        """{{ fields.html }}""",
        {
            "type": "object",
            "properties": {
                "html": {
                    "type": "string",
                    "format": "html",
                    "description": "Shown as text (escaped); write a variant template for markup.",
                }
            },
            "required": ["html"],
        },
    ),
}

SEGMENTS = [
    (
        "loyal",
        "Loyal customers",
        "Two purchases or more.",
        {"profile.aggregates.purchase_count": {"$gte": 2}},
    ),
    (
        "cart-abandoners",
        "Cart abandoners",
        "Added to cart, never bought.",
        {
            "profile.aggregates.add_to_cart_count": {"$gte": 1},
            "profile.aggregates.purchase_count": 0,
        },
    ),
    (
        "jazz-fans",
        "Jazz fans",
        "Told us they like jazz.",
        {"profile.traits.favorite_genre": "jazz"},
    ),
]

# Model-scored segments: key → (name, description, kind, config).
RFM_SEGMENTS = {
    "win-back": (
        "Win-back (RFM)",
        "Customers who used to buy and have not lately (RFM: at risk, can't lose them, "
        "hibernating, lost).",
        SegmentKind.RFM,
        {"segments": ["at_risk", "cant_lose_them", "hibernating", "lost"]},
    ),
}
# The cart abandoners' webhook goes to the demo's own echo receiver (demo/views.py).
ECHO_WEBHOOK_URL = "http://127.0.0.1:8000/demo/webhook-echo"

# placement key → (name, [(variant key, name, priority, condition, block, fields)], default key)
PLACEMENTS = {
    "hero": (
        "Home hero banner",
        [
            (
                "welcome",
                "Welcome (default)",
                1000,
                {},
                "hero-banner",
                {
                    "tone": "plain",
                    "title": "Music for every mood",
                    "text": "Thousands of CDs, shipped in a day.",
                    "cta": "Browse the shop",
                    "link": "#shop",
                },
            ),
            (
                "loyal-thanks",
                "Thank-you for loyal customers",
                10,
                {"profile.segments": {"$in": ["loyal"]}},
                "hero-banner",
                {
                    "tone": "gold",
                    "title": "Thank you for coming back",
                    "text": "As one of our regulars, your next order ships free.",
                    "cta": "See what's new",
                    "link": "#new",
                },
            ),
            (
                "win-back",
                "Win-back offer (RFM)",
                15,
                {"profile.segments": {"$in": ["win-back"]}},
                "hero-banner",
                {
                    "tone": "warm",
                    "title": "We saved you a seat",
                    "text": "It has been a while: 15 % off your next order, this week only.",
                    "cta": "Use my 15 %",
                    "link": "#win-back",
                },
            ),
            (
                "cart-reminder",
                "Cart reminder",
                20,
                {"profile.segments": {"$in": ["cart-abandoners"]}},
                "hero-banner",
                {
                    "tone": "warm",
                    "title": "Your cart is waiting",
                    "text": "The records you picked are still in stock.",
                    "cta": "Back to my cart",
                    "link": "#cart",
                },
            ),
            (
                "mobile-app",
                "Mobile app push",
                50,
                {"request.device": "mobile"},
                "hero-banner",
                {
                    "tone": "cool",
                    "title": "Take the shop with you",
                    "text": "Our app plays 30-second previews of every track.",
                    "cta": "Get the app",
                    "link": "#app",
                },
            ),
        ],
        "welcome",
    ),
    "promo-bar": (
        "Promo bar",
        [
            (
                "free-shipping",
                "Free shipping (control)",
                1000,
                {},
                "promo-bar",
                {"text": "Free shipping on orders over $25."},
            ),
            (
                "ten-off",
                "10% off (treatment)",
                100,
                {},
                "promo-bar",
                {"text": "Today only: 10% off everything with code MOSAIC10."},
            ),
        ],
        "free-shipping",
    ),
    "recs": (
        "Recommendations",
        [
            (
                "bestsellers",
                "Bestsellers (default)",
                1000,
                {},
                "product-grid",
                {"title": "Bestsellers", "products": [CATALOG[0], CATALOG[3], CATALOG[4]]},
            ),
            (
                "jazz-picks",
                "Jazz picks",
                10,
                {"profile.segments": {"$in": ["jazz-fans"]}},
                "product-grid",
                {"title": "Picked for jazz lovers", "products": CATALOG[:3]},
            ),
        ],
        "bestsellers",
    ),
}

PERSONAS = {
    "demo-new": ({}, []),
    "demo-loyal": (
        {"favorite_genre": "rock"},
        [("purchase", "order", 28.0), ("purchase", "order", 14.0), ("purchase", "order", 40.5)],
    ),
    "demo-cart": ({}, [("product_view", "cd-202", None), ("add_to_cart", "cd-202", 12.5)]),
    "demo-jazz": (
        {"favorite_genre": "jazz"},
        [("product_view", "cd-101", None), ("product_view", "cd-102", None)],
    ),
    # One order, long ago: the oldest recency of the base, an RFM "lost" customer (win-back).
    "demo-lapsed": ({}, [("purchase", "order", 31.0)]),
}
# Personas whose events happened long ago (days before now of their first event).
PERSONA_AGE_DAYS = {"demo-lapsed": 75}
# Personas who granted marketing consent (segment webhooks are sent for them only).
MARKETING_CONSENT = {"demo-cart"}


# One demo user per role (access/roles.py): user name, group.
ROLE_USERS = [
    ("editor", "Editor"),
    ("analyst", "Analyst"),
    ("experimenter", "Experimenter"),
    ("privacy", "Privacy officer"),
    ("site-admin", "Admin"),
]


def role_passwords(path: Path) -> list[tuple[str, str, str]]:
    """The demo role users' passwords, kept in `path` (mode 600) like the admin's; generated for
    the users the file does not list yet."""
    known: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            username, _, rest = line.partition(" ")
            known[username] = rest.rsplit(" ", 1)[-1]
    rows = [
        (username, role, known.get(username) or secrets.token_urlsafe(12))
        for username, role in ROLE_USERS
    ]
    if any(username not in known for username, _ in ROLE_USERS):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.writelines(f"{u} {r} {p}\n" for u, r, p in rows)
        path.chmod(0o600)
    return rows


def _demo_user(username: str, password: str, *, superuser: bool = False, role: str = ""):
    """Create or update a demo staff user. The password is set only when it differs: setting it
    again would change the stored hash (a new salt), and Django ends every session of a user
    whose password hash changed, so each `make run` logged everyone out of the admin."""
    user, _ = get_user_model().objects.get_or_create(
        username=username, defaults={"is_staff": True, "is_superuser": superuser}
    )
    if not user.check_password(password):
        user.set_password(password)
    user.is_staff = True
    user.is_superuser = superuser
    user.save()
    if role:
        user.groups.set([Group.objects.get(name=role)])
    return user


class Command(BaseCommand):
    help = "Seed the demo storefront (idempotent)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--visitors", type=int, default=200, help="Synthetic visitors.")
        parser.add_argument("--admin-password", default="", help="Create/update user 'admin'.")
        parser.add_argument(
            "--role-passwords",
            default="",
            help="File of '<user> <role> <password>' lines (created with generated passwords, "
            "mode 600, when missing): one demo user per role.",
        )

    def handle(self, *args, **options) -> None:
        with embedded_redis_running():
            with transaction.atomic():
                self._content()
                segments = self._segments()
            # Consent first: the cart abandoner's webhook is sent only with marketing consent.
            self._consents()
            self._visitors(options["visitors"])
            scored = rfm.rfm_scores_refresh()
            self.stdout.write(f"RFM: {scored.customers} customers scored")
            for segment in segments:
                result = segment_services.segment_recompute(segment_id=segment.pk)
                self.stdout.write(f"segment {result.segment_key}: {result.members} members")
            from experiments.demo import demo_experiment_seed

            demo = demo_experiment_seed()
            self.stdout.write(f"experiment {demo.key if demo else '-'}: A/B test with traffic")
            kpis.segments_kpis_refresh(days=1)
            seed_recommendations(write=self.stdout.write)
        if options["admin_password"]:
            _demo_user("admin", options["admin_password"], superuser=True)
        if options["role_passwords"]:
            for username, role, password in role_passwords(Path(options["role_passwords"])):
                _demo_user(username, password, role=role)
        self.stdout.write(self.style.SUCCESS("demo data ready"))

    def _content(self) -> None:
        blocks = {
            key: BlockType.objects.update_or_create(
                key=key, defaults={"name": name, "template": template, "schema": schema}
            )[0]
            for key, (name, template, schema) in BLOCKS.items()
        }
        for key, (name, variants, default_key) in PLACEMENTS.items():
            placement, _ = Placement.objects.update_or_create(key=key, defaults={"name": name})
            for v_key, v_name, priority, condition, block_key, fields in variants:
                Variant.objects.update_or_create(
                    placement=placement,
                    key=v_key,
                    defaults={
                        "name": v_name,
                        "priority": priority,
                        "condition": condition,
                        "block_type": blocks[block_key],
                        "block_fields": fields,
                        "template": "",
                        "status": VariantStatus.LIVE,
                    },
                )
            default = placement.variants.get(key=default_key)
            if placement.default_variant_id != default.pk:
                placement.default_variant = default
                placement.save(update_fields=["default_variant"])
        promo = Placement.objects.get(key="promo-bar")
        experiment, _ = Experiment.objects.update_or_create(
            key="promo-copy",
            defaults={
                "name": "Promo bar copy",
                "placement": promo,
                "status": ExperimentStatus.RUNNING,
                "hypothesis": "A concrete discount converts better than free shipping.",
                "started_at": timezone.now(),
            },
        )
        for position, (arm_key, variant_key, control) in enumerate(
            [("control", "free-shipping", True), ("ten-off", "ten-off", False)]
        ):
            Arm.objects.update_or_create(
                experiment=experiment,
                key=arm_key,
                defaults={
                    "name": arm_key,
                    "variant": promo.variants.get(key=variant_key),
                    "is_control": control,
                    "position": position,
                    "weight": 1.0,
                },
            )

    def _segments(self) -> list[Segment]:
        segments = [
            Segment.objects.update_or_create(
                key=key,
                defaults={
                    "name": name,
                    "description": description,
                    "condition": condition,
                    "kind": SegmentKind.CONDITION,
                },
            )[0]
            for key, name, description, condition in SEGMENTS
        ]
        for key, (name, description, kind, config) in RFM_SEGMENTS.items():
            segment, _ = Segment.objects.update_or_create(
                key=key,
                defaults={
                    "name": name,
                    "description": description,
                    "kind": kind,
                    "config": config,
                    "condition": {},
                },
            )
            segments.append(segment)
        cart = next(s for s in segments if s.key == "cart-abandoners")
        SegmentTrigger.objects.update_or_create(
            segment=cart,
            url=ECHO_WEBHOOK_URL,
            defaults={"name": "Demo echo receiver", "on_enter": True, "on_exit": True},
        )
        return segments

    def _consents(self) -> None:
        for visitor in MARKETING_CONSENT:
            profile_key = pseudonymize(visitor)
            current = Profile.objects.filter(key=profile_key).values_list("consent", flat=True)
            if current and (current[0] or {}).get("marketing") is True:
                continue
            profile_services.consent_record(
                profile_key=profile_key,
                purposes={"analytics": True, "personalization": True, "marketing": True},
                source="seed_demo",
                policy_version="demo",
                gpc=False,
                actor="seed_demo",
            )

    def _visitors(self, count: int) -> None:
        rng = random.Random(42)
        now = timezone.now().replace(microsecond=0)
        events = []
        visitors: dict[str, dict] = {}
        for visitor, (traits, history) in PERSONAS.items():
            visitors[visitor] = traits
            age = PERSONA_AGE_DAYS.get(visitor, 10)
            for i, (kind, name, value) in enumerate(history):
                events.append(
                    self._event(visitor, i, kind, name, value, now - timedelta(days=age - i))
                )
        for n in range(count):
            visitor = f"synthetic-{n:04d}"
            visitors[visitor] = {"favorite_genre": rng.choice(["jazz", "rock", "electronic"])}
            for i in range(rng.randint(1, 8)):
                kind = rng.choices(
                    ["page_view", "product_view", "add_to_cart", "purchase"], [5, 4, 2, 1]
                )[0]
                product = rng.choice(CATALOG)
                value = product["price"] if kind in ("add_to_cart", "purchase") else None
                events.append(
                    self._event(
                        visitor,
                        i,
                        kind,
                        product["sku"],
                        value,
                        now - timedelta(days=rng.randint(0, 60), minutes=i),
                    )
                )
        if settings.MOSAIC_CONSENT_DEFAULT == OPT_IN:
            # Under opt-in nothing is stored for a visitor who did not consent: the demo's
            # fictional visitors are recorded as having consented (source "seed_demo").
            for visitor in visitors:
                profile_services.consent_record(
                    profile_key=pseudonymize(visitor),
                    purposes={"analytics": True, "personalization": True},
                    source="seed_demo",
                    policy_version="",
                    gpc=False,
                    actor="seed_demo",
                )
        stored = ingestion_store.events_store(events=events).stored
        for visitor, traits in visitors.items():
            if traits:
                profile = Profile.objects.get(key=pseudonymize(visitor))
                if profile.traits != traits:
                    profile.traits = traits
                    profile.save(update_fields=["traits"])
        # Ingestion's second stage (aggregates, segments, cached documents) for what was stored,
        # then every document again: the traits set above are part of it.
        ingestion_aggregate.profiles_aggregate_all_pending()
        profile_ids = list(Profile.objects.values_list("pk", flat=True))
        profile_services.profile_cache_write(profile_ids=profile_ids)
        self.stdout.write(f"{len(visitors)} visitors, {len(events)} events ({stored} new)")

    @staticmethod
    def _event(visitor, index, kind, name, value, when) -> dict:
        # The id ignores the time, which moves with the day of the run: a re-run adds nothing.
        event_id = uuid.uuid5(NAMESPACE, f"{visitor}|{index}|{kind}|{name}")
        return {
            "event_id": str(event_id),
            "visitor": visitor,
            "type": kind,
            "name": name,
            "value": value,
            "occurred_at": when.isoformat(),
            "properties": {},
        }
