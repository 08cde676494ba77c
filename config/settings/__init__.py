"""Mosaic's Django settings, assembled from one module per concern.

Every value comes from `env.ENV` (one typed object); see README.md for the table of variables.
"""

from .base import *  # noqa: F403
from .celery import *  # noqa: F403
from .database import *  # noqa: F403
from .security import *  # noqa: F403
from .segments import *  # noqa: F403
