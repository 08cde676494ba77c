"""App config for the delivery core: wires snapshot invalidation to configuration changes."""

from django.apps import AppConfig


class PersonalizationConfig(AppConfig):
    name = "personalization"
    verbose_name = "Mosaic delivery"

    def ready(self) -> None:
        # Binds @shared_task to Mosaic's app (broker from settings) in every Django process.
        import config.celery  # noqa: F401

        from . import signals

        signals.connect()
