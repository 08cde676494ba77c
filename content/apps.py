"""App config of content (block types, placements, variants, revisions)."""

from django.apps import AppConfig


class ContentConfig(AppConfig):
    name = "content"
    verbose_name = "Content: placements and variants"
