"""App config of segments (profiles, events, consent, segments, audit log)."""

from django.apps import AppConfig


class SegmentsConfig(AppConfig):
    name = "segments"
    verbose_name = "Profiles, events and segments"
