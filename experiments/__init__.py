"""Experiments on placements: arms, exposures (Redis buffer, flushed by Celery); engine/ is the
pure assignment core."""
