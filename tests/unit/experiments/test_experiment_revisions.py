"""Experiment revisions: every change (admin, API, start/pause/stop) recorded with who and when,
arms and metric links included; the history on the change page; revert with one button, only
where the lifecycle rules allow the change (a running experiment's weights: sticky, or a new
seed); the revisions themselves read-only in the admin."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from content.models import Variant
from experiments.lifecycle import (
    ArmSpec,
    experiment_create,
    experiment_revert,
    experiment_set_status,
    experiment_update,
)
from experiments.models import Experiment, ExperimentRevision, ExperimentStatus
from experiments.revisions import experiment_history
from tests.factories import admin_change_form_data
from tests.unit.experiments.conftest import make_metrics


def _arms(weights: tuple[float, float]) -> list[ArmSpec]:
    a, b = Variant.objects.get(key="hero-a"), Variant.objects.get(key="hero-b")
    return [
        ArmSpec("control", a, weights[0], True),
        ArmSpec("bold", b, weights[1], False),
    ]


def _weights(experiment: Experiment) -> dict[str, float]:
    return dict(experiment.arms.values_list("key", "weight"))


@pytest.fixture
def metrics(db):
    return make_metrics()


def _create(hero, metrics, *, sticky: bool = False) -> Experiment:
    return experiment_create(
        fields={"key": "hero-test", "name": "Hero test", "placement": hero, "sticky": sticky},
        arms=_arms((1, 1)),
        metrics=[(metrics["purchase"], "primary")],
        author="ann",
    )


def _revert_url(experiment: Experiment, revision: ExperimentRevision) -> str:
    return reverse("admin:experiments_experiment_revert", args=[experiment.pk, revision.pk])


def test_experiment_revisions__create_update_start__each_recorded_with_author(hero, metrics):
    # Given an experiment created by ann
    experiment = _create(hero, metrics)
    # When bob changes its weights and carl starts it
    experiment_update(experiment=experiment, fields={}, arms=_arms((1, 3)), author="bob")
    experiment_set_status(experiment=experiment, status=ExperimentStatus.RUNNING, author="carl")
    # Then three revisions, newest first, with who, and the arms and metrics in the state
    started, weighted, created = experiment.revisions.all()
    assert [r.author for r in (started, weighted, created)] == ["carl", "bob", "ann"]
    assert [a["weight"] for a in created.state["arms"]] == [1.0, 1.0]
    assert [a["weight"] for a in weighted.state["arms"]] == [1.0, 3.0]
    assert created.state["metrics"][0]["metric_key"] == "purchase"
    assert (weighted.state["status"], started.state["status"]) == ("draft", "running")


def test_experiment_update__same_setup__nothing_written(hero, metrics):
    # Given an experiment
    experiment = _create(hero, metrics)
    # When an update repeats its setup
    experiment_update(experiment=experiment, fields={"name": "Hero test"}, arms=_arms((1, 1)))
    # Then no revision is added
    assert experiment.revisions.count() == 1


def test_experiment_revert__draft_weights__restored_and_recorded(hero, metrics):
    # Given a draft whose weights changed
    experiment = _create(hero, metrics)
    experiment_update(experiment=experiment, fields={}, arms=_arms((1, 3)), author="bob")
    # When reverted to its first revision
    experiment_revert(revision=experiment.revisions.last(), author="chief")
    # Then the weights are back, and the revert is itself a revision
    assert _weights(experiment) == {"control": 1.0, "bold": 1.0}
    latest = experiment.revisions.first()
    assert (latest.author, latest.comment[:11]) == ("chief", "Reverted to")


def test_experiment_revert__running_not_sticky_weights__refused_with_the_rule(hero, metrics):
    # Given a running, non-sticky experiment whose weights changed before the start
    experiment = _create(hero, metrics)
    experiment_update(experiment=experiment, fields={}, arms=_arms((1, 3)), author="bob")
    experiment_set_status(experiment=experiment, status=ExperimentStatus.RUNNING)
    # When reverted to the first weights (same seed)
    with pytest.raises(ValidationError) as refused:
        experiment_revert(revision=experiment.revisions.last(), author="chief")
    # Then refused with the sticky/new-seed rule named; nothing changed
    message = " ".join(refused.value.messages)
    assert 'Experiment "hero-test" cannot go back' in message
    assert "seed" in message
    assert "sticky" in message
    assert _weights(experiment) == {"control": 1.0, "bold": 3.0}


def test_experiment_revert__running_sticky_weights__restored(hero, metrics):
    # Given a running sticky experiment (visitors keep their arm) whose weights changed
    experiment = _create(hero, metrics, sticky=True)
    experiment_update(experiment=experiment, fields={}, arms=_arms((1, 3)), author="bob")
    experiment_set_status(experiment=experiment, status=ExperimentStatus.RUNNING)
    # When reverted to the first weights
    experiment_revert(revision=experiment.revisions.last(), author="chief")
    # Then the weights are back and it is still running
    experiment.refresh_from_db()
    assert _weights(experiment) == {"control": 1.0, "bold": 1.0}
    assert experiment.status == ExperimentStatus.RUNNING


def test_experiment_revert__only_status_differs__refused_status_untouched(hero, metrics):
    # Given a started experiment
    experiment = _create(hero, metrics)
    experiment_set_status(experiment=experiment, status=ExperimentStatus.RUNNING)
    # When reverted to the draft revision (same setup)
    with pytest.raises(ValidationError) as refused:
        experiment_revert(revision=experiment.revisions.last(), author="chief")
    # Then refused (a revert never changes the status), and it is still running
    assert "start, pause or stop" in " ".join(refused.value.messages)
    experiment.refresh_from_db()
    assert experiment.status == ExperimentStatus.RUNNING


def test_experiment_revert__arm_variant_deleted__refused_naming_it(hero, metrics):
    # Given a revision whose arm served a variant that is deleted since
    experiment = _create(hero, metrics)
    c = Variant.objects.get(key="hero-c")
    arms = [*_arms((1, 1))[:1], ArmSpec("bold", c, 1, False)]
    experiment_update(experiment=experiment, fields={}, arms=arms, author="bob")
    first = experiment.revisions.last()
    experiment_update(experiment=experiment, fields={}, arms=arms[:1] + _arms((1, 1))[1:])
    Variant.objects.filter(pk=c.pk).delete()
    middle = experiment.revisions.all()[1]
    # When reverted to the revision that used it
    with pytest.raises(ValidationError) as refused:
        experiment_revert(revision=middle, author="chief")
    # Then refused naming the variant; the first revision (without it) still reverts fine
    assert "hero-c" in " ".join(refused.value.messages)
    assert first.state["arms"][1]["variant_key"] == "hero-b"


def test_experiment_history__weights_changed__arm_line_diff_and_current(hero, metrics):
    # Given changed weights
    experiment = _create(hero, metrics)
    experiment_update(experiment=experiment, fields={}, arms=_arms((1, 3)), author="bob")
    # When the history is read
    newest, oldest = experiment_history(experiment=experiment).entries
    # Then the newest is current and its change shows the arm's line before and after
    assert (newest.is_current, oldest.is_current) == (True, False)
    (change,) = newest.changes
    assert change.label == "arms"
    assert "bold: hero-b · weight 1" in change.before
    assert "bold: hero-b · weight 3" in change.after


def test_admin_experiment_change__arm_weight_saved__revision_with_arms_names_the_user(
    role_client, hero, metrics
):
    # Given the change page as rendered for an Experimenter
    experiment = _create(hero, metrics)
    client = role_client("Experimenter")
    url = reverse("admin:experiments_experiment_change", args=[experiment.pk])
    data = admin_change_form_data(client.get(url))
    # When the experimenter sets the second arm's weight to 4 and saves
    data["arms-1-weight"] = "4"
    response = client.post(url, data)
    # Then it is saved and the revision (with the arms) names the experimenter
    assert response.status_code == 302, response.content[:3000]
    latest = experiment.revisions.first()
    assert latest.author == "experimenter"
    assert [a["weight"] for a in latest.state["arms"]] == [1.0, 4.0]


def test_admin_experiment_revert_button__experimenter__restored_with_message(
    role_client, hero, metrics
):
    # Given changed weights
    experiment = _create(hero, metrics)
    experiment_update(experiment=experiment, fields={}, arms=_arms((1, 3)), author="bob")
    client = role_client("Experimenter")
    page = client.get(reverse("admin:experiments_experiment_change", args=[experiment.pk]))
    assert _revert_url(experiment, experiment.revisions.last()) in page.content.decode()
    # When the experimenter presses "Revert to this" on the first revision
    response = client.post(_revert_url(experiment, experiment.revisions.last()), follow=True)
    # Then the weights are back and the page says so
    assert _weights(experiment) == {"control": 1.0, "bold": 1.0}
    messages = [str(m) for m in response.context["messages"]]
    assert any("is back to its revision of" in m for m in messages), messages


def test_admin_experiment_revert_button__running_not_sticky__error_message_not_500(
    admin_client, hero, metrics
):
    # Given a running non-sticky experiment whose weights changed before the start
    experiment = _create(hero, metrics)
    experiment_update(experiment=experiment, fields={}, arms=_arms((1, 3)), author="bob")
    experiment_set_status(experiment=experiment, status=ExperimentStatus.RUNNING)
    # When the first revision is reverted to from the change page
    response = admin_client.post(_revert_url(experiment, experiment.revisions.last()), follow=True)
    # Then the page says why, and nothing changed
    assert response.status_code == 200
    [message] = response.context["messages"]
    assert message.level_tag == "error"
    assert "seed" in str(message)
    assert _weights(experiment) == {"control": 1.0, "bold": 3.0}


@pytest.mark.parametrize("role", ["Analyst", "Editor"])
def test_admin_experiment_revert_button__not_experimenter__forbidden(
    role_client, hero, metrics, role
):
    # Given changed weights
    experiment = _create(hero, metrics)
    experiment_update(experiment=experiment, fields={}, arms=_arms((1, 3)), author="bob")
    # When an Analyst or an Editor (who may only view experiments) posts the revert
    response = role_client(role).post(_revert_url(experiment, experiment.revisions.last()))
    # Then it is refused and nothing changed
    assert response.status_code == 403
    assert _weights(experiment) == {"control": 1.0, "bold": 3.0}


def test_experiment_revision_admin__superuser__read_only_with_revert_action(
    admin_client, hero, metrics
):
    experiment = _create(hero, metrics)
    revision = experiment.revisions.get()
    # When a superuser opens the revisions' admin pages
    add = admin_client.get(reverse("admin:experiments_experimentrevision_add"))
    changelist = admin_client.get(reverse("admin:experiments_experimentrevision_changelist"))
    change = admin_client.get(
        reverse("admin:experiments_experimentrevision_change", args=[revision.pk])
    )
    delete = admin_client.post(
        reverse("admin:experiments_experimentrevision_delete", args=[revision.pk]),
        {"post": "yes"},
    )
    # Then no add, no delete, a read-only change page, and the revert action
    assert add.status_code == 403
    actions = dict(changelist.context["action_form"].fields["action"].choices)
    assert "delete_selected" not in actions
    assert "revert" in actions
    assert change.status_code == 200
    assert change.context["has_change_permission"] is False
    assert delete.status_code == 403
    assert experiment.revisions.count() == 1
