"""App config of profiles (visitors' profiles, events, consent, the audit log, privacy)."""

from django.apps import AppConfig


class ProfilesConfig(AppConfig):
    name = "profiles"
    verbose_name = "Profiles, events and consent"
