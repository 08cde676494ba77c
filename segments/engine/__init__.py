"""Pure segment cores (no Django): feature building, attribute analysis, clustering, propensity.

Tested without a database (tests/segments_engine/); the Django layer reads events in bounded
chunks, calls these, and stores what they return.
"""
