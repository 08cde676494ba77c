"""Segment triggers: a signed JSON POST to a webhook when profiles enter or exit a segment.

Deliveries are created in the transaction that changes the membership (with the history), only
for profiles whose current consent explicitly grants `marketing` (never chosen, refused, or
refused by Global Privacy Control: nothing is sent), and sent by the worker once it committed,
so ingestion never waits for a receiver. Each delivery is retried on timeouts, connection errors,
429 and 5xx with exponential backoff and full jitter, up to MOSAIC_WEBHOOK_MAX_ATTEMPTS; other
4xx answers fail it at once. The body carries the segment, the event, the pseudonymous profile
key and only the traits the trait schema marks shareable.

Signature (docs/segments.md has the receiver's recipe): header
`X-Mosaic-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import random
import time
import urllib.error
import urllib.request
import uuid
from collections import defaultdict
from datetime import timedelta
from urllib.parse import urlsplit

from django.apps import apps
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from profiles.consent import MARKETING
from profiles.models import Profile

from .models import (
    DeliveryStatus,
    MembershipEvent,
    SegmentMembershipChange,
    SegmentTrigger,
    WebhookDelivery,
)

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Mosaic-Signature"
USER_AGENT = "Mosaic-Webhooks/1"
RETRY_STATUSES = {408, 429}
# How long past its timeout an attempt's claim holds (a killed worker's claim then lapses).
CLAIM_MARGIN_SECONDS = 30


def signature_header(*, secret: str, body: bytes, timestamp: int) -> str:
    signed = f"{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def signature_verify(
    *, secret: str, body: bytes, header: str, tolerance: int = 300, now: float | None = None
) -> bool:
    """The receiver's check (documented recipe): right key, and not older than `tolerance` s."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (ValueError, KeyError):
        return False
    expected = signature_header(secret=secret, body=body, timestamp=timestamp)
    fresh = abs((now or time.time()) - timestamp) <= tolerance
    return fresh and hmac.compare_digest(expected, header)


