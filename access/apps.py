"""App config of access; ready() registers the OpenAPI auth scheme and the CORS hook."""

from django.apps import AppConfig


class AccessConfig(AppConfig):
    name = "access"
    verbose_name = "API keys"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from . import schema, signals  # noqa: F401  (OpenAPI scheme; the CORS origin check)

        post_migrate.connect(_roles_sync, sender=self, dispatch_uid="access.roles_sync")


def _roles_sync(sender, **kwargs) -> None:
    """After every migrate: models added since the roles migration get their permissions in the
    roles that cover their app (access/roles.py)."""
    from django.apps import apps

    from .roles import roles_sync

    roles_sync(apps)
