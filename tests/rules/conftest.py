"""The rule engine is pure Python: its tests need neither Redis nor Django.

``tests/conftest.py`` starts a redis-server for the session and flushes it (through Django models)
around every test, automatically. These same-named fixtures replace both for this directory, so the
rule tests stay fast and also run with ``-p no:django`` before or without the project settings.
"""

import pytest


@pytest.fixture(scope="session", autouse=True)
def _use_test_redis():
    return


@pytest.fixture(autouse=True)
def _clean_redis():
    return
