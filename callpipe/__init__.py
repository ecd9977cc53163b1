"""callpipe: call-center recordings (Spanish first) into trustworthy analytics."""

__version__ = "0.1.0"
