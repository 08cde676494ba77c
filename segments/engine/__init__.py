"""Pure cores of the segments app (no Django, no database): RFM scoring, feature building,
attribute analysis, clustering and propensity models.

Tested without a database (tests/segments_engine/); the Django layer reads events in bounded
chunks, calls these, and stores what they return.
"""
