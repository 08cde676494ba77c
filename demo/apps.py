"""App config for the demo storefront (its views, static files and the seed_demo command)."""

from django.apps import AppConfig


class DemoConfig(AppConfig):
    name = "demo"
    verbose_name = "Mosaic demo"
