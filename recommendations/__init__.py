"""Recommendations: catalog, interactions from events, models trained by Celery, serving."""
