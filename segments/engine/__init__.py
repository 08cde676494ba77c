"""Pure segment cores (no Django): RFM scoring, feature building, attribute analysis,
clustering, propensity.

Tested without a database (tests/unit/segments/engine/, tests/unit/segments/test_rfm.py); the
Django layer reads events in bounded chunks, calls these, and stores what they return.
"""
