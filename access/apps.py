"""App config of access; ready() registers the OpenAPI auth scheme and the CORS hook."""

from django.apps import AppConfig


class AccessConfig(AppConfig):
    name = "access"
    verbose_name = "API keys"

    def ready(self) -> None:
        from . import schema, signals  # noqa: F401  (OpenAPI scheme; the CORS origin check)
