"""Catalog edits (admin, API) reload every process's serving catalog on commit."""

from __future__ import annotations

from django.db import transaction
from django.db.models.signals import post_delete, post_save


def _on_change(sender, **kwargs) -> None:
    from .services import serving_version_bump

    transaction.on_commit(serving_version_bump)


def connect() -> None:
    from .models import Item

    post_save.connect(_on_change, sender=Item, dispatch_uid="recs-item-save")
    post_delete.connect(_on_change, sender=Item, dispatch_uid="recs-item-delete")
