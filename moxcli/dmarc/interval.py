"""Reporting intervals (docs/behaviour-notes.md §6.3): which `ri` maps to which period, which periods end when.

RFC 7489 §6.3: `ri` asks for reports no more than that many seconds apart (default 86400);
daily reports MUST be supported, hourly SHOULD. RFC 7489 §7.2: periods SHOULD follow hour
boundaries and 24-hour periods start at 00:00 UTC, so only divisors of 24 are used.
"""

from __future__ import annotations

INTERVALS = (24, 12, 8, 6, 4, 3, 2, 1)
DEFAULT_RI = 86400


def interval_hours(ri_seconds: int) -> int:
    """Hours of the reporting period for an `ri`: rounded up to whole hours, then down to a divisor of 24."""
    hours = -(-max(ri_seconds, 0) // 3600)
    return next((h for h in INTERVALS if h <= hours), 1)


def intervals_ending_at(hour_utc: int) -> list[int]:
    """Intervals (largest first) whose period ends at this whole UTC hour (0 counts as 24)."""
    h = hour_utc % 24 or 24
    return [i for i in INTERVALS if h % i == 0]
