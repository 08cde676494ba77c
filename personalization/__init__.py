"""Mosaic's Django project package and its delivery core (context, snapshot, decide, API).

The Celery app is loaded by the app config's ready() (every Django process), not here, so that
importing the pure cores (`personalization.rules`) never pulls in Celery or Django.
"""
