"""Segment triggers: signed webhooks on enter/exit, consent-gated, retried, never blocking."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.exceptions import ValidationError
from django.test import override_settings

from core.pseudonym import pseudonymize
from identity.models import TraitDefinition
from profiles import services as profile_services
from profiles.models import Profile
from segments import runs
from segments.models import DeliveryStatus, Segment, SegmentTrigger, WebhookDelivery
from segments.webhooks import retry_delay, signature_header, signature_verify
from tests.conftest import start_worker, wait_for
from tests.factories import event, store

WORKER_ENV = {
    "MOSAIC_WEBHOOK_ALLOW_LOOPBACK": "1",
    "MOSAIC_WEBHOOK_TIMEOUT_SECONDS": "1",
    "MOSAIC_WEBHOOK_BACKOFF_SECONDS": "0.2",
    "MOSAIC_WEBHOOK_MAX_ATTEMPTS": "3",
}


class Receiver:
    """A real HTTP server on 127.0.0.1: answers `fail_first` requests with 500 (or hangs for
    `hang` seconds on every request), then 200; records what it got."""

    def __init__(self, *, fail_first: int = 0, hang: float = 0.0) -> None:
        self.requests: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append({"body": body, "headers": dict(self.headers)})
                if hang:
                    time.sleep(hang)
                code = 500 if len(receiver.requests) <= fail_first else 200
                try:
                    self.send_response(code)
                    self.end_headers()
                    self.wfile.write(b"ok")
                except BrokenPipeError:  # the sender timed out and hung up: what was tested
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receivers():
    made: list[Receiver] = []

    def make(**kwargs) -> Receiver:
        made.append(Receiver(**kwargs))
        return made[-1]

    yield make
    for receiver in made:
        receiver.close()


def test_signature__recipe__verifies_and_rejects_tampering():
    body = b'{"event":"entered"}'
    header = signature_header(secret="s3cret", body=body, timestamp=1_700_000_000)
    assert signature_verify(secret="s3cret", body=body, header=header, now=1_700_000_010)
    assert not signature_verify(secret="other", body=body, header=header, now=1_700_000_010)
    assert not signature_verify(secret="s3cret", body=body + b" ", header=header, now=1_700_000_010)
    # A replay long after the timestamp is refused
    assert not signature_verify(secret="s3cret", body=body, header=header, now=1_700_009_999)
    assert not signature_verify(secret="s3cret", body=body, header="garbage")


def test_retry_delay__exponential_with_jitter__bounded_and_varied():
    with override_settings(MOSAIC_WEBHOOK_BACKOFF_SECONDS=2.0):
        delays = [retry_delay(4) for _ in range(200)]
    assert all(0.2 <= d <= 16.0 for d in delays)
    assert max(delays) > 8
    assert len(set(delays)) > 100


@pytest.mark.django_db
@override_settings(MOSAIC_WEBHOOK_ALLOW_LOOPBACK=False, DEBUG=False)
def test_trigger_url__private_or_bad_scheme__refused_naming_url():
    segment = Segment.objects.create(key="s", name="S", condition={})
    for url in (
        "ftp://x.example/h",
        "http://127.0.0.1/h",
        "http://10.0.0.5/h",
        "http://localhost/",
    ):
        with pytest.raises(ValidationError) as raised:
            SegmentTrigger(segment=segment, url=url).full_clean()
        assert "url" in raised.value.message_dict
    SegmentTrigger(segment=segment, url="https://hooks.example.com/x").full_clean()


def _people():
    """A consenting pro, a pro who never chose, a pro whose GPC refused marketing, one free."""
    TraitDefinition.objects.create(name="tier", type="string", shareable=True)
    TraitDefinition.objects.create(name="email", type="string", shareable=False)
    traits = {"plan": "pro", "tier": "gold", "email": "ann@example.com"}
    Profile.objects.bulk_create(
        [
            Profile(key=pseudonymize("ann"), traits=traits, consent={"marketing": True}),
            Profile(key=pseudonymize("ben"), traits={"plan": "pro"}, consent={}),
            Profile(key=pseudonymize("gus"), traits={"plan": "pro"}, consent={"marketing": False}),
            Profile(key=pseudonymize("fay"), traits={"plan": "free"}, consent={"marketing": True}),
        ]
    )


@pytest.mark.worker
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_webhooks__real_receivers_and_worker__flaky_retried_hanging_fails_consent_gated(
    redis_url, tmp_path, receivers
):
    # Given a receiver failing twice before it succeeds, one that hangs, and a segment of pros
    # triggering both on enter
    flaky, hanging = receivers(fail_first=2), receivers(hang=3.0)
    _people()
    segment = Segment.objects.create(
        key="pro", name="Pro", condition={"profile.traits.plan": "pro"}
    )
    good = SegmentTrigger.objects.create(segment=segment, url=flaky.url, on_enter=True)
    stuck = SegmentTrigger.objects.create(segment=segment, url=hanging.url, on_enter=True)
    worker = start_worker(redis_url, tmp_path / "worker.log", **WORKER_ENV)
    try:
        # When the segment runs (three pros enter)
        run = runs.segment_run(segment_id=segment.pk)
        assert run.entered == 3

        # Then only the consenting visitor's entry is delivered, after two retried 500s
        def settled():
            statuses = set(WebhookDelivery.objects.values_list("status", flat=True))
            return statuses <= {DeliveryStatus.DELIVERED, DeliveryStatus.FAILED}

        wait_for(settled, timeout=60, interval=0.5, message=worker.output())
    finally:
        worker.process.terminate()
        worker.process.wait(timeout=15)
    assert WebhookDelivery.objects.count() == 2
    delivered = WebhookDelivery.objects.get(trigger=good)
    assert (delivered.status, delivered.attempts, delivered.last_status_code) == (
        "delivered",
        3,
        200,
    )
    assert len(flaky.requests) == 3
    # And the body names the segment, event and pseudonymous key, with shareable traits only
    request = flaky.requests[-1]
    body = json.loads(request["body"])
    assert body["segment"] == {"key": "pro", "name": "Pro"}
    assert body["event"] == "entered"
    assert body["profile"] == pseudonymize("ann")
    assert body["traits"] == {"tier": "gold"}
    # And it is signed with the trigger's secret over the timestamp and the body
    assert signature_verify(
        secret=good.secret, body=request["body"], header=request["headers"]["X-Mosaic-Signature"]
    )
    # And the hanging receiver's delivery failed after its attempts, saying why
    failed = WebhookDelivery.objects.get(trigger=stuck)
    assert (failed.status, failed.attempts) == ("failed", 3)
    assert "timed out" in failed.last_error


@pytest.mark.django_db
def test_webhooks__ingestion_enters_segment__delivery_queued_without_waiting(receivers):
    # Given a hanging receiver on a segment of repeat buyers, and a consenting visitor
    hanging = receivers(hang=5.0)
    segment = Segment.objects.create(
        key="buyers", name="Buyers", condition={"profile.aggregates.purchase_count": {"$gte": 2}}
    )
    SegmentTrigger.objects.create(segment=segment, url=hanging.url, on_enter=True, on_exit=True)
    Profile.objects.create(key=pseudonymize("ann"), consent={"marketing": True})
    # When ingestion makes the visitor enter
    started = time.monotonic()
    store(events=[event("ann", "purchase", value="3"), event("ann", "purchase", value="4")])
    seconds = time.monotonic() - started
    # Then a delivery waits for the worker, and ingestion did not wait for the receiver
    delivery = WebhookDelivery.objects.get()
    assert (delivery.event, delivery.status, delivery.attempts) == ("entered", "pending", 0)
    assert seconds < 3.0
    assert hanging.requests == []
    # And exits trigger too (on_exit) once the visitor stops matching
    segment.condition = {"profile.aggregates.purchase_count": {"$gte": 5}}
    segment.save()
    profile_services.profiles_refresh(profile_ids=[delivery.profile_id])
    assert list(WebhookDelivery.objects.order_by("pk").values_list("event", flat=True)) == [
        "entered",
        "exited",
    ]


@pytest.mark.django_db
def test_webhooks__erasure__deliveries_of_the_visitor_deleted():
    from profiles import privacy

    _people()
    segment = Segment.objects.create(
        key="pro", name="Pro", condition={"profile.traits.plan": "pro"}
    )
    SegmentTrigger.objects.create(segment=segment, url="https://hooks.example.com/x")
    runs.segment_run(segment_id=segment.pk)
    assert WebhookDelivery.objects.count() == 1
    privacy.profile_erase(profile_key=pseudonymize("ann"), actor="test")
    assert WebhookDelivery.objects.count() == 0


@pytest.mark.django_db
def test_demo_webhook_echo__signed_post__recorded_and_verified(client):
    # Given a delivery of a trigger, and its body signed with the trigger's secret
    _people()
    segment = Segment.objects.create(
        key="pro", name="Pro", condition={"profile.traits.plan": "pro"}
    )
    trigger = SegmentTrigger.objects.create(segment=segment, url="https://hooks.example.com/x")
    runs.segment_run(segment_id=segment.pk)
    delivery = WebhookDelivery.objects.get()
    body = delivery.body.encode()
    header = signature_header(secret=trigger.secret, body=body, timestamp=int(time.time()))
    # When it is posted to the demo's echo receiver, and a forged one too
    good = client.post(
        "/demo/webhook-echo",
        body,
        content_type="application/json",
        HTTP_X_MOSAIC_SIGNATURE=header,
        HTTP_X_MOSAIC_DELIVERY=str(delivery.pk),
    )
    forged = client.post(
        "/demo/webhook-echo",
        body,
        content_type="application/json",
        HTTP_X_MOSAIC_SIGNATURE=header.replace("v1=", "v1=0"),
        HTTP_X_MOSAIC_DELIVERY="x",
    )
    # Then both are listed, newest first, with whether their signature verified
    assert good.json()["signature_valid"] is True
    assert forged.json()["signature_valid"] is False
    received = client.get("/demo/webhook-echo").json()["received"]
    assert [r["signature_valid"] for r in received] == [False, True]
    assert received[1]["body"]["event"] == "entered"


@pytest.mark.django_db
def test_webhook_attempt__consent_withdrawn_before_send__not_sent(receivers):
    from segments.webhooks import webhook_attempt

    # Given a pending delivery for a consenting visitor, who then withdraws marketing consent
    receiver = receivers()
    _people()
    segment = Segment.objects.create(
        key="pro", name="Pro", condition={"profile.traits.plan": "pro"}
    )
    SegmentTrigger.objects.create(segment=segment, url=receiver.url)
    runs.segment_run(segment_id=segment.pk)
    delivery = WebhookDelivery.objects.get()
    Profile.objects.filter(pk=delivery.profile_id).update(consent={"marketing": False})
    # When the worker attempts it, Then nothing is sent and the log says why
    with override_settings(MOSAIC_WEBHOOK_ALLOW_LOOPBACK=True):
        result = webhook_attempt(delivery_id=delivery.pk)
    assert result.status == "failed"
    assert "consent withdrawn" in result.last_error
    assert receiver.requests == []


@pytest.mark.django_db
def test_profile_export__segment_history_and_deliveries__included():
    from profiles import privacy

    _people()
    segment = Segment.objects.create(
        key="pro", name="Pro", condition={"profile.traits.plan": "pro"}
    )
    SegmentTrigger.objects.create(segment=segment, url="https://hooks.example.com/x")
    runs.segment_run(segment_id=segment.pk)
    data = privacy.profile_export(profile_key=pseudonymize("ann"), actor="test")
    assert data["segment_history"][0]["segment"] == "pro"
    assert data["segment_history"][0]["event"] == "entered"
    assert data["webhook_deliveries"][0]["event"] == "entered"


@pytest.mark.django_db
def test_webhook_attempt__claimed_by_another_task__not_sent_twice(receivers):
    from django.utils import timezone

    from segments.webhooks import webhook_attempt

    # Given a pending delivery whose attempt another task is making right now
    receiver = receivers()
    _people()
    segment = Segment.objects.create(
        key="pro", name="Pro", condition={"profile.traits.plan": "pro"}
    )
    SegmentTrigger.objects.create(segment=segment, url=receiver.url)
    runs.segment_run(segment_id=segment.pk)
    delivery = WebhookDelivery.objects.get()
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        sending_until=timezone.now() + timedelta(seconds=30)
    )
    # When a second task attempts it, Then it sends nothing
    with override_settings(MOSAIC_WEBHOOK_ALLOW_LOOPBACK=True):
        webhook_attempt(delivery_id=delivery.pk)
    assert receiver.requests == []
    # When the claim has lapsed (its worker died), the next attempt sends it once
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        sending_until=timezone.now() - timedelta(seconds=1)
    )
    with override_settings(MOSAIC_WEBHOOK_ALLOW_LOOPBACK=True):
        done = webhook_attempt(delivery_id=delivery.pk)
    assert (done.status, done.attempts, done.sending_until) == ("delivered", 1, None)
    assert len(receiver.requests) == 1