def webhook_url_validate(url: str) -> None:
    """Refuse URLs a webhook must not call: other schemes, and loopback/private/link-local hosts
    (unless MOSAIC_WEBHOOK_ALLOW_LOOPBACK or DEBUG: the demo's echo receiver and the tests)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError("Must be an http(s) URL with a host.")
    if settings.MOSAIC_WEBHOOK_ALLOW_LOOPBACK or settings.DEBUG:
        return
    host = parts.hostname
    if host == "localhost" or host.endswith(".localhost"):
        raise ValidationError("Loopback hosts are refused.")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return
    if address.is_loopback or address.is_private or address.is_link_local or address.is_reserved:
        raise ValidationError("Private, loopback and link-local addresses are refused.")


def _marketing_consented(consent: dict | None) -> bool:
    # Explicit consent only: sending a visitor's segment changes to another system is marketing
    # use, so "never chose" does not count, whatever MOSAIC_CONSENT_DEFAULT says for other uses;
    # GPC sets marketing to false when it is recorded (consent.consent_merge).
    return bool(consent) and consent.get(MARKETING) is True


def _shareable_traits() -> set[str]:
    model = apps.get_model("identity", "TraitDefinition")
    return set(model.objects.filter(shareable=True).values_list("name", flat=True))


def webhook_deliveries_create(
    *, segment_ids: set[int], changes: list[SegmentMembershipChange]
) -> int:
    """Within the membership change's transaction: one delivery per (trigger, consenting
    profile, event); the sends are enqueued once it commits. Returns how many were created."""
    triggers = list(
        SegmentTrigger.objects.filter(segment_id__in=segment_ids, is_active=True).select_related(
            "segment"
        )
    )
    if not triggers:
        return 0
    by_segment: dict[int, list[SegmentTrigger]] = defaultdict(list)
    for trigger in triggers:
        by_segment[trigger.segment_id].append(trigger)
    wanted = [c for c in changes if c.segment_id in by_segment]
    profiles = {
        p.pk: p
        for p in Profile.objects.filter(pk__in={c.profile_id for c in wanted}).only(
            "pk", "key", "traits", "consent"
        )
    }
    shareable = _shareable_traits()
    deliveries = []
    for change in wanted:
        profile = profiles.get(change.profile_id)
        if profile is None or not _marketing_consented(profile.consent):
            continue
        for trigger in by_segment[change.segment_id]:
            entered = change.event == MembershipEvent.ENTERED
            if (entered and not trigger.on_enter) or (not entered and not trigger.on_exit):
                continue
            body = {
                "id": str(uuid.uuid4()),
                "segment": {"key": trigger.segment.key, "name": trigger.segment.name},
                "event": change.event,
                "profile": profile.key,
                "traits": {k: v for k, v in (profile.traits or {}).items() if k in shareable},
                "occurred_at": change.at.isoformat(),
            }
            deliveries.append(
                WebhookDelivery(
                    trigger=trigger,
                    profile_id=profile.pk,
                    event=change.event,
                    body=json.dumps(body, separators=(",", ":"), sort_keys=True),
                )
            )
    if not deliveries:
        return 0
    WebhookDelivery.objects.bulk_create(deliveries, batch_size=500)
    # Primary keys come back from the insert (RETURNING: PostgreSQL, SQLite 3.35+).
    ids = [d.pk for d in deliveries if d.pk is not None]
    transaction.on_commit(lambda: _enqueue(ids))
    return len(deliveries)


def _enqueue(ids: list[int]) -> None:
    from .tasks import webhook_deliver

    for delivery_id in ids:
        try:
            webhook_deliver.delay(delivery_id)
        except Exception:  # the broker is down: beat's sweep sends pending deliveries later
            logger.warning("webhooks: could not enqueue delivery %s", delivery_id)
            return


class Retry(Exception):
    """The attempt failed in a way worth retrying."""


def webhook_attempt(*, delivery_id: int) -> WebhookDelivery | None:
    """One attempt; raises Retry when it should be tried again (the task schedules that)."""
    now = timezone.now()
    claimed = (
        WebhookDelivery.objects.filter(
            pk=delivery_id, status__in=[DeliveryStatus.PENDING, DeliveryStatus.RETRYING]
        )
        .filter(Q(sending_until__isnull=True) | Q(sending_until__lt=now))
        .update(
            sending_until=now
            + timedelta(seconds=settings.MOSAIC_WEBHOOK_TIMEOUT_SECONDS + CLAIM_MARGIN_SECONDS)
        )
    )
    delivery = WebhookDelivery.objects.select_related("trigger").filter(pk=delivery_id).first()
    if not claimed or delivery is None:
        # Erased, already done, or being sent by another task right now: idempotent.
        return delivery
    delivery.sending_until = None
    consent = Profile.objects.filter(pk=delivery.profile_id).values_list("consent", flat=True)
    if not _marketing_consented(consent.first()):
        # Withdrawn (or GPC) since the change: nothing is sent, whatever is pending.
        delivery.status = DeliveryStatus.FAILED
        delivery.last_error = "not sent: marketing consent withdrawn"
        delivery.save(update_fields=["status", "last_error", "sending_until"])
        return delivery
    body = delivery.body.encode()
    timestamp = int(time.time())
    request = urllib.request.Request(
        delivery.trigger.url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            SIGNATURE_HEADER: signature_header(
                secret=delivery.trigger.secret, body=body, timestamp=timestamp
            ),
            "X-Mosaic-Delivery": str(delivery.pk),
        },
    )
    delivery.attempts += 1
    delivery.last_attempt_at = timezone.now()
    retry = False
    try:
        with urllib.request.urlopen(
            request, timeout=settings.MOSAIC_WEBHOOK_TIMEOUT_SECONDS
        ) as response:
            delivery.last_status_code = response.status
            response.read(1024)
        delivery.status = DeliveryStatus.DELIVERED
        delivery.delivered_at = timezone.now()
        delivery.last_error = ""
    except urllib.error.HTTPError as exc:
        delivery.last_status_code = exc.code
        delivery.last_error = f"HTTP {exc.code} {exc.reason}"[:1000]
        retry = exc.code >= 500 or exc.code in RETRY_STATUSES
    except TimeoutError as exc:
        delivery.last_status_code = None
        delivery.last_error = f"timed out after {settings.MOSAIC_WEBHOOK_TIMEOUT_SECONDS} s: {exc}"
        retry = True
    except (urllib.error.URLError, OSError) as exc:
        delivery.last_status_code = None
        reason = getattr(exc, "reason", exc)
        delivery.last_error = f"connection failed: {reason}"[:1000]
        retry = True
    if delivery.status != DeliveryStatus.DELIVERED:
        more = retry and delivery.attempts < settings.MOSAIC_WEBHOOK_MAX_ATTEMPTS
        delivery.status = DeliveryStatus.RETRYING if more else DeliveryStatus.FAILED
    delivery.save()
    if delivery.status == DeliveryStatus.RETRYING:
        raise Retry(delivery.last_error)
    return delivery


def retry_delay(attempt: int) -> float:
    """Exponential backoff with full jitter: uniform in [0, base * 2**(attempt - 1)], at least
    a tenth of the base."""
    base = settings.MOSAIC_WEBHOOK_BACKOFF_SECONDS
    return max(base / 10, random.uniform(0, base * 2 ** (attempt - 1)))


def webhook_deliveries_sweep(*, older_than_seconds: int = 120, limit: int = 1000) -> int:
    """Enqueue pending deliveries whose task was lost (broker down at commit). Bounded."""
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    ids = list(
        WebhookDelivery.objects.filter(
            status=DeliveryStatus.PENDING, attempts=0, created_at__lt=cutoff
        ).values_list("pk", flat=True)[:limit]
    )
    _enqueue(ids)
    return len(ids)
