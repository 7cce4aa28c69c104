"""The train history every feature is computed from, with cached as-of indices and sessions."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features import params
from features.asof import AsOfIndex, combine_keys

__all__ = ["History", "UserSessions", "session_starts"]


def session_starts(user: np.ndarray, ts: np.ndarray, gap_seconds: float) -> np.ndarray:
    """For rows sorted by (user, ts): True where a row opens a session (first of user or after a long gap)."""
    new = np.ones(len(user), dtype=bool)
    if len(user) > 1:
        new[1:] = (user[1:] != user[:-1]) | ((ts[1:] - ts[:-1]) > gap_seconds)
    return new


@dataclass(frozen=True)
class UserSessions:
    """Per-row session structure of the user index (arrays in the index's sorted order).

    ``session_start[i]``: sorted position of the first row of row i's session.
    ``user_start[i]``: sorted position of the user's first row.
    """

    session_start: np.ndarray
    user_start: np.ndarray


class History:
    """Validated train rows (``data/interim/train.parquet``) plus cached lookup structures.

    Feature functions ask ``index(*cols)`` for an :class:`AsOfIndex` over a key of one
    or two columns and ``locate(targets, *cols)`` for the past-only row range of each
    target; everything else is plain numpy.
    """

    def __init__(self, df: pd.DataFrame, *, gap_seconds: float | None = None) -> None:
        self.df = df.reset_index(drop=True)
        self.gap_seconds = params.SESSION_GAP_MINUTES * 60 if gap_seconds is None else gap_seconds
        self._indices: dict[tuple[str, ...], AsOfIndex] = {}
        self._sessions: UserSessions | None = None
        self._time_order: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.df)

    def col(self, name: str) -> np.ndarray:
        return self.df[name].to_numpy()

    @property
    def y(self) -> np.ndarray:
        return self.df["is_listened"].to_numpy(dtype=np.float64)

    @property
    def flow(self) -> np.ndarray:
        return (self.df["listen_type"].to_numpy() == 1).astype(np.float64)

    def time_order(self) -> np.ndarray:
        """Row positions sorted by time (stable: ties keep file order), shared by every index."""
        if self._time_order is None:
            self._time_order = np.argsort(self.df["ts_listen"].to_numpy(), kind="stable")
        return self._time_order

    def global_asof(self, ts: np.ndarray, values: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Count and sums of per-row ``values`` over ALL history rows with ``ts_listen < ts`` (as-of priors)."""
        order = self.time_order()
        end = np.searchsorted(self.df["ts_listen"].to_numpy().astype(np.int64)[order], ts, side="left")
        sums = {
            name: np.concatenate([[0.0], np.cumsum(np.asarray(v, dtype=np.float64)[order])])[end]
            for name, v in values.items()
        }
        return end.astype(np.float64), sums

    def index(self, *cols: str) -> AsOfIndex:
        """As-of index keyed by one or two columns (built once, then cached)."""
        if cols not in self._indices:
            keys = combine_keys(*(self.df[c].to_numpy() for c in cols))
            self._indices[cols] = AsOfIndex(keys, self.df["ts_listen"].to_numpy(), time_order=self.time_order())
        return self._indices[cols]

    def locate(self, targets: pd.DataFrame, *cols: str) -> tuple[AsOfIndex, np.ndarray, np.ndarray]:
        """Index for ``cols`` and each target's ``[start, end)`` range of rows strictly before it."""
        idx = self.index(*cols)
        keys = combine_keys(*(targets[c].to_numpy() for c in cols))
        start, end = idx.locate(keys, targets["ts_listen"].to_numpy())
        return idx, start, end

    def user_sessions(self) -> UserSessions:
        """Session structure over the ``user_id`` index (sorted by user, then time)."""
        if self._sessions is None:
            idx = self.index("user_id")
            n = len(idx)
            user = idx.codes_sorted
            new_sess = session_starts(user, idx.ts_sorted, self.gap_seconds)
            new_user = np.ones(n, dtype=bool)
            if n > 1:
                new_user[1:] = user[1:] != user[:-1]
            pos = np.arange(n)
            sess_start = np.maximum.accumulate(np.where(new_sess, pos, 0)) if n else pos
            user_start = np.maximum.accumulate(np.where(new_user, pos, 0)) if n else pos
            self._sessions = UserSessions(session_start=sess_start, user_start=user_start)
        return self._sessions
