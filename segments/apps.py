"""App config of segments (profiles, events, consent, segments, audit log)."""

from django.apps import AppConfig


class SegmentsConfig(AppConfig):
    name = "segments"
    verbose_name = "Profiles, events and segments"

    def ready(self) -> None:
        from core import metrics

        # The segment kinds this app provides register themselves (segments.kinds).
        from .kinds import condition, default, rfm, static  # noqa: F401
        from .metrics import ingestion_gauges

        metrics.register_gauges(ingestion_gauges)
