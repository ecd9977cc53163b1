"""Faults injected for real: killed processes, S3 outages, full disks, racing runs, corrupt audio."""
