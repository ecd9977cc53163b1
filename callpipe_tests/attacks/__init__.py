"""Hostile-client and unlucky-operator regression tests (issue 17)."""
