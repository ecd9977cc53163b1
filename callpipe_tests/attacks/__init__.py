"""Hostile clients against a real ``callpipe serve`` on loopback, over real sockets."""
