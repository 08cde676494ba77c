"""The admin side of the one revision mechanism (core/revisions.py), for every revisioned model
(placements, variants, segments, experiments):

- `RevisionHistoryAdminMixin`: the history on an object's change page (who changed what, a diff,
  "Revert to this", templates/admin/_revision_history.html) and the revert view its buttons post to
  (`admin:<app>_<model>_revert`);
- `RevisionRecordAdmin`: the revisions' own list, read-only (no add, change or delete: they are
  the record), with a "revert to the selected revision" action.

A revert goes through the model's service (which validates it and records it as a revision); a
refusal is a message for the user, never a 500.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse

from .revisions import History, Revision

Revert = Callable[..., Any]  # revert(revision=..., author=...) -> the reverted object


def _author(request) -> str:
    return request.user.get_username() if request.user.is_authenticated else ""


def revert_with_message(
    modeladmin: admin.ModelAdmin, request, revision: Revision, revert: Revert, *, prefix: bool
) -> bool:
    """Revert through the model's service and tell the user how it went; True when done.
    `prefix`: start a refusal with which object and revision (when the service's own message
    does not say it)."""
    try:
        subject = revert(revision=revision, author=_author(request))
    except ValidationError as exc:
        reason = " ".join(exc.messages)
        if prefix:
            reason = (
                f"{revision.subject} cannot go back to the revision of "
                f"{revision.created_at:%Y-%m-%d %H:%M:%S}: {reason}"
            )
        modeladmin.message_user(request, reason, messages.ERROR)
        return False
    modeladmin.message_user(
        request,
        f'{subject._meta.verbose_name.capitalize()} "{subject}" is back to its revision of '
        f"{revision.created_at:%Y-%m-%d %H:%M:%S}; "
        "the revert is itself recorded in the history.",
        messages.SUCCESS,
    )
    return True


class RevisionHistoryAdminMixin:
    """For a ModelAdmin of a revisioned model: `revision_model` (its Revision subclass),
    `history_selector` (a function taking the object by the revision's subject field name and
    answering a History) and `revert_service` (revert(revision=, author=)); the change form's
    template includes "admin/_revision_history.html"."""

    revision_model: type[Revision]
    history_selector: Callable[..., History]
    revert_service: Revert
    revert_error_prefix = True  # see revert_with_message

    # Provided by admin.ModelAdmin.
    admin_site: Any
    model: Any

    def _names(self) -> tuple[str, str]:
        return self.model._meta.app_label, self.model._meta.model_name

    def revision_history(self, obj) -> History:
        return type(self).history_selector(**{self.revision_model.subject_field: obj})

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and obj.pk:
            app_label, model_name = self._names()
            revisions = self.revision_model._meta
            context["history"] = self.revision_history(obj)
            context["revisions_url"] = (
                reverse(f"admin:{revisions.app_label}_{revisions.model_name}_changelist")
                + f"?{self.revision_model.subject_field}__id__exact={obj.pk}"
            )
            context["revert_url_name"] = f"admin:{app_label}_{model_name}_revert"
        return super().render_change_form(  # type: ignore[misc]
            request, context, add, change, form_url, obj
        )

    def get_urls(self):
        app_label, model_name = self._names()
        revert = path(
            "<path:object_id>/revert/<int:revision_id>/",
            self.admin_site.admin_view(self.revert_view),
            name=f"{app_label}_{model_name}_revert",
        )
        return [revert, *super().get_urls()]  # type: ignore[misc]

    def revert_view(self, request, object_id: str, revision_id: int):
        """POST from a history row's button on the change page: revert, then back to the page."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        obj = self.get_object(request, unquote(object_id))  # type: ignore[attr-defined]
        if obj is None:
            raise Http404("No such object.")
        if not self.has_change_permission(request, obj):  # type: ignore[attr-defined]
            raise PermissionDenied
        revision = get_object_or_404(
            self.revision_model, pk=revision_id, **{self.revision_model.subject_field: obj}
        )
        revert_with_message(
            self,  # type: ignore[arg-type]
            request,
            revision,
            type(self).revert_service,
            prefix=self.revert_error_prefix,
        )
        app_label, model_name = self._names()
        change_url = reverse(f"admin:{app_label}_{model_name}_change", args=[obj.pk])
        return HttpResponseRedirect(change_url)


class RevisionRecordAdmin(admin.ModelAdmin):
    """The revisions of one model: read-only (no add, change or delete; kept while their object
    exists), with the "revert" action for one selected revision, allowed to whoever may change
    the object (`subject_change_permission`, e.g. "content.change_variant")."""

    revert_service: Revert
    subject_change_permission = ""
    revert_error_prefix = True
    actions = ["revert"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # the history is the record

    def has_revert_permission(self, request) -> bool:
        return request.user.has_perm(self.subject_change_permission)

    @admin.display(description="when (UTC)", ordering="created_at")
    def when(self, obj: Revision) -> str:
        # To the second, as the revert comments and the change page's history name revisions.
        return f"{obj.created_at:%Y-%m-%d %H:%M:%S}"

    @admin.action(description="Revert to the selected revision", permissions=["revert"])
    def revert(self, request, queryset) -> None:
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one revision to revert to.", messages.ERROR)
            return
        revert_with_message(
            self,
            request,
            queryset.get(),
            type(self).revert_service,
            prefix=self.revert_error_prefix,
        )
