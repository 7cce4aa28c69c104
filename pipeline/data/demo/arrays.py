"""Vectorised helpers of the generator: grouped AR(1), fast search and membership, dates as YYYYMMDD."""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter


def _ar1(e: np.ndarray, rho: float, group_first: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """AR(1) ``x_t = rho x_{t-1} + e_t`` restarted at every group (rows sorted by group).

    One linear filter over the whole array, then the carry-over from the previous group
    (exactly ``rho**(pos+1)`` times the previous group's last value) is subtracted.
    """
    x = lfilter([1.0], [1.0, -rho], e)
    prev = np.where(group_first > 0, x[group_first - 1], 0.0)
    return x - np.power(rho, pos + 1.0) * prev


def _innovations(rng: np.random.Generator, first: np.ndarray, sd: float, rho: float) -> np.ndarray:
    """Shocks of a stationary AR(1) with standard deviation ``sd``: full-size at each group's first element."""
    return rng.standard_normal(len(first)) * np.where(first, sd, sd * np.sqrt(1.0 - rho**2))


def _search(a: np.ndarray, v: np.ndarray, side: str = "left") -> np.ndarray:
    """``np.searchsorted`` for many random queries: sorted queries keep the search in cache (several times faster)."""
    order = np.argsort(v, kind="stable")
    out = np.empty(len(v), dtype=np.int64)
    out[order] = np.searchsorted(a, v[order], side=side)
    return out


def _member(keys_sorted: np.ndarray, query: np.ndarray) -> np.ndarray:
    """``query`` values present in the sorted array ``keys_sorted``."""
    if len(keys_sorted) == 0:
        return np.zeros(len(query), dtype=bool)
    idx = _search(keys_sorted, query)
    return keys_sorted[np.minimum(idx, len(keys_sorted) - 1)] == query


def _unique(x: np.ndarray) -> np.ndarray:
    """Sorted distinct values (a plain sort: faster than ``np.unique`` on big integer arrays)."""
    x = np.sort(x)
    return x[np.concatenate([[True], x[1:] != x[:-1]])] if len(x) else x


def _firsts(sorted_group: np.ndarray, n_groups: int) -> np.ndarray:
    """Index of the first element of each group in a sorted group array."""
    return np.searchsorted(sorted_group, np.arange(n_groups))


def _day_to_yyyymmdd(day: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 -> YYYYMMDD integers."""
    d = day.astype("datetime64[D]")
    y = d.astype("datetime64[Y]").astype(np.int64) + 1970
    m = d.astype("datetime64[M]").astype(np.int64) % 12 + 1
    dd = (d - d.astype("datetime64[M]")).astype(np.int64) + 1
    return (y * 10000 + m * 100 + dd).astype(np.int64)
