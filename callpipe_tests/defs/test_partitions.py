"""The first call-date partition: recent by default, configurable, validated."""

from __future__ import annotations

from datetime import date

import pytest

from callpipe.defs.partitions import build_call_date_partitions, configured_start_date, default_start_date


def test_default_start_is_the_first_of_the_month_three_months_back() -> None:
    assert default_start_date(date(2026, 12, 5)) == "2026-09-01"
    assert default_start_date(date(2026, 2, 28)) == "2025-11-01"
    assert default_start_date(date(2026, 3, 1)) == "2025-12-01"


def test_a_new_deployment_shows_months_not_years_of_partitions() -> None:
    start = configured_start_date({})
    partitions = build_call_date_partitions(start_date=start)
    assert partitions.get_first_partition_key() == start
    assert 85 <= len(partitions.get_partition_keys()) <= 125  # ~3-4 months, plus today


def test_configured_start_date() -> None:
    assert configured_start_date({"CALLPIPE_START_DATE": " 2024-01-01 "}) == "2024-01-01"
    with pytest.raises(ValueError, match="CALLPIPE_START_DATE='2024-13-01'"):
        configured_start_date({"CALLPIPE_START_DATE": "2024-13-01"})
