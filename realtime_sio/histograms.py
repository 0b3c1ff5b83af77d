"""Quantiles and shares of Prometheus-style cumulative histograms between two readings (the dashboard, the watchdog)."""

from __future__ import annotations

import math
from collections.abc import Sequence


def quantile(q: float, now: Sequence[tuple[float, float]], then: Sequence[tuple[float, float]] = ()) -> float | None:
    """The ``q`` quantile (seconds) of observations made between two cumulative histograms, interpolating
    linearly inside a bucket as Prometheus' ``histogram_quantile`` does; ``None`` when nothing was observed."""
    before = dict(then)
    deltas = [(bound, count - before.get(bound, 0.0)) for bound, count in now]
    if not deltas or deltas[-1][1] <= 0:
        return None
    rank = q * deltas[-1][1]
    lower, below = 0.0, 0.0
    for bound, count in deltas:
        if count >= rank:
            if math.isinf(bound):
                return lower  # beyond the largest finite bucket: report its bound, as Prometheus does
            if count == below:
                return bound
            return lower + (bound - lower) * (rank - below) / (count - below)
        lower, below = bound, count
    return lower


def share_over(bound: float, now: Sequence[tuple[float, float]], then: Sequence[tuple[float, float]] = ()) -> float | None:
    """Share (0-1) of the observations between two cumulative histograms that were above ``bound`` (a bucket bound);
    ``None`` when nothing was observed."""
    before = dict(then)
    counts = {b: c - before.get(b, 0.0) for b, c in now}
    total = counts.get(math.inf, 0.0)
    if total <= 0 or bound not in counts:
        return None
    return max(0.0, 1.0 - counts[bound] / total)
