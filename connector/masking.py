"""How identifiers are shown outside the setup pages: the first two characters and the last, dots between.

One helper for every place that shows a company or user ID to someone who does not need it whole: the
support dashboard and its CSV, the connection page, the status API and /metrics.
"""
from __future__ import annotations


def mask(value: str) -> str:
    """"ACMECORP" -> "AC•••••P"; a value of three characters or fewer keeps only its first."""
    if not value:
        return ""
    if len(value) <= 3:
        return value[0] + "•" * (len(value) - 1)
    return value[:2] + "•" * (len(value) - 3) + value[-1]
