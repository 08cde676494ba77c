"""The roles: Django groups whose model permissions say what each kind of user may do, in the
admin and in the management API (a staff user's groups; a secret key's role).

One declared table, applied by a data migration (access/migrations/0003_roles.py) and again
after every migrate (AccessConfig.ready), so that a model added later gets its permissions in the
roles that cover its app. Applying only adds what the table grants and a group lacks; it never
takes a permission away (an administrator may widen a group by hand).
"""

from __future__ import annotations

from dataclasses import dataclass

ALL = "*"


@dataclass(frozen=True, slots=True)
class Grant:
    app_label: str
    model: str = ALL  # a model name (lower case) or ALL
    actions: frozenset[str] | str = ALL  # view/add/change/delete/custom codename prefixes, or ALL
    exclude: frozenset[str] = frozenset()  # models left out when model is ALL


def _a(*actions: str) -> frozenset[str]:
    return frozenset(actions)


VIEW = _a("view")
# Profiles' private models. They live in `profiles` now, but a fresh database's access 0003 may
# run while segments' migration state still holds them (before segments 0012 moves them), so
# the Analyst's "everything in segments" grant keeps excluding them by name.
PRIVATE = frozenset({"auditentry", "consentrecord", "profile", "event"})

ROLES: dict[str, tuple[Grant, ...]] = {
    "Editor": (
        Grant("content"),
        Grant("segments", "segment", VIEW),
        Grant("experiments", "experiment", VIEW),
    ),
    "Analyst": (
        Grant("segments", ALL, VIEW, exclude=PRIVATE),
        Grant("segments", "segment"),
        Grant("ingestion", "pendingaggregate", VIEW),
        Grant("experiments", ALL, VIEW),
        Grant("content", "placement", VIEW),
        Grant("content", "variant", VIEW),
        Grant("identity", "traitdefinition", VIEW),
    ),
    "Experimenter": (
        Grant("experiments"),
        Grant("content", "placement", VIEW),
        Grant("content", "variant", VIEW),
        Grant("segments", "segment", VIEW),
    ),
    "Privacy officer": (
        Grant("profiles", "profile", _a("view", "export", "erase")),
        Grant("profiles", "consentrecord", VIEW),
        Grant("profiles", "auditentry", VIEW),
        Grant("profiles", "event", VIEW),
        Grant("identity", ALL, VIEW),
        Grant("access", "apikey", VIEW),
    ),
    "Admin": (Grant(ALL),),
}


def _granted(grant: Grant, app_label: str, model: str, codename: str) -> bool:
    if grant.app_label not in (ALL, app_label):
        return False
    if grant.model not in (ALL, model) or model in grant.exclude:
        return False
    if grant.actions == ALL:
        return True
    action = codename.removesuffix(f"_{model}")
    return action in grant.actions


def roles_sync(apps) -> dict[str, int]:
    """Create the role groups and add the permissions the table grants them; returns the number
    of permissions each group holds. `apps`: a migration's app registry or django.apps.apps."""
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        # Permissions are otherwise created after all migrations (post_migrate): a data
        # migration must create them itself to grant them. A migration's app configs have no
        # models module, which create_permissions requires: set for the call, then restored.
        original = getattr(app_config, "models_module", None)
        app_config.models_module = original or True
        try:
            create_permissions(app_config, apps=apps, verbosity=0)
        finally:
            app_config.models_module = original
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    permissions = list(
        Permission.objects.select_related("content_type").values_list(
            "pk", "content_type__app_label", "content_type__model", "codename"
        )
    )
    counts = {}
    for name, grants in ROLES.items():
        group, _ = Group.objects.get_or_create(name=name)
        wanted = {
            pk
            for pk, app_label, model, codename in permissions
            if any(_granted(g, app_label, model, codename) for g in grants)
        }
        group.permissions.add(*wanted)
        counts[name] = group.permissions.count()
    return counts
