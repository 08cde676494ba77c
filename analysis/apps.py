from django.apps import AppConfig


class AnalysisConfig(AppConfig):
    name = "analysis"
    verbose_name = "Analysis and models"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The model segment kinds register themselves on the segments kinds registry.
        from django.db.models.signals import post_delete

        from segments.models import Segment

        from . import kinds  # noqa: F401

        post_delete.connect(_segment_deleted, sender=Segment, dispatch_uid="analysis-models")


def _segment_deleted(sender, instance, **kwargs) -> None:
    """A deleted model segment takes its model files and its scores on profiles with it."""
    if instance.kind not in ("propensity", "cluster"):
        return
    from .model_segments import model_files_delete, scores_replace

    model_files_delete(segment_key=instance.key)
    scores_replace(segment_key=instance.key, new={})
