"""App config for the delivery core: wires snapshot invalidation to configuration changes."""

from django.apps import AppConfig


class PersonalizationConfig(AppConfig):
    name = "personalization"
    verbose_name = "Mosaic delivery"

    def ready(self) -> None:
        from . import signals

        signals.connect()
