"""Fixtures of the categories tests: ``store``, the analytics store on each backend (embedded, PostgreSQL)."""

from callpipe_tests.analytics.test_store import store  # noqa: F401 - shared with the analytics tests
