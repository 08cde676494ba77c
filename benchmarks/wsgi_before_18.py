"""The WSGI entry point as gunicorn ran it before issue #18, for the benchmarks' baseline only.

config/wsgi.py as it was then (7cb9d45): Django's own handler for every path, decide included
(no dispatcher, no decide edge), and the heap frozen after start-up. Its access log was
gunicorn's (``--access-logfile -``, bench_decide.py passes it). The code behind the handler (the
decide view, its checks, the decision) is today's: what the baseline keeps of the past is the
server and its configuration, which is what "decide on gunicorn sync with today's configuration"
compares against (issue #18).
"""

import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()

gc.freeze()
