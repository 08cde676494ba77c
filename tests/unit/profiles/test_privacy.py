"""Privacy endpoints and admin actions: export covers every store, erase reaches every store,
both are staff-only and audited without personal data."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse
from django.utils import timezone

from content.models import Placement
from core.pseudonym import pseudonymize
from experiments.models import Experiment, Exposure
from ingestion import queue as ingestion_queue
from ingestion.queue import EVENT_QUEUE
from profiles import services as profile_services
from profiles.models import AuditAction, AuditEntry, ConsentRecord, Event, Profile
from profiles.selectors import profile_cache_key
from segments.models import Segment, SegmentMembership
from tests.factories import event, ingest, make_segment

VISITOR = "visitor-9x2k@example.com"


def export_url(visitor: str = VISITOR) -> str:
    return f"/api/v1/profiles/{visitor}/export"


def erase_url(visitor: str = VISITOR) -> str:
    return f"/api/v1/profiles/{visitor}"


@pytest.fixture
def held(db, client, redis_client):
    """A visitor present in every store: profile, events, consent, segment, Redis, exposures."""
    make_segment("buyers", {"profile.aggregates.purchase_count": {"$gte": 1}})
    response = client.post(
        "/api/v1/consent",
        data=json.dumps({"visitor": VISITOR, "purposes": {"analytics": True}, "source": "cmp"}),
        content_type="application/json",
    )
    assert response.status_code == 201
    ingestion_queue.events_enqueue(
        events=[event(VISITOR), event(VISITOR, "purchase", value="9.90")]
    )
    ingest(max_events=100)
    profile_services.profile_set_traits(visitor=VISITOR, traits={"plan": "pro"})
    # Still queued (not ingested yet): one of this visitor's events and one of someone else's.
    ingestion_queue.events_enqueue(events=[event(VISITOR, "search"), event("bystander")])
    key = pseudonymize(VISITOR)
    # No variants: only the experiment row the exposure points at is needed.
    placement = Placement.objects.create(key="hero", name="Hero")
    experiment = Experiment.objects.create(key="exp", name="exp", placement=placement)
    Exposure.objects.create(
        experiment=experiment, arm_key="arm0", profile_key=key, first_exposed_at=timezone.now()
    )
    # A key named after the visitor, as the exposure dedupe keys are.
    redis_client.set(f"mosaic:exposures:seen:exp:arm0:{key}", 1)
    return Profile.objects.get(key=key)


@pytest.mark.django_db
def test_export__held_visitor__every_store_in_the_document(admin_client, held, redis_client):
    # Given a visitor present in the database and in Redis
    # When a staff user exports them
    response = admin_client.get(export_url())
    # Then the document holds the profile, events, consent history, segments and Redis data
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["profile"]["key"] == held.key
    assert data["profile"]["traits"] == {"plan": "pro"}
    assert data["profile"]["aggregates"]["purchase_count"] == 1
    assert data["profile"]["consent"]["analytics"] is True
    assert {"first_seen", "last_seen"} <= set(data["profile"])
    assert sorted(e["type"] for e in data["events"]) == ["page_view", "purchase"]
    assert [c["source"] for c in data["consent_history"]] == ["cmp"]
    assert [s["key"] for s in data["segments"]] == ["buyers"]
    assert data["redis"]["profile_document"]["traits"] == {"plan": "pro"}
    assert profile_cache_key(held.key) in data["redis"]["keys"]
    assert [i["type"] for i in data["redis"]["pending_items"]] == ["search"]
    assert data["experiments"]["assignments"] == []
    assert "not stored" in data["experiments"]["note"]
    assert [x["arm"] for x in data["experiments"]["exposures"]] == ["arm0"]
    # And the export is audited under the pseudonymous key, with counts only
    entry = AuditEntry.objects.get(action=AuditAction.EXPORT)
    assert (entry.actor, entry.subject) == ("admin", held.key)
    assert entry.details["events"] == 2
    assert VISITOR not in json.dumps(entry.details)


@pytest.mark.django_db
def test_export__unknown_visitor__404_names_visitor(admin_client):
    # Given nobody, When exported, Then 404 naming the visitor, and no audit entry
    response = admin_client.get(export_url("nobody"))
    assert response.status_code == 404
    assert response.json()["errors"][0]["field"] == "visitor"
    assert not AuditEntry.objects.exists()


@pytest.mark.django_db
def test_erase__held_visitor__gone_from_every_store(admin_client, held, redis_client):
    # Given a visitor present everywhere
    key = held.key
    # When a staff user erases them
    response = admin_client.delete(erase_url())
    # Then the database holds nothing of them any more
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["erased"] is True
    assert body["counts"]["events"] == 2
    assert body["counts"]["redis_pending_items"] == 1
    assert not Profile.objects.filter(key=key).exists()
    assert not Event.objects.exists()
    assert not ConsentRecord.objects.exists()
    assert not SegmentMembership.objects.exists()
    assert Segment.objects.get(key="buyers").member_count == 0
    assert not Exposure.objects.filter(profile_key=key).exists()
    # And neither does Redis: no key names them, no queued item holds them; others are untouched
    assert redis_client.get(profile_cache_key(key)) is None
    assert list(redis_client.scan_iter(match=f"*{key}*")) == []
    queued = [json.loads(raw) for raw in redis_client.lrange(EVENT_QUEUE, 0, -1)]
    assert [item["visitor_key"] for item in queued] == [pseudonymize("bystander")]
    # And the audit log has an erasure entry with counts only, and nothing pointing at them
    entry = AuditEntry.objects.get(action=AuditAction.ERASE)
    assert entry.subject == "-"
    assert entry.details["erasure_id"] == body["erasure_id"]
    dump = json.dumps([[e.subject, e.details] for e in AuditEntry.objects.all()])
    assert VISITOR not in dump
    assert key not in dump


@pytest.mark.django_db
def test_erase__twice__second_call_says_not_erased(admin_client, held):
    # Given an erased visitor
    assert admin_client.delete(erase_url()).json()["erased"] is True
    # When erased again
    response = admin_client.delete(erase_url())
    # Then it succeeds, says nothing was erased, and is audited again
    assert response.status_code == 200
    assert response.json()["erased"] is False
    assert AuditEntry.objects.filter(action=AuditAction.ERASE).count() == 2


@pytest.mark.django_db
def test_erase__queued_event_erased__not_recreated_by_ingestion(admin_client, held):
    # Given an erased visitor whose event was still queued
    admin_client.delete(erase_url())
    # When ingestion runs afterwards
    ingest(max_events=100)
    # Then the visitor does not come back (only the bystander's event is stored)
    assert not Profile.objects.filter(key=held.key).exists()
    assert Event.objects.get().profile.key == pseudonymize("bystander")


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["get_export", "delete"])
@pytest.mark.parametrize("login", [False, True], ids=["anonymous", "non_staff"])
def test_privacy__not_staff__403_nothing_done(client, django_user_model, held, method, login):
    # Given an anonymous client, or a logged-in non-staff user
    if login:
        client.force_login(django_user_model.objects.create_user("ann", password="x"))
    # When they call the endpoint
    response = client.delete(erase_url()) if method == "delete" else client.get(export_url())
    # Then it is refused (401 when an authentication scheme can be offered, else 403) and
    # the profile is untouched, with no audit entry of it
    assert response.status_code in ((403,) if login else (401, 403))
    assert "errors" in response.json()
    assert Profile.objects.filter(key=held.key).exists()
    assert not AuditEntry.objects.filter(action__in=["export", "erase"]).exists()


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["get", "delete"])
def test_privacy__visitor_too_long__400_names_visitor(admin_client, method):
    # Given a visitor id longer than any the API accepts
    long_id = "v" * 201
    # When exported or erased
    if method == "get":
        response = admin_client.get(export_url(long_id))
    else:
        response = admin_client.delete(erase_url(long_id))
    # Then 400 naming the visitor, and no audit entry
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "visitor"
    assert not AuditEntry.objects.exists()


@pytest.mark.django_db
def test_audit__entries__append_only(held):
    # Given audit entries, When edited or deleted, Then refused
    entry = AuditEntry.objects.first()
    entry.actor = "someone"
    with pytest.raises(ValueError, match="append-only"):
        entry.save()
    with pytest.raises(ValueError, match="append-only"):
        entry.delete()
    with pytest.raises(ValueError, match="append-only"):
        AuditEntry.objects.all().delete()
    with pytest.raises(ValueError, match="append-only"):
        AuditEntry.objects.update(actor="x")


@pytest.mark.django_db
def test_admin__export_action__downloads_json_and_audits(admin_client, held):
    # Given a profile, When a staff user runs "Export as JSON" on it
    url = reverse("admin:profiles_profile_changelist")
    response = admin_client.post(url, {"action": "export_json", "_selected_action": [held.pk]})
    # Then a JSON attachment of the export comes back and the export is audited
    assert response.status_code == 200
    assert "attachment" in response["Content-Disposition"]
    assert json.loads(response.content)["profile"]["key"] == held.key
    assert AuditEntry.objects.filter(action=AuditAction.EXPORT, subject=held.key).exists()


@pytest.mark.django_db
def test_admin__erase_action__confirms_then_erases(admin_client, held, redis_client):
    # Given a profile, When "Erase" is chosen, Then a confirmation page comes first
    url = reverse("admin:profiles_profile_changelist")
    form = {"action": "erase", "_selected_action": [held.pk]}
    response = admin_client.post(url, form)
    assert response.status_code == 200
    assert b"cannot be undone" in response.content
    assert Profile.objects.filter(pk=held.pk).exists()
    # When confirmed, Then the visitor is erased from the database and Redis
    response = admin_client.post(url, {**form, "confirm": "yes"}, follow=True)
    assert response.status_code == 200
    assert b"Erased 1 visitor" in response.content
    assert not Profile.objects.filter(pk=held.pk).exists()
    assert redis_client.get(profile_cache_key(held.key)) is None
    assert AuditEntry.objects.filter(action=AuditAction.ERASE, actor="admin").exists()


@pytest.mark.django_db
def test_admin__audit_log__read_only_list_loads(admin_client, held):
    url = reverse("admin:profiles_auditentry_changelist")
    response = admin_client.get(url, {"action__exact": "consent_change"})
    assert response.status_code == 200
    assert admin_client.get(reverse("admin:profiles_auditentry_add")).status_code == 403


@pytest.mark.django_db
def test_erase__merged_away_visitor_id__erases_surviving_profile_and_alias_caches(
    admin_client, held, redis_client
):
    # Given an older visitor id merged into the held profile, with its own cached document
    from identity.models import VisitorAlias

    alias_key = pseudonymize("old-cookie-5h1")
    VisitorAlias.objects.create(alias_key=alias_key, profile=held)
    redis_client.set(profile_cache_key(alias_key), "{}")
    # When the export and then the erasure are asked with the old id
    exported = admin_client.get(export_url("old-cookie-5h1")).json()
    response = admin_client.delete(erase_url("old-cookie-5h1"))
    # Then the export was the surviving profile's, and both keys are gone from every store
    assert exported["profile"]["key"] == held.key
    assert exported["profile"]["aliases"] == [alias_key]
    assert response.json()["counts"]["aliases"] == 1
    assert not Profile.objects.exists()
    assert not VisitorAlias.objects.exists()
    assert redis_client.get(profile_cache_key(alias_key)) is None
    assert redis_client.get(profile_cache_key(held.key)) is None
