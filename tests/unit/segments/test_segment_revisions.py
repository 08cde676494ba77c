"""Segment revisions: every change (admin or API) recorded with who and when; the history on
the change page with a diff; revert with one button, re-validating the condition and running
the segment again; the revisions themselves read-only in the admin."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from segments import segment_services
from segments.models import Segment, SegmentRevision
from segments.revisions import segment_history, segment_revert
from tests.factories import admin_change_form_data

# Buyers; buyers with something in the cart (paths of the attribute catalogue).
GOLD = {"profile.aggregates.purchase_count": {"$gte": 1}}
GOLD_PRO = {
    "profile.aggregates.purchase_count": {"$gte": 1},
    "profile.aggregates.cart_value": {"$gt": 0},
}


@pytest.fixture
def vip(db):
    return segment_services.segment_create(
        data={"key": "vip", "name": "VIP", "condition": GOLD}, author="ann"
    )


def _revert_url(segment: Segment, revision: SegmentRevision) -> str:
    return reverse("admin:segments_segment_revert", args=[segment.pk, revision.pk])


def test_segment_services__create_then_update__one_revision_each_with_author(vip):
    # When the segment's condition is changed by another user
    segment_services.segment_update(segment=vip, data={"condition": GOLD_PRO}, author="bob")
    # Then two revisions, newest first, each naming its author and its state
    newest, oldest = vip.revisions.all()
    assert (oldest.author, oldest.comment, oldest.state["condition"]) == ("ann", "Created", GOLD)
    assert (newest.author, newest.state["condition"]) == ("bob", GOLD_PRO)


def test_segment_update__same_values__no_revision_and_no_run(
    vip, django_capture_on_commit_callbacks
):
    # When an update repeats the stored values
    with django_capture_on_commit_callbacks() as callbacks:
        segment_services.segment_update(
            segment=vip, data={"name": "VIP", "condition": GOLD}, author="bob"
        )
    # Then nothing is recorded and no run is queued
    assert vip.revisions.count() == 1
    assert callbacks == []


def test_segment_revert__older_condition__restored_recorded_and_run_queued(
    vip, django_capture_on_commit_callbacks
):
    # Given a changed condition
    segment_services.segment_update(segment=vip, data={"condition": GOLD_PRO}, author="bob")
    first = vip.revisions.last()
    # When reverted to the first revision
    with django_capture_on_commit_callbacks() as callbacks:
        segment_revert(revision=first, author="chief")
    # Then the condition is back, the revert is a revision, and the segment runs again
    vip.refresh_from_db()
    assert vip.condition == GOLD
    latest = vip.revisions.first()
    assert latest.author == "chief"
    assert latest.comment.startswith("Reverted to the revision of")
    assert len(callbacks) == 1


def test_segment_revert__condition_refused_today__refused_with_reason_nothing_changed(vip):
    # Given a revision whose condition reads a request attribute (segments see no request:
    # refused since the attribute catalogue)
    old = SegmentRevision.objects.create(
        segment=vip,
        state={**vip.revisions.get().state, "condition": {"request.device": "mobile"}},
    )
    # When it is reverted to
    with pytest.raises(ValidationError) as refused:
        segment_revert(revision=old, author="chief")
    # Then the refusal says which segment and why; nothing changed or was recorded
    message = " ".join(refused.value.messages)
    assert 'Segment "vip" cannot go back' in message
    assert "request.device" in message
    vip.refresh_from_db()
    assert vip.condition == GOLD
    assert vip.revisions.count() == 2


def test_segment_history__condition_changed__line_diff_and_current_marked(vip):
    # Given a changed condition
    segment_services.segment_update(segment=vip, data={"condition": GOLD_PRO}, author="bob")
    # When the history is read
    history = segment_history(segment=vip)
    # Then the newest entry is current and shows the added line of the condition
    newest, oldest = history.entries
    assert (newest.is_current, oldest.is_current) == (True, False)
    (change,) = newest.changes
    assert change.label == "condition"
    added = [line.text for line in change.diff if line.kind == "add"]
    assert added[0].strip() == '"profile.aggregates.cart_value": {'
    assert '"$gt": 0' in "".join(added)


def test_admin_segment_change__saved__revision_names_the_analyst(role_client, vip):
    # Given the change page as rendered for an Analyst
    analyst = role_client("Analyst")
    url = reverse("admin:segments_segment_change", args=[vip.pk])
    data = admin_change_form_data(analyst.get(url))
    # When the analyst renames the segment and saves
    data["name"] = "Very important"
    response = analyst.post(url, data)
    # Then it is saved and recorded under the analyst's name
    assert response.status_code == 302, response.content[:2000]
    vip.refresh_from_db()
    assert vip.name == "Very important"
    assert vip.revisions.first().author == "analyst"


def test_admin_segment_change_page__history_with_diff_and_revert_buttons(role_client, vip):
    # Given a changed condition
    segment_services.segment_update(segment=vip, data={"condition": GOLD_PRO}, author="bob")
    # When an Analyst opens the change page
    response = role_client("Analyst").get(reverse("admin:segments_segment_change", args=[vip.pk]))
    html = response.content.decode()
    # Then the history shows the diff and a revert button for the older state only
    assert 'id="object-history"' in html
    assert "profile.aggregates.cart_value" in html
    assert _revert_url(vip, vip.revisions.last()) in html
    assert _revert_url(vip, vip.revisions.first()) not in html


def test_admin_segment_revert_button__analyst__restored_with_message(
    role_client, vip, django_capture_on_commit_callbacks
):
    # Given a changed condition
    segment_services.segment_update(segment=vip, data={"condition": GOLD_PRO}, author="bob")
    # When an Analyst presses "Revert to this" on the first revision
    with django_capture_on_commit_callbacks() as callbacks:
        response = role_client("Analyst").post(_revert_url(vip, vip.revisions.last()), follow=True)
    # Then the condition is back, the page says so, and a run is queued
    vip.refresh_from_db()
    assert vip.condition == GOLD
    messages = [str(m) for m in response.context["messages"]]
    assert any("is back to its revision of" in m for m in messages), messages
    assert len(callbacks) == 1


def test_admin_segment_revert_button__editor__forbidden_nothing_changed(role_client, vip):
    # Given a changed condition
    segment_services.segment_update(segment=vip, data={"condition": GOLD_PRO}, author="bob")
    # When an Editor (who may only view segments) posts the revert
    response = role_client("Editor").post(_revert_url(vip, vip.revisions.last()))
    # Then it is refused and nothing changed
    assert response.status_code == 403
    vip.refresh_from_db()
    assert vip.condition == GOLD_PRO


def test_admin_segment_revert_button__condition_refused__error_message_not_500(admin_client, vip):
    # Given a revision whose condition is refused today
    old = SegmentRevision.objects.create(
        segment=vip, state={**vip.revisions.get().state, "condition": {"request.device": "x"}}
    )
    # When reverted from the change page
    response = admin_client.post(_revert_url(vip, old), follow=True)
    # Then the page says why, and nothing changed
    assert response.status_code == 200
    [message] = response.context["messages"]
    assert message.level_tag == "error"
    assert "request.device" in str(message)


def test_segment_revision_admin__superuser__read_only_with_revert_action(admin_client, vip):
    # When a superuser opens the revisions' admin pages
    add = admin_client.get(reverse("admin:segments_segmentrevision_add"))
    changelist = admin_client.get(reverse("admin:segments_segmentrevision_changelist"))
    change = admin_client.get(
        reverse("admin:segments_segmentrevision_change", args=[vip.revisions.get().pk])
    )
    # Then no add, no delete, a read-only change page, and the revert action
    assert add.status_code == 403
    actions = dict(changelist.context["action_form"].fields["action"].choices)
    assert "delete_selected" not in actions
    assert "revert" in actions
    assert change.status_code == 200
    assert change.context["has_change_permission"] is False
    delete = admin_client.post(
        reverse("admin:segments_segmentrevision_delete", args=[vip.revisions.get().pk]),
        {"post": "yes"},
    )
    assert delete.status_code == 403
    assert vip.revisions.count() == 1
