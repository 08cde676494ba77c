"""Pure cores of the segments app (no Django, no database): RFM scoring and later models."""
