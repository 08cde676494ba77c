"""The rule engine is pure Python: its tests need neither Redis nor Django.

``tests/conftest.py`` starts a redis-server for the session, flushes it (through Django models)
around every test and empties the in-process caches, automatically. These same-named fixtures
replace all three for this directory, so the rule tests stay fast and also run with
``-p no:django`` before or without the project settings.
"""

import pytest


@pytest.fixture(scope="session", autouse=True)
def _use_test_redis():
    return


@pytest.fixture(autouse=True)
def _clean_redis():
    return


@pytest.fixture(autouse=True)
def _clean_process_caches():
    return
