"""The weekly snapshot grid and the sparse helpers the snapshot-fit groups share (cf, neighbours, fm, rbm).

A snapshot at ``T_s`` holds every history row with ``ts < T_s``; the grid is fixed by the
calendar (every ``SNAPSHOT_DAYS`` days from Monday 1970-01-05 00:00 UTC), so it never
depends on the data, and a target at ``t`` uses the latest ``T_s <= t``.  Shared code: a
change here rebuilds every feature group (Makefile ``FEAT_CORE``) and every memo
(``features.history``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

__all__ = [
    "GRID_ORIGIN",
    "SNAPSHOT_DAYS",
    "WEEK",
    "compact",
    "fold_in",
    "snapshot_number",
    "snapshot_time",
    "sorted_codes",
]

#: Days between two snapshots of the item factors.
SNAPSHOT_DAYS = 7
#: The grid's origin: Monday 1970-01-05 00:00 UTC (the epoch itself was a Thursday).
GRID_ORIGIN = 4 * 86400
WEEK = SNAPSHOT_DAYS * 86400


def snapshot_number(ts: np.ndarray) -> np.ndarray:
    """Grid cell of each timestamp: the number of the latest snapshot ``T_s <= ts``."""
    return np.floor_divide(np.asarray(ts, dtype=np.int64) - GRID_ORIGIN, WEEK)


def snapshot_time(k: np.ndarray | int) -> np.ndarray | int:
    """Unix time of snapshot number ``k`` (a Monday 00:00 UTC)."""
    return GRID_ORIGIN + np.asarray(k, dtype=np.int64) * WEEK


def sorted_codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(values, return_inverse=True)`` (int32 codes), by hashing: no sort of all rows."""
    codes, uniq = pd.factorize(values, sort=False)
    order = np.argsort(uniq)
    rank = np.empty(len(uniq), dtype=np.int32)
    rank[order] = np.arange(len(uniq), dtype=np.int32)
    return np.asarray(uniq)[order], rank[codes]


def compact(codes: np.ndarray, n: int) -> tuple[np.ndarray, int]:
    """Renumber the codes that occur, in code order: ``(new_code_of_code, n_present)`` (-1 if absent)."""
    present = np.bincount(codes, minlength=n) > 0
    new = np.cumsum(present) - 1
    new[~present] = -1
    return new, int(present.sum())


def fold_in(
    ucode_s: np.ndarray,
    col_s: np.ndarray,
    weights: list[np.ndarray],
    start: np.ndarray,
    end: np.ndarray,
    factors: np.ndarray,
) -> list[np.ndarray]:
    """Sum of ``w * factors[col]`` over each target's rows ``[start, end)`` (user-sorted).

    Every target's range starts at its user's first row.  The rows are cut into blocks
    at every target's start and end; one sparse product gives each block's sum, and a
    cumulative sum *within each user* (not across users) adds the blocks up to each
    target's end.  So a target's vector is a sum over its own user's past rows only,
    computed in the same order whatever happens in other users' rows or later.
    """
    bp = np.unique(np.concatenate([start, end]))
    ustart, inv = np.unique(start, return_inverse=True)
    uend = np.zeros(len(ustart), dtype=np.int64)
    np.maximum.at(uend, inv, end)
    lens = uend - ustart
    offs = np.cumsum(lens) - lens
    pos = np.repeat(ustart - offs, lens) + np.arange(int(lens.sum()), dtype=np.int64)
    col = col_s[pos]
    keep = col >= 0
    pos, col = pos[keep], col[keep]
    blk = np.searchsorted(bp, pos, side="right") - 1
    # Each block belongs to the user whose first row is the last user start at or before it.
    seg = np.searchsorted(ustart, bp, side="right") - 1
    last_blk = np.searchsorted(bp, end) - 1
    out = []
    for w in weights:
        wk = w[pos]
        nz = wk != 0
        m = sp.csr_matrix((wk[nz], (blk[nz], col[nz])), shape=(len(bp), factors.shape[0]))
        sums = np.asarray(m @ factors)
        cum = pd.DataFrame(sums).groupby(seg, sort=False).cumsum().to_numpy()
        out.append(cum[last_blk])
    return out
