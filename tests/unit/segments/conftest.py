"""Fixtures of the segment tests: callers holding one role (the management API's and the
admin's), shared with the content API tests."""

from tests.unit.content.api.conftest import role_client  # noqa: F401 (a fixture)
