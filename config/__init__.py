"""Mosaic's Django project package: settings, URL map, WSGI/ASGI entry points, the Celery app and
the web server's launcher (config/web.py).

Importing the Celery app here (Celery's documented Django layout) binds `@shared_task` to Mosaic's
app in every Django process: each one imports `config.settings`, hence this package, first.
"""

from .celery import app as celery_app

__all__ = ("celery_app",)
