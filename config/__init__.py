"""Mosaic's Django project package: settings, URL map, WSGI/ASGI entry points, the Celery app and
the gunicorn configuration."""
