"""Hostile-client and unlucky-operator regression tests (issue 17): real servers, real sockets, real files."""
