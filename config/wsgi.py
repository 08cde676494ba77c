"""WSGI entry point (granian, through config/web.py: ``python -m config.web``)."""

import gc
import os
from collections.abc import Callable
from typing import Any

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application: Callable[..., Any] = get_wsgi_application()

# Decide calls without a session or CSRF cookie are served beside Django's full request cycle
# (the same view, checks and answers; personalization/api/handler.py says what they skip).
from personalization.api.handler import decide_dispatched  # noqa: E402  (needs Django set up)

application = decide_dispatched(application)

if os.environ.get("WEB_ACCESS_LOG", "true").strip().lower() not in ("0", "false", "no", "off"):
    # The server's own access log stays off (it would name visitors and clients): Mosaic's
    # scrubbed one instead (config/access_log.py).
    from config.access_log import access_logged, request_log_scrubbed

    application = access_logged(application)
    request_log_scrubbed()

# Everything loaded so far (Django, the apps, their modules) lives as long as the process: moved
# out of the collector's sight, so that a full collection (slow in a web process, and due every
# few thousand requests; docs/benchmarks.md, "History") no longer walks it on the request path.
gc.freeze()
