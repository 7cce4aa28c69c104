"""Demographic taste: how people of the user's age band and gender receive this genre.

Listen rates of (age band x genre) and (gender x genre) cells, as of the target's time
over all users, for plays of the same kind as the target (Flow or not: Flow plays are
skipped far more, and the test rows are Flow).  Each cell rate is smoothed toward the
genre's as-of rate, itself smoothed toward the as-of rate of the play kind, so a thin
cell says "like the genre" rather than noise.  It carries signal for users with little
history of their own (cold start), where the demographic cell is the best guess.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.asof import smoothed_rate
from features.history import History

__all__ = ["demographics_features", "age_band", "AGE_BAND_EDGES"]

#: Age band edges: 18-21 -> 0, 22-25 -> 1, 26 and over -> 2 (below 18 joins band 0).
AGE_BAND_EDGES = (22, 26)
#: Listen rate assumed before any history at all (the prior of the priors).
DEFAULT_RATE = 0.6


def age_band(age: np.ndarray) -> np.ndarray:
    return np.searchsorted(np.asarray(AGE_BAND_EDGES), np.asarray(age, dtype=np.int64), side="right").astype(np.int64)


def _flow(listen_type: np.ndarray) -> np.ndarray:
    return (np.asarray(listen_type) == 1).astype(np.int64)


def _gender(gender: np.ndarray) -> np.ndarray:
    return (np.asarray(gender) == 1).astype(np.int64)


class _Cells:
    """As-of (listens, plays) of low-cardinality cells, over history rows sorted once by time.

    Like :class:`features.asof.AsOfIndex` (rows sorted by cell, then time; a query
    ``(cell, t)`` counts the cell's rows with ``ts < t``), but cells are small dense
    codes, so the per-key sort is a stable radix sort of 16-bit codes over rows already
    in time order: a fraction of the cost of sorting 64-bit keys.
    """

    def __init__(self, ts: np.ndarray, y: np.ndarray) -> None:
        ts = np.asarray(ts, dtype=np.int64)
        self.by_time = np.argsort(ts, kind="stable")
        self.ts_t = ts[self.by_time]
        self.y_t = np.asarray(y, dtype=np.int64)[self.by_time]

    def counts(
        self, cell: np.ndarray, n_cells: int, q_cell: np.ndarray, q_ts: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(listens, plays) of each query's cell (``-1``: none) strictly before its time."""
        dtype = np.uint16 if n_cells <= np.iinfo(np.uint16).max else np.int64
        c_t = np.asarray(cell)[self.by_time].astype(dtype)
        order = np.argsort(c_t, kind="stable")
        key = (c_t[order].astype(np.int64) << 32) | self.ts_t[order]
        csum = np.zeros(len(order) + 1, dtype=np.int64)
        np.cumsum(self.y_t[order], out=csum[1:])
        q_cell = np.asarray(q_cell, dtype=np.int64)
        qk = np.maximum(q_cell, 0) << 32
        start = np.searchsorted(key, qk, side="left")
        end = np.searchsorted(key, qk | np.clip(np.asarray(q_ts, dtype=np.int64), 0, (1 << 32) - 1), side="left")
        end = np.where(q_cell >= 0, end, start)
        return (csum[end] - csum[start]).astype(np.float64), (end - start).astype(np.float64)


def demographics_features(history: History, targets: pd.DataFrame) -> pd.DataFrame:
    """As-of listen rates of the user's demographic cell for the candidate's genre.

    Cells are (age band, play kind, genre) and (gender, play kind, genre), where the
    play kind is Flow or not, taken from the target row.  Priors: the genre's rate for
    that play kind, smoothed toward the play kind's rate before ``t`` (itself smoothed
    toward ``DEFAULT_RATE``).

    - ``demographics_age_genre_rate``: smoothed listen rate of the age band x genre cell.
    - ``demographics_age_genre_lift``: that rate minus the genre's rate: what the age
      band adds to the genre's general appeal.
    - ``demographics_age_genre_n``: plays in the cell before ``t``.
    - ``demographics_gender_genre_rate``, ``_lift``, ``_n``: the same for gender.
    - ``demographics_age_flow_rate``: smoothed listen rate of the age band for the
      target's play kind (how readily this age band accepts Flow's proposals).
    """
    k = history.settings.prior_strength
    y = (history.y > 0.5).astype(np.int64)
    ts = targets["ts_listen"].to_numpy()
    cells = _Cells(history.col("ts_listen"), y)

    h_flow, t_flow = _flow(history.col("listen_type")), _flow(targets["listen_type"].to_numpy())
    h_band, t_band = age_band(history.col("user_age")), age_band(targets["user_age"].to_numpy())
    h_gender, t_gender = _gender(history.col("user_gender")), _gender(targets["user_gender"].to_numpy())
    # Dense genre codes (hashing, no sort); a genre never seen in history gets -1.
    h_genre, genres = pd.factorize(history.col("genre_id"), sort=False)
    h_genre = h_genre.astype(np.int64)
    t_genre = pd.Index(genres).get_indexer(targets["genre_id"].to_numpy()).astype(np.int64)
    n_genres = max(len(genres), 1)

    mode_rate = smoothed_rate(*cells.counts(h_flow, 2, t_flow, ts), DEFAULT_RATE, k)
    genre_cell = np.where(t_genre >= 0, t_flow * n_genres + t_genre, -1)
    listens, plays = cells.counts(h_flow * n_genres + h_genre, 2 * n_genres, genre_cell, ts)
    genre_rate = smoothed_rate(listens, plays, mode_rate, k)

    out: dict[str, np.ndarray] = {}
    n_bands = len(AGE_BAND_EDGES) + 1
    for name, h_group, t_group, n_groups in (("age", h_band, t_band, n_bands), ("gender", h_gender, t_gender, 2)):
        h_cell = (h_group * 2 + h_flow) * n_genres + h_genre
        t_cell = np.where(t_genre >= 0, (t_group * 2 + t_flow) * n_genres + t_genre, -1)
        listens, plays = cells.counts(h_cell, n_groups * 2 * n_genres, t_cell, ts)
        rate = smoothed_rate(listens, plays, genre_rate, k)
        out[f"demographics_{name}_genre_rate"] = rate
        out[f"demographics_{name}_genre_lift"] = rate - genre_rate
        out[f"demographics_{name}_genre_n"] = plays

    listens, plays = cells.counts(h_band * 2 + h_flow, n_bands * 2, t_band * 2 + t_flow, ts)
    out["demographics_age_flow_rate"] = smoothed_rate(listens, plays, mode_rate, k)
    return pd.DataFrame({k: np.asarray(v, dtype=np.float32) for k, v in out.items()}, index=pd.RangeIndex(len(targets)))
