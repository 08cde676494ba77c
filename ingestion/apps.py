"""App config of ingestion (the event queue, stage 1 storage, stage 2 aggregation, retention)."""

from django.apps import AppConfig


class IngestionConfig(AppConfig):
    name = "ingestion"
    verbose_name = "Event ingestion"

    def ready(self) -> None:
        from core import metrics

        from .metrics import ingestion_gauges

        metrics.register_gauges(ingestion_gauges)
