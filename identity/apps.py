"""App config of identity (identify and merges, visitor aliases, trait schema)."""

from django.apps import AppConfig


class IdentityConfig(AppConfig):
    name = "identity"
    verbose_name = "Identity and traits"
