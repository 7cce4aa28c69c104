"""Broken device clocks on a few train plays (~0.12% of rows in all).

Whole sessions moved to January 1980 or set back 1-8 years (2008-2015), and a few plays
with a tiny ts_listen (1, 8, 79, 865).  The catalogue's quirks (release-date
placeholders, pre-releases played early, media_duration 0, genre_id 0) are drawn with the
catalogue, in :mod:`pipeline.data.demo.catalogue`.
"""

from __future__ import annotations

import numpy as np

from pipeline.data.demo.constants import _DAY, _JAN1980


def _break_clocks(
    rng: np.random.Generator, ts: np.ndarray, sess_of_row: np.ndarray, start: np.ndarray, n_sessions: int
) -> np.ndarray:
    """Broken device clocks on a few plays: whole sessions in Jan 1980 or years back, a few tiny values."""
    n = len(ts)
    if n < 1000 or n_sessions < 10:
        return ts
    k = max(2, round(n_sessions * 6e-4))
    picked = rng.choice(n_sessions, 2 * k, replace=False)
    shift = np.zeros(n_sessions, dtype=np.int64)
    shift[picked[:k]] = _JAN1980 + rng.integers(0, 20 * _DAY, k) - start[picked[:k]]
    shift[picked[k:]] = -np.round(rng.integers(1, 9, k) * 365.25 * _DAY).astype(np.int64)
    ts = ts + shift[sess_of_row]
    tiny = rng.choice(n, max(1, round(n * 2e-5)), replace=False)
    ts[tiny] = rng.choice([1, 8, 79, 865], len(tiny))
    return ts
