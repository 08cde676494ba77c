"""WSGI entry point (granian, through config/web.py: ``python -m config.web``)."""

import gc
import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()

if os.environ.get("WEB_ACCESS_LOG", "true").strip().lower() not in ("0", "false", "no", "off"):
    # The server's own access log stays off (it would name visitors and clients): Mosaic's
    # scrubbed one instead (config/access_log.py).
    from config.access_log import access_logged, request_log_scrubbed

    application = access_logged(application)
    request_log_scrubbed()

# The URLconf and every view module it imports (the apps' APIs, scipy through experiments'
# statistics, pydantic through the request schemas) are otherwise imported by the first request,
# after the freeze below, and every full collection walks them for the life of the process: loaded
# now, they are frozen with the rest.
get_resolver().url_patterns  # noqa: B018  (the attribute's loading is the point)

# Everything loaded so far (Django, the apps, their modules) lives as long as the process: moved
# out of the collector's sight, so that a full collection (slow in a web process, and due every
# few thousand requests; docs/benchmarks.md, "History") no longer walks it on the request path.
gc.freeze()
