"""Any committed change to delivery configuration bumps the snapshot version in Redis."""

from __future__ import annotations

from django.db import transaction
from django.db.models.signals import post_delete, post_save

from content.models import BlockType, Placement, Variant
from experiments.models import Arm, Experiment

# A block type's template renders its variants: a change to it is a change to them.
WATCHED = (Placement, Variant, Experiment, Arm, BlockType)


def _on_change(sender, **kwargs) -> None:
    from .snapshot import snapshot_bump  # the snapshot module compiles; load it only when needed

    # on_commit: processes must never rebuild from a transaction that may still roll back.
    transaction.on_commit(snapshot_bump)


def connect() -> None:
    for model in WATCHED:
        post_save.connect(_on_change, sender=model, dispatch_uid=f"snapshot-{model.__name__}")
        post_delete.connect(_on_change, sender=model, dispatch_uid=f"snapshot-del-{model.__name__}")
