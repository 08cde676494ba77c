"""App config for the delivery core: wires snapshot invalidation to configuration changes and the
profile cache to the writers of profile documents (through core.signals, so no app imports this
layer)."""

from django.apps import AppConfig


class PersonalizationConfig(AppConfig):
    name = "personalization"
    verbose_name = "Mosaic delivery"

    def ready(self) -> None:
        from core.signals import redis_keys_written

        from . import signals

        signals.connect()
        redis_keys_written.connect(
            _profile_cache_forget, dispatch_uid="personalization.profile_cache.forget"
        )


def _profile_cache_forget(*, keys: list[str], **_kwargs) -> None:
    from . import profile_cache

    profile_cache.forget(keys)
