"""As-of aggregation: statistics over the rows of a key that happened strictly before a time.

This is the one primitive every history feature is built on, and the reason they are
past-only by construction.  History rows are sorted once by ``(key, ts)``; a query
``(key, t)`` is answered with two binary searches, giving the half-open range
``[start, end)`` of that key's rows with ``ts < t``.  Sums over the range come from
cumulative sums, so a whole round of targets costs ``O((N + Q) log N)`` with no
Python loop.  A row at exactly ``t`` (the target itself, or a tie) is never included.
"""

from __future__ import annotations

import numpy as np

__all__ = ["AsOfIndex", "combine_keys", "find_sorted", "smoothed_rate", "smooth", "logit", "range_sum", "ranges_within"]

_TS_BITS = 32


def combine_keys(*cols: np.ndarray) -> np.ndarray:
    """Pack one or two non-negative int32 id columns into one int64 key per row."""
    if len(cols) == 1:
        return np.asarray(cols[0], dtype=np.int64)
    if len(cols) != 2:
        raise ValueError("combine_keys takes one or two columns")
    a, b = (np.asarray(c, dtype=np.int64) for c in cols)
    return (a << 31) | b


def find_sorted(sorted_ids: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each of ``q`` sits in the sorted, unique ``sorted_ids``, and whether it is there.

    Returns ``(pos, found)``; ``pos`` is always a valid position (0 for an empty ``sorted_ids``),
    so ``values[pos]`` is safe and ``found`` says which to keep.
    """
    q = np.asarray(q)
    if len(sorted_ids) == 0:
        return np.zeros(len(q), dtype=np.int64), np.zeros(len(q), dtype=bool)
    pos = np.minimum(np.searchsorted(sorted_ids, q), len(sorted_ids) - 1)
    return pos, sorted_ids[pos] == q


def smoothed_rate(listens: np.ndarray, count: np.ndarray, prior: float | np.ndarray, strength: float) -> np.ndarray:
    """Additive smoothing: ``(listens + strength * prior) / (count + strength)``, in float32."""
    return ((listens + strength * prior) / (count + strength)).astype(np.float32)


def smooth(listens: np.ndarray, count: np.ndarray, prior: np.ndarray | float, strength: float) -> np.ndarray:
    """``(listens + strength * prior) / (count + strength)`` in float64."""
    return (listens + strength * prior) / (count + strength)


def logit(p: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Log-odds of ``p`` clipped to ``[eps, 1 - eps]`` (a rate smoothed with zero pseudo-plays can be 0 or 1)."""
    p = np.clip(p, eps, 1 - eps)
    return np.log(p / (1 - p))


def range_sum(values_sorted: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Sum of ``values_sorted`` (already in an index's sorted order) over each ``[start, end)``."""
    c = np.concatenate([[0.0], np.cumsum(np.asarray(values_sorted, dtype=np.float64))])
    return c[end] - c[start]


def ranges_within(
    col_sorted: np.ndarray, codes_sorted: np.ndarray, n_codes: int, ts_sorted: np.ndarray, q_val, q_code, q_ts
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """As-of row ranges for the key (``col``, code) over rows already sorted by (code, ts).

    A stable sort on the small non-negative integer column ``col_sorted`` (a linear radix
    sort for int8/int16 such as ``context_type`` and ``platform_name``) regroups the rows
    by (col, code) keeping time order, so two binary searches per target find its rows
    with that column value and code and ``ts < q_ts`` -- what an AsOfIndex over (code,
    col) gives, without another full sort of the history.  ``q_code < 0`` (unknown code)
    gives an empty range.  Returns ``(perm, start, end)``: position ``i`` of the regrouped
    order is position ``perm[i]`` of the given order.
    """
    col = np.asarray(col_sorted)
    if len(col) and col.min() >= 0 and col.max() < 2**15:
        col = col.astype(np.int16)
    perm = np.argsort(col, kind="stable")
    ts = np.clip(np.asarray(ts_sorted, dtype=np.int64)[perm], 0, 2**32 - 1)
    key = ((col[perm].astype(np.int64) * n_codes + codes_sorted[perm]) << 32) | ts
    q_val = np.asarray(q_val, dtype=np.int64)
    ok = (q_code >= 0) & (q_val >= 0)
    base = np.where(ok, q_val * n_codes + q_code, 0) << 32
    start = np.searchsorted(key, base, side="left")
    end = np.searchsorted(key, base | np.clip(q_ts, 0, 2**32 - 1), side="left")
    return perm, start, np.where(ok, end, start)


class AsOfIndex:
    """Rows of a history grouped by an int64 key and sorted by timestamp.

    ``keys`` and ``ts`` are per history row (``ts`` non-negative, below 2**32).
    """

    def __init__(
        self,
        keys: np.ndarray,
        ts: np.ndarray,
        *,
        time_order: np.ndarray | None = None,
        order: np.ndarray | None = None,
    ) -> None:
        keys = np.asarray(keys, dtype=np.int64)
        ts = np.clip(np.asarray(ts, dtype=np.int64), 0, (1 << _TS_BITS) - 1)
        if order is None:
            if time_order is None:
                time_order = np.argsort(ts, kind="stable")
            # Two stable sorts (time, then key) give the (key, ts, row) order; sharing the
            # time order across indices of one history halves the cost of each index.
            order = time_order[np.argsort(keys[time_order], kind="stable")]
        #: Row positions in (key, ts, row) order: the one expensive part, which a caller may keep
        #: and hand back (``order=``) to rebuild the same index without sorting.
        self.order = np.asarray(order, dtype=np.int64)
        sk = keys[self.order]
        new = np.ones(len(sk), dtype=bool)
        new[1:] = sk[1:] != sk[:-1]
        self.uniq = sk[new]
        self.codes_sorted = np.cumsum(new) - 1
        self.ts_sorted = ts[self.order]
        self.sorted_key = (self.codes_sorted.astype(np.int64) << _TS_BITS) | self.ts_sorted
        self._csums: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.order)

    def locate(self, qkeys: np.ndarray, qts: np.ndarray, *, inclusive: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(start, end)``: the sorted positions of the key's rows with ``ts < t``.

        With ``inclusive=True`` the range is ``ts <= t`` instead (for descriptive,
        not predictive, uses).  Keys never seen give an empty range.
        """
        qkeys = np.asarray(qkeys, dtype=np.int64)
        qts = np.clip(np.asarray(qts, dtype=np.int64), 0, (1 << _TS_BITS) - 1)
        pos_c, found = find_sorted(self.uniq, qkeys)
        base = pos_c.astype(np.int64) << _TS_BITS
        start = np.searchsorted(self.sorted_key, base, side="left")
        end = np.searchsorted(self.sorted_key, base | qts, side="right" if inclusive else "left")
        start = np.where(found, start, 0)
        end = np.where(found, end, 0)
        return start, end

    def csum(self, name: str, values: np.ndarray) -> np.ndarray:
        """Cumulative sum (with a leading 0) of per-row ``values`` in sorted order, cached by ``name``."""
        if name not in self._csums:
            v = np.asarray(values, dtype=np.float64)[self.order]
            self._csums[name] = np.concatenate([[0.0], np.cumsum(v)])
        return self._csums[name]

    def sum(self, name: str, values: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
        """Sum of ``values`` over each ``[start, end)`` range."""
        c = self.csum(name, values)
        return c[end] - c[start]

    def last_ts(self, start: np.ndarray, end: np.ndarray) -> np.ndarray:
        """Timestamp of the last row in each range, NaN where the range is empty."""
        out = np.full(len(start), np.nan)
        has = end > start
        out[has] = self.ts_sorted[end[has] - 1]
        return out

    def row_at(self, pos: np.ndarray) -> np.ndarray:
        """History row number (position in the original frame) of sorted positions ``pos``."""
        return self.order[pos]
