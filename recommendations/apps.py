"""App config of recommendations (catalog, training runs, precomputed top-N)."""

from django.apps import AppConfig


class RecommendationsConfig(AppConfig):
    name = "recommendations"
    verbose_name = "Recommendations"

    def ready(self) -> None:
        from . import signals

        signals.connect()
