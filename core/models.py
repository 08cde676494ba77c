"""Abstract models shared by the apps (core is not an app: nothing here has a table)."""

from __future__ import annotations

from django.db import models


class TimestampedModel(models.Model):
    """`created_at` (set once) and `updated_at` (every save), for configuration that editors
    create and change (segments, block types, placements, experiments). The columns are the ones
    these models already had: adopting the base is no schema change (makemigrations is clean)."""

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True
