"""Retrying a failed pass: the delay before the next one, and the error that asks for it.

Shared by every controller's loop and the domain code they drive, so neither
layer borrows it from the other.
"""

from __future__ import annotations

import random


class RetryLater(Exception):
    """A step failed in a way worth retrying with backoff; the status already says why."""


def backoff(failures: int, cap: float = 300.0) -> float:
    """Exponential backoff with jitter for an object whose passes keep failing.

    The jitter spreads the retries of many objects that failed together (a platform
    outage) instead of sending them back at the same moment.
    """
    ceiling = min(cap, 2.0 ** min(failures, 10))
    return random.uniform(ceiling / 2, ceiling)
