"""App config of segments (segments, memberships, runs, kinds, triggers, KPIs, RFM)."""

from django.apps import AppConfig


class SegmentsConfig(AppConfig):
    name = "segments"
    verbose_name = "Segments"

    def ready(self) -> None:
        from profiles import hooks

        # The segment kinds this app provides register themselves (segments.kinds).
        from .kinds import condition, default, rfm, static  # noqa: F401
        from .selectors import profile_segment_keys
        from .services import segment_memberships_refresh

        # A profile's refresh re-evaluates its condition segments, and its document lists its
        # segment keys: profiles calls both through its hooks (it does not import segments).
        hooks.refresher_register(segment_memberships_refresh)
        hooks.segment_keys_register(lambda ids: profile_segment_keys(profile_ids=ids))
