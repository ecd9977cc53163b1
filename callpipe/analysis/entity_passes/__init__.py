"""The passes of :func:`callpipe.analysis.entities.extract_entities`, one module per kind of entity.

Internal: callers import from :mod:`callpipe.analysis.entities`.
"""
