"""Trustworthy records: revisions, consent records, audit entries, events and memberships are
read-only in the admin; changes to content, segments, experiments and keys are audited (who,
what, when; no personal data); a variant's history shows a diff and reverts with one button."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from access import services as key_services
from content.models import VariantRevision
from content.selectors import variant_history
from content.services import variant_save
from core.pseudonym import pseudonymize
from identity.models import TraitDefinition
from profiles import services as profile_services
from profiles.models import AuditAction, AuditEntry, ConsentRecord, Event
from profiles.services import consent_record
from segments import services as segment_services
from segments.models import SegmentMembership
from tests.factories import event, make_placement, make_segment, make_variant, store


@pytest.fixture
def records(db):
    """One of each record: a variant revision, a consent record, an event, a membership, an
    audit entry."""
    placement = make_placement("hero")
    variant = make_variant(placement, "v")
    variant_save(variant=variant, author="ed")
    profile_services.profile_set_traits(visitor="ann", traits={"tier": "gold"})
    segment = make_segment("gold", {"profile.traits.tier": "gold"})
    segment_services.segment_recompute(segment_id=segment.pk)
    store(events=[event("ann")])
    consent_record(
        profile_key=pseudonymize("ann"),
        purposes={"analytics": True},
        source="banner",
        policy_version="1",
        gpc=False,
        actor="api",
    )
    return {
        "variantrevision": VariantRevision.objects.first(),
        "consentrecord": ConsentRecord.objects.first(),
        "event": Event.objects.first(),
        "segmentmembership": SegmentMembership.objects.first(),
        "auditentry": AuditEntry.objects.first(),
    }


@pytest.mark.parametrize(
    ("app", "model"),
    [
        ("content", "variantrevision"),
        ("content", "placementrevision"),
        ("profiles", "consentrecord"),
        ("profiles", "auditentry"),
        ("profiles", "event"),
        ("segments", "segmentmembership"),
    ],
)
def test_record_admin__superuser__no_add_change_or_delete(admin_client, records, app, model):
    # Given a superuser (every permission), When the record's admin pages are asked for
    add = admin_client.get(reverse(f"admin:{app}_{model}_add"))
    changelist = admin_client.get(reverse(f"admin:{app}_{model}_changelist"))
    # Then there is no add page, no delete action, and the change page is a read-only view
    assert add.status_code == 403
    assert changelist.status_code == 200
    actions = (
        changelist.context["action_form"].fields["action"].choices
        if changelist.context.get("action_form")
        else []
    )
    assert "delete_selected" not in dict(actions)
    obj = records.get(model)
    if obj is not None:
        change = admin_client.get(reverse(f"admin:{app}_{model}_change", args=[obj.pk]))
        assert change.status_code == 200
        assert change.context["has_change_permission"] is False
        delete = admin_client.post(
            reverse(f"admin:{app}_{model}_delete", args=[obj.pk]), {"post": "yes"}
        )
        assert delete.status_code == 403
        assert type(obj).objects.filter(pk=obj.pk).exists()


def test_segment_admin_change__audited_who_what_no_values(admin_client, db):
    # Given a segment on a declared trait, When an analyst changes its condition in the admin
    TraitDefinition.objects.create(name="tier", type="string")
    segment = make_segment("gold", {"profile.traits.tier": "gold"})
    response = admin_client.post(
        reverse("admin:segments_segment_change", args=[segment.pk]),
        {
            "key": "gold",
            "name": "Gold members",
            "kind": "condition",
            "condition": json.dumps({"profile.traits.tier": "platinum"}),
            "description": "",
            "is_active": "on",
            # The segment page's trigger inline (webhooks): none.
            "triggers-TOTAL_FORMS": "0",
            "triggers-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.context["errors"]
    # Then an audit entry says who changed which fields of which segment, without the values
    entry = AuditEntry.objects.get(action=AuditAction.SEGMENT_CHANGE)
    assert entry.actor == "admin"
    assert entry.details["model"] == "segment"
    assert entry.details["change"] == "updated"
    assert "platinum" not in json.dumps(entry.details)


def test_experiment_admin_add__audited(admin_client, db):
    placement = make_placement("hero")
    treatment = make_variant(placement, "hero-b")
    response = admin_client.post(
        reverse("admin:experiments_experiment_add"),
        {
            "key": "exp",
            "name": "Exp",
            "placement": placement.pk,
            "status": "draft",
            "coverage": "1.0",
            "hypothesis": "",
            # experiments' (#14) required form fields, at their model defaults
            "layer_start": "0",
            "layer_end": "1",
            "engine": "frequentist",
            "cuped_days": "14",
            "bandit_min_weight": "0.05",
            # two arms serving distinct variants, one the control (experiments #14's admin rules)
            "arms-TOTAL_FORMS": "2",
            "arms-INITIAL_FORMS": "0",
            "arms-MIN_NUM_FORMS": "0",
            "arms-MAX_NUM_FORMS": "1000",
            "arms-0-key": "control",
            "arms-0-name": "Control",
            "arms-0-variant": placement.default_variant_id,
            "arms-0-weight": "1",
            "arms-0-is_control": "on",
            "arms-0-position": "0",
            "arms-1-key": "t",
            "arms-1-name": "T",
            "arms-1-variant": treatment.pk,
            "arms-1-weight": "1",
            "arms-1-position": "1",
            "experiment_metrics-TOTAL_FORMS": "0",
            "experiment_metrics-INITIAL_FORMS": "0",
            "experiment_metrics-MIN_NUM_FORMS": "0",
            "experiment_metrics-MAX_NUM_FORMS": "1000",
        },
    )
    assert response.status_code == 302, response.context["errors"]
    entry = AuditEntry.objects.get(action=AuditAction.EXPERIMENT_CHANGE)
    assert (entry.actor, entry.details["change"], entry.details["model"]) == (
        "admin",
        "created",
        "experiment",
    )


def test_api_key_create__audited_without_the_secret(db):
    _, raw = key_services.api_key_create(name="server", kind="secret", actor="ops")
    entry = AuditEntry.objects.get(action=AuditAction.KEY_CHANGE)
    assert entry.actor == "ops"
    assert raw not in json.dumps(entry.details)


def test_variant_history__template_changed__line_diff(db):
    # Given a variant saved with a template, then with one line of it changed
    variant = make_variant(
        make_placement("hero"), "v", template="<h2>Hi</h2>\n<p>one</p>\n<p>end</p>"
    )
    variant_save(variant=variant, author="ed")
    variant.template = "<h2>Hi</h2>\n<p>two</p>\n<p>end</p>"
    variant.condition = {"request.device": "mobile"}
    variant_save(variant=variant, author="bo")
    # When its history is read
    history = variant_history(variant=variant)
    newest = history.entries[0]
    # Then the newest revision shows a line diff of the template and the condition's change
    changes = {c.label: c for c in newest.changes}
    assert [(line.kind, line.text) for line in changes["template"].diff if line.kind != "ctx"] == [
        ("del", "<p>one</p>"),
        ("add", "<p>two</p>"),
    ]
    assert changes["condition"].before == ""
    assert newest.is_current
    assert not history.entries[1].is_current


def test_variant_change_page__revert_button__restores_in_one_post(admin_client, db):
    # Given a variant with two revisions, shown on its change page
    variant = make_variant(make_placement("hero"), "v", template="<p>one</p>")
    variant_save(variant=variant, author="ed")
    first = variant.revisions.get()
    variant.template = "<p>two</p>"
    variant_save(variant=variant, author="ed")
    page = admin_client.get(reverse("admin:content_variant_change", args=[variant.pk]))
    revert_url = reverse("admin:content_variant_revert", args=[variant.pk, first.pk])
    assert revert_url in page.content.decode()
    html = page.content.decode()
    assert '<span class="ph-was">&lt;p&gt;one&lt;/p&gt;</span>' in html
    # When the "Revert to this" button of the first revision is pressed
    response = admin_client.post(revert_url)
    # Then the variant is back, the revert is a revision, and the page says so
    assert response.status_code == 302
    variant.refresh_from_db()
    assert variant.template == "<p>one</p>"
    assert variant.revisions.count() == 3
    assert variant.revisions.first().comment.startswith("Reverted")


def test_variant_revert_view__get__405_and_no_change(admin_client, db):
    variant = make_variant(make_placement("hero"), "v")
    variant_save(variant=variant, author="ed")
    url = reverse("admin:content_variant_revert", args=[variant.pk, variant.revisions.get().pk])
    assert admin_client.get(url).status_code == 405
