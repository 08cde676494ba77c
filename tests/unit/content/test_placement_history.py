"""Placement history: every change to a placement kept as a revision (who, what, when), revertible
from the admin; a revert to a default variant that is gone or not live is refused, never a 500."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from content.models import Placement, PlacementRevision, Variant, VariantRevision, VariantStatus
from content.selectors import placement_history
from content.services import placement_revert, placement_save, variant_revert, variant_save
from personalization.snapshot import holder
from tests.factories import make_placement, make_variant


@pytest.fixture
def hero(db) -> Placement:
    """A placement created by a script (no revision yet) with two live variants."""
    placement = make_placement("hero")
    make_variant(placement, "spring", condition={"request.locale": "xx"})
    return placement


def _variant(placement: Placement, key: str) -> Variant:
    return placement.variants.get(key=key)


def _set_default(placement: Placement, key: str, *, author: str = "ed") -> Placement:
    placement.default_variant = _variant(placement, key)
    return placement_save(placement=placement, author=author)


@pytest.fixture
def editor(db, django_user_model):
    """A staff user (not a superuser) allowed to edit placements and variants."""
    user = django_user_model.objects.create_user("editor", password="x", is_staff=True)
    codenames = [
        "view_placement",
        "change_placement",
        "view_variant",
        "change_variant",
        "view_placementrevision",
        "view_variantrevision",
    ]
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return user


@pytest.fixture
def editor_client(client, editor):
    client.force_login(editor)
    return client


# --- services -----------------------------------------------------------------------------


def test_placement_save__new_placement__one_revision_with_author(db):
    # Given a new placement
    placement = Placement(key="promo", name="Promo", description="Top bar")
    # When an editor saves it
    placement_save(placement=placement, author="ed", comment="Created")
    # Then its first state is recorded, with who and why
    revision = placement.revisions.get()
    assert (revision.author, revision.comment) == ("ed", "Created")
    assert revision.state == {
        "name": "Promo",
        "description": "Top bar",
        "default_variant": None,
        "default_variant_key": None,
    }


def test_placement_save__default_changed__revision_records_editor_and_new_default(hero):
    # Given a placement whose default is "default"
    # When an editor makes "spring" the default
    _set_default(hero, "spring", author="ed")
    # Then the latest revision says who made which variant the default
    latest = hero.revisions.first()
    assert latest.author == "ed"
    assert latest.state["default_variant"] == _variant(hero, "spring").pk
    assert latest.state["default_variant_key"] == "spring"
    assert latest.created_at is not None


def test_placement_save__no_revision_yet__stored_state_recorded_first(hero):
    # Given a placement created by a script, without any revision
    assert not hero.revisions.exists()
    # When an editor changes it for the first time
    _set_default(hero, "spring")
    # Then the state it had is recorded before the change, so the change can be reverted
    latest, before = hero.revisions.all()
    assert before.state["default_variant_key"] == "default"
    assert before.author == ""
    assert latest.state["default_variant_key"] == "spring"


def test_placement_save__nothing_changed__no_new_revision(hero):
    # Given a placement with a recorded change
    _set_default(hero, "spring")
    count = hero.revisions.count()
    # When it is saved again unchanged
    placement_save(placement=Placement.objects.get(pk=hero.pk), author="ed")
    # Then the history does not grow
    assert hero.revisions.count() == count


def test_placement_save__key_changed__refused(hero):
    # Given a stored placement
    hero.key = "hero-2"
    # When a caller tries to rename its key
    with pytest.raises(ValidationError) as refused:
        placement_save(placement=hero, author="ed")
    # Then it is refused: pages use the key, and revisions do not restore it
    assert "key" in refused.value.message_dict
    assert Placement.objects.filter(key="hero").exists()


def test_placement_revert__default_changed__restores_previous(hero):
    # Given an editor who renamed the placement and switched its default
    _set_default(hero, "spring")
    first = hero.revisions.last()
    hero.name = "Homepage hero"
    hero.description = "Above the fold"
    placement_save(placement=hero, author="ed")
    # When another editor reverts to the oldest revision
    reverted = placement_revert(revision=first, author="chief")
    # Then name, description and default are back, and the revert is itself a revision
    reverted.refresh_from_db()
    assert (reverted.name, reverted.description) == ("Hero", "")
    assert reverted.default_variant.key == "default"
    latest = hero.revisions.first()
    assert latest.author == "chief"
    assert latest.comment.startswith("Reverted to the revision of ")
    assert hero.revisions.count() == 4


def test_placement_revert__committed__snapshot_serves_restored_default(
    hero, django_capture_on_commit_callbacks
):
    # Given a snapshot built while "spring" is the default
    _set_default(hero, "spring")
    holder._checked_at = 0
    assert holder.get().placements["hero"].default.key == "spring"
    # When a revert to "default" commits
    with django_capture_on_commit_callbacks(execute=True):
        placement_revert(revision=hero.revisions.last(), author="chief")
    holder._checked_at = 0  # skip the check interval rather than sleep
    # Then the bumped version makes processes rebuild with the restored default
    assert holder.get().placements["hero"].default.key == "default"


def test_placement_revert__default_deleted__refused_with_its_key(hero):
    # Given a revision whose default variant ("spring") was deleted since
    _set_default(hero, "spring")
    with_spring = hero.revisions.first()
    _set_default(hero, "default")
    _variant(hero, "spring").delete()
    # When an editor reverts to it
    with pytest.raises(ValidationError) as refused:
        placement_revert(revision=with_spring, author="chief")
    # Then it is refused with a message naming the variant, and nothing changed
    assert '"spring" no longer exists' in refused.value.messages[0]
    hero.refresh_from_db()
    assert hero.default_variant.key == "default"
    assert hero.revisions.first().author == "ed"


def test_placement_revert__default_not_live__refused(hero):
    # Given a revision whose default variant is now a draft
    _set_default(hero, "spring")
    with_spring = hero.revisions.first()
    _set_default(hero, "default")
    Variant.objects.filter(key="spring").update(status=VariantStatus.DRAFT)
    # When an editor reverts to it
    with pytest.raises(ValidationError) as refused:
        placement_revert(revision=with_spring, author="chief")
    # Then it is refused: the variant must be made live first
    assert '"spring" is not live (draft)' in refused.value.messages[0]
    hero.refresh_from_db()
    assert hero.default_variant.key == "default"


def test_placement_revert__default_moved_to_other_placement__refused(hero):
    # Given a revision whose default variant now belongs to another placement
    _set_default(hero, "spring")
    with_spring = hero.revisions.first()
    _set_default(hero, "default")
    other = make_placement("promo")
    Variant.objects.filter(key="spring").update(placement=other)
    # When an editor reverts to it
    with pytest.raises(ValidationError) as refused:
        placement_revert(revision=with_spring, author="chief")
    # Then it is refused
    assert "another placement" in refused.value.messages[0]


def test_placement_revert__no_default_while_variants_exist__refused(db):
    # Given a placement created without a default, which later got variants and a default
    placement = Placement(key="promo", name="Promo")
    placement_save(placement=placement, author="ed", comment="Created")
    created = placement.revisions.get()
    variant = make_variant(placement, "bar")
    placement.default_variant = variant
    placement_save(placement=placement, author="ed")
    # When an editor reverts to the state without a default
    with pytest.raises(ValidationError) as refused:
        placement_revert(revision=created, author="chief")
    # Then it is refused, as the form refuses a placement with variants and no default
    assert "needs one" in refused.value.messages[0]


def test_placement_history__changes__each_revision_says_what_changed(hero):
    # Given a change of default then of name
    _set_default(hero, "spring")
    hero.name = "Homepage hero"
    placement_save(placement=hero, author="ed")
    # When the history is read
    history = placement_history(placement=hero)
    # Then each revision lists what it changed from the one before, and the stored one is current
    renamed, spring, baseline = history.entries
    assert [(c.label, c.before, c.after) for c in renamed.changes] == [
        ("name", "Hero", "Homepage hero")
    ]
    assert [(c.label, c.before, c.after) for c in spring.changes] == [
        ("default", "default", "spring")
    ]
    assert baseline.changes[0].before is None
    assert [e.is_current for e in history.entries] == [True, False, False]
    assert history.total == 3


def test_placement_history__more_than_limit__latest_shown_total_counted(hero):
    for index in range(4):
        hero.name = f"Hero {index}"
        placement_save(placement=hero, author="ed")
    history = placement_history(placement=hero, limit=2)
    assert [e.revision.state["name"] for e in history.entries] == ["Hero 3", "Hero 2"]
    assert history.entries[-1].changes[0].before == "Hero 1"
    assert history.total == 5


# --- admin, through HTTP as a staff editor ------------------------------------------------


def _change_url(placement: Placement) -> str:
    return reverse("admin:content_placement_change", args=[placement.pk])


def _revert_url(placement: Placement, revision: PlacementRevision) -> str:
    return reverse("admin:content_placement_revert", args=[placement.pk, revision.pk])


def _change_form_data(response) -> dict[str, object]:
    """The POST body the change page would send as rendered (main form and inline formsets)."""
    data: dict[str, object] = {}
    forms = [response.context["adminform"].form]
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        management = formset.management_form
        data.update({management.add_prefix(n): management[n].value() for n in management.fields})
        forms.extend(formset.forms)
    for form in forms:
        for name in form.fields:
            value = form[name].value()
            if value not in (None, False):
                data[form.add_prefix(name)] = value
    return data


def test_admin_placement_change__default_changed__revision_names_the_editor(editor_client, hero):
    # Given the change page as rendered for a staff editor
    page = editor_client.get(_change_url(hero))
    data = _change_form_data(page)
    # When the editor chooses another default and saves
    data["default_variant"] = _variant(hero, "spring").pk
    response = editor_client.post(_change_url(hero), data)
    # Then the change is saved and recorded under the editor's name
    assert response.status_code == 302
    hero.refresh_from_db()
    assert hero.default_variant.key == "spring"
    assert hero.revisions.first().author == "editor"


def test_admin_placement_change__key__read_only_once_created(editor_client, hero):
    response = editor_client.get(_change_url(hero))
    assert "key" not in response.context["adminform"].form.fields
    assert b"hero" in response.content


def test_admin_placement_add__created__first_revision(admin_client, db):
    data = {
        "key": "promo",
        "name": "Promo",
        "description": "",
        "default_variant": "",
        "variants-TOTAL_FORMS": "0",
        "variants-INITIAL_FORMS": "0",
    }
    response = admin_client.post(reverse("admin:content_placement_add"), data)
    assert response.status_code == 302
    revision = Placement.objects.get(key="promo").revisions.get()
    assert (revision.author, revision.comment) == ("admin", "Created")


def test_admin_placement_change_page__history_with_revert_buttons_after_save(editor_client, hero):
    # Given a placement with three revisions
    _set_default(hero, "spring")
    hero.name = "Homepage hero"
    placement_save(placement=hero, author="ed")
    # When the editor opens its change page
    response = editor_client.get(_change_url(hero))
    html = response.content.decode()
    # Then the history lists who changed what, with a revert button on every non-current state
    assert response.status_code == 200
    assert 'id="object-history"' in html
    assert "Homepage hero" in html
    oldest, middle = hero.revisions.last(), hero.revisions.all()[1]
    assert _revert_url(hero, oldest) in html
    assert _revert_url(hero, middle) in html
    assert _revert_url(hero, hero.revisions.first()) not in html
    assert "current" in html
    # And the Save button comes first, so Enter in a field saves rather than reverts
    assert html.index('name="_save"') < html.index("formaction=")


def test_admin_placement_revert_button__post__restored_with_message(editor_client, hero):
    # Given a default switched to "spring"
    _set_default(hero, "spring")
    oldest = hero.revisions.last()
    # When the editor presses "Revert to this" on the oldest revision (it posts the change form)
    page = editor_client.get(_change_url(hero))
    response = editor_client.post(_revert_url(hero, oldest), _change_form_data(page), follow=True)
    # Then the page comes back with the default restored, a message, and the revert in history
    assert response.redirect_chain[-1][0] == _change_url(hero)
    hero.refresh_from_db()
    assert hero.default_variant.key == "default"
    messages = [str(m) for m in response.context["messages"]]
    assert any("is back to its revision of" in m for m in messages)
    assert hero.revisions.first().author == "editor"


def test_admin_placement_revert_button__default_deleted__error_message_not_500(editor_client, hero):
    # Given a revision whose default variant was deleted since
    _set_default(hero, "spring")
    with_spring = hero.revisions.first()
    _set_default(hero, "default")
    _variant(hero, "spring").delete()
    # When the editor tries to revert to it
    response = editor_client.post(_revert_url(hero, with_spring), follow=True)
    # Then the change page says why, and nothing changed
    assert response.status_code == 200
    [message] = response.context["messages"]
    assert message.level_tag == "error"
    assert '"spring" no longer exists' in str(message)
    hero.refresh_from_db()
    assert hero.default_variant.key == "default"


def test_admin_placement_revert__get__not_allowed(editor_client, hero):
    _set_default(hero, "spring")
    response = editor_client.get(_revert_url(hero, hero.revisions.last()))
    assert response.status_code == 405
    hero.refresh_from_db()
    assert hero.default_variant.key == "spring"


def test_admin_placement_revert__revision_of_another_placement__404(editor_client, hero):
    other = make_placement("promo")
    other.name = "Promo bar"
    placement_save(placement=other, author="ed")
    response = editor_client.post(_revert_url(hero, other.revisions.last()))
    assert response.status_code == 404


def test_admin_placement_revert__view_only_staff__forbidden_no_button(
    client, django_user_model, hero
):
    # Given a staff user who may only view placements
    _set_default(hero, "spring")
    viewer = django_user_model.objects.create_user("viewer", password="x", is_staff=True)
    viewer.user_permissions.set(Permission.objects.filter(codename="view_placement"))
    client.force_login(viewer)
    # When they open the page and post a revert anyway
    html = client.get(_change_url(hero)).content.decode()
    response = client.post(_revert_url(hero, hero.revisions.last()))
    # Then they see the history without buttons and the revert is refused
    assert 'id="object-history"' in html
    assert "formaction=" not in html
    assert response.status_code == 403
    hero.refresh_from_db()
    assert hero.default_variant.key == "spring"


def test_admin_placement_revision_action__oldest_selected__placement_restored(editor_client, hero):
    # Given a default switched to "spring"
    _set_default(hero, "spring")
    oldest = hero.revisions.last()
    # When the editor uses the revert action of the revisions list
    response = editor_client.post(
        reverse("admin:content_placementrevision_changelist"),
        {"action": "revert", "_selected_action": [oldest.pk]},
    )
    # Then the placement is restored
    assert response.status_code == 302
    hero.refresh_from_db()
    assert hero.default_variant.key == "default"


def test_admin_placement_revision_action__default_not_live__error_message(editor_client, hero):
    _set_default(hero, "spring")
    with_spring = hero.revisions.first()
    _set_default(hero, "default")
    Variant.objects.filter(key="spring").update(status=VariantStatus.DRAFT)
    response = editor_client.post(
        reverse("admin:content_placementrevision_changelist"),
        {"action": "revert", "_selected_action": [with_spring.pk]},
        follow=True,
    )
    assert response.status_code == 200
    [message] = response.context["messages"]
    assert message.level_tag == "error"
    assert "is not live" in str(message)


def test_admin_placement_revision_action__view_only_staff__not_offered(
    client, django_user_model, hero
):
    _set_default(hero, "spring")
    viewer = django_user_model.objects.create_user("viewer", password="x", is_staff=True)
    viewer.user_permissions.set(Permission.objects.filter(codename="view_placementrevision"))
    client.force_login(viewer)
    response = client.post(
        reverse("admin:content_placementrevision_changelist"),
        {"action": "revert", "_selected_action": [hero.revisions.last().pk]},
    )
    hero.refresh_from_db()
    assert hero.default_variant.key == "spring"
    assert response.status_code in (200, 302)


def _queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def _rename(placement: Placement, times: int) -> None:
    for index in range(times):
        placement.name = f"Hero {placement.revisions.count()}-{index}"
        placement_save(placement=placement, author=f"ed{index}")


@pytest.mark.parametrize(
    "url",
    [
        lambda hero: reverse("admin:content_placementrevision_changelist"),
        lambda hero: _change_url(hero),
    ],
    ids=["revision-list", "change-page"],
)
def test_admin_placement_history__more_revisions__same_number_of_queries(editor_client, hero, url):
    # Given a placement with a few revisions, and the queries its pages take
    _rename(hero, 2)
    few = _queries(editor_client, url(hero))
    # When it has many more
    _rename(hero, 15)
    # Then its pages take no more queries (no query per row)
    assert _queries(editor_client, url(hero)) <= few + 1  # + the count past the history limit


# --- the default is live content; variant reverts -------------------------------------------


def test_admin_placement_change__draft_default__refused_at_the_field(editor_client, hero):
    # Given a draft variant of the placement
    make_variant(hero, "wip", status=VariantStatus.DRAFT)
    data = _change_form_data(editor_client.get(_change_url(hero)))
    # When the editor chooses it as the default
    data["default_variant"] = _variant(hero, "wip").pk
    response = editor_client.post(_change_url(hero), data)
    # Then the page comes back with the reason at the field and nothing is saved
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["default_variant"]
    assert "is a draft" in errors[0]
    hero.refresh_from_db()
    assert hero.default_variant.key == "default"


def test_admin_placement_change__default_made_draft__refused_at_its_status(editor_client, hero):
    # Given the change page, with the default variant among the inline variants
    page = editor_client.get(_change_url(hero))
    data = _change_form_data(page)
    [formset] = [inline.formset for inline in page.context["inline_admin_formsets"]]
    [index] = [i for i, form in enumerate(formset.forms) if form.instance.key == "default"]
    # When the editor makes the default a draft
    data[f"{formset.prefix}-{index}-status"] = VariantStatus.DRAFT
    response = editor_client.post(_change_url(hero), data)
    # Then it is refused at the variant's status, and the default stays live
    assert response.status_code == 200
    [errored] = [f for f in response.context["inline_admin_formsets"][0].formset.forms if f.errors]
    assert "choose another default" in errored.errors["status"][0]
    assert _variant(hero, "default").status == VariantStatus.LIVE


def _draft_revision_of(variant: Variant):
    """A revision of `variant` as a draft (from before it became the default: variant_save now
    refuses a draft default, so the revision is written as that earlier save wrote it)."""
    return VariantRevision.objects.create(
        variant=variant,
        state={**variant.revision_state(), "status": VariantStatus.DRAFT},
        author="ed",
    )


def test_variant_revert__to_a_draft_state_while_default__refused_nothing_written(hero):
    # Given the default variant, once a draft (a revision recorded then), live and default now
    default = _variant(hero, "default")
    draft_revision = _draft_revision_of(default)
    revisions = default.revisions.count()
    # When someone reverts it to the draft revision
    with pytest.raises(ValidationError) as refused:
        variant_revert(revision=draft_revision, author="ed")
    # Then it is refused, saying why, and nothing changed
    assert "choose another default" in " ".join(refused.value.messages)
    default.refresh_from_db()
    assert default.status == VariantStatus.LIVE
    assert default.revisions.count() == revisions


def _variant_revision_action(client, revision) -> object:
    return client.post(
        reverse("admin:content_variantrevision_changelist"),
        {"action": "revert", "_selected_action": [revision.pk]},
        follow=True,
    )


def test_admin_variant_revision_action__refused__error_message_not_500(editor_client, hero):
    # Given a revision of the default variant as a draft
    draft_revision = _draft_revision_of(_variant(hero, "default"))
    # When the editor reverts to it from the revisions list
    response = _variant_revision_action(editor_client, draft_revision)
    # Then they read why, as an error message, and the variant is unchanged
    assert response.status_code == 200
    [message] = response.context["messages"]
    assert message.level_tag == "error"
    assert "choose another default" in str(message)
    assert _variant(hero, "default").status == VariantStatus.LIVE


@pytest.fixture
def spring_at_50(hero) -> VariantRevision:
    """The "spring" variant's revision at priority 50; its priority is 5 now."""
    spring = _variant(hero, "spring")
    spring.priority = 50
    variant_save(variant=spring, author="ed")
    revision = spring.revisions.first()
    spring.priority = 5
    variant_save(variant=spring, author="ed")
    return revision


def test_admin_variant_revision_action__editor__variant_restored(editor_client, hero, spring_at_50):
    first = spring_at_50
    response = _variant_revision_action(editor_client, first)
    assert response.status_code == 200
    assert _variant(hero, "spring").priority == 50


def test_admin_variant_revision_action__view_only_staff__not_offered(
    client, django_user_model, hero, spring_at_50
):
    # Given a staff user who may read variant revisions but not change variants
    first = spring_at_50
    viewer = django_user_model.objects.create_user("viewer", password="x", is_staff=True)
    viewer.user_permissions.set(Permission.objects.filter(codename="view_variantrevision"))
    client.force_login(viewer)
    # When they post the revert action anyway
    response = _variant_revision_action(client, first)
    # Then the action is not offered and nothing changes
    assert response.status_code == 200
    action_form = response.context["action_form"]
    offered = [name for name, _ in action_form.fields["action"].choices] if action_form else []
    assert "revert" not in offered
    assert _variant(hero, "spring").priority == 5
