"""The train history every feature is computed from, with cached as-of indices, sessions and fits.

Anything expensive that depends on the history alone -- the sort order of an as-of
index, a snapshot model fitted on the rows before a calendar date -- is computed once
per history through :meth:`History.memo`.  Given a ``store`` folder (``make features``
passes ``data/processed/cache``), memoised values are also kept on disk, keyed by a
fingerprint of the history's rows and of the code that computed them, so the train and
test builds of a group, the other groups and ``make recommend`` share them instead of
recomputing.  A value is only ever a function of its key: reusing it changes no bit.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import joblib
import numpy as np
import pandas as pd

from core.settings import FeatureSettings
from features.asof import AsOfIndex, combine_keys, range_sum, ranges_within, smooth

__all__ = ["History", "UserSessions", "session_starts", "code_hash", "GLOBAL_PSEUDO"]

log = logging.getLogger("features")

T = TypeVar("T")


def code_hash(*files: str | os.PathLike[str]) -> str:
    """Hash of source files: part of a memo key, so edited code never reuses an old value."""
    h = hashlib.sha256()
    for f in files:
        h.update(Path(f).read_bytes())
    return h.hexdigest()[:12]


#: The global as-of rate is smoothed by this many pseudo-plays at 0.5, so that it is defined (0.5)
#: before the first history row and negligibly moved afterwards (every group's global prior).
GLOBAL_PSEUDO = 1.0

#: Code every memoised value depends on, whatever the group.
_BASE_CODE = tuple([__file__] + [str(Path(__file__).with_name(f)) for f in ("asof.py", "snapshots.py", "lbfgs.py")])


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

    def __init__(
        self,
        df: pd.DataFrame,
        *,
        settings: FeatureSettings | None = None,
        gap_seconds: float | None = None,
        store: str | os.PathLike[str] | None = None,
    ) -> None:
        self.df = df.reset_index(drop=True)
        self.store = Path(store) if store is not None else None
        self._memo: dict[str, object] = {}
        self._fingerprint: str | None = None
        #: The feature settings every group reads (prior strength, session gap): passed in, never global.
        self.settings = settings if settings is not None else FeatureSettings()
        self.gap_seconds = self.settings.gap_seconds if gap_seconds is None else gap_seconds
        self._indices: dict[tuple[str, ...], AsOfIndex] = {}
        self._sessions: UserSessions | None = None
        self._time_order: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.df)

    @property
    def fingerprint(self) -> str:
        """sha256 of every row of the history (and the settings): the data part of a memo key."""
        if self._fingerprint is None:
            h = hashlib.sha256(repr((self.gap_seconds, self.settings)).encode())
            for c in self.df.columns:
                h.update(str(c).encode())
                h.update(np.ascontiguousarray(self.df[c].to_numpy()).tobytes())
            self._fingerprint = h.hexdigest()[:16]
        return self._fingerprint

    def memo(self, name: str, compute: Callable[[], T], *, code: str = "") -> T:
        """``compute()`` once per history: in memory, and across processes when there is a store.

        ``name`` says what the value is (e.g. ``cf-snapshot-2461``) and ``code`` the hash of
        the code computing it (:func:`code_hash`); the history's fingerprint completes the key.
        """
        key = f"{name}-{code}{code_hash(*_BASE_CODE)}-{self.fingerprint}"
        if key in self._memo:
            return self._memo[key]  # type: ignore[return-value]
        path = self.store / f"{key}.joblib" if self.store is not None else None
        if path is not None and path.exists():
            try:
                value = joblib.load(path)
            except Exception:  # a truncated or foreign file is recomputed, never trusted
                log.warning("recomputing unreadable cache entry %s", path.name)
            else:
                self._memo[key] = value
                return value
        value = compute()
        self._memo[key] = value
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._prune(path.parent)
            tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
            joblib.dump(value, tmp)
            os.replace(tmp, path)  # atomic: a parallel build reads a whole file or none
        return value

    def _prune(self, folder: Path) -> None:
        """Drop entries of other histories (older data or settings): only the current one is reused."""
        for old in folder.glob("*.joblib"):
            if not old.stem.endswith(self.fingerprint):
                old.unlink(missing_ok=True)

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
            self._time_order = self.memo(
                "time-order", lambda: np.argsort(self.df["ts_listen"].to_numpy(), kind="stable").astype(np.int32)
            ).astype(np.int64)
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

    def global_asof_in(
        self, col: str, qval: np.ndarray, ts: np.ndarray, values: dict[str, np.ndarray]
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """:meth:`global_asof` over the rows whose ``col`` equals the query's ``qval`` (a small integer column).

        E.g. the listen rate of everyone on the target's platform before the target.
        """
        order = self.time_order()
        hcol = self.df[col].to_numpy()
        n_q = len(ts)
        perm, s, e = ranges_within(
            hcol[order], np.zeros(len(hcol), np.int64), 1, self.df["ts_listen"].to_numpy().astype(np.int64)[order],
            qval, np.zeros(n_q, np.int64), ts,
        )  # fmt: skip
        return (e - s).astype(np.float64), {
            name: range_sum(np.asarray(v)[order][perm], s, e) for name, v in values.items()
        }

    def user_rate(self, targets: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Each target user's listen rate over their rows before the target, and how many rows that is.

        Smoothed with ``prior_strength`` pseudo-plays toward everyone's as-of rate (itself
        smoothed toward 0.5 by one pseudo-play): the prior a user x item rate shrinks toward.
        """
        t = targets["ts_listen"].to_numpy().astype(np.int64)
        y = self.y
        g_n, g = self.global_asof(t, {"y": y})
        g_rate = smooth(g["y"], g_n, 0.5, GLOBAL_PSEUDO)
        uidx, us, ue = self.locate(targets, "user_id")
        u_n = (ue - us).astype(np.float64)
        return smooth(range_sum(y[uidx.order], us, ue), u_n, g_rate, self.settings.prior_strength), u_n

    def index(self, *cols: str) -> AsOfIndex:
        """As-of index keyed by one or two columns (built once, then cached)."""
        if cols not in self._indices:
            keys = combine_keys(*(self.df[c].to_numpy() for c in cols))
            ts = self.df["ts_listen"].to_numpy()

            def _order() -> np.ndarray:
                return AsOfIndex(keys, ts, time_order=self.time_order()).order.astype(np.int32)

            # Only the sort order is kept (int32: 4 bytes a row); the rest is rebuilt from it.
            order = self.memo("index-" + "-".join(cols), _order)
            self._indices[cols] = AsOfIndex(keys, ts, order=order)
        return self._indices[cols]

    def locate(self, targets: pd.DataFrame, *cols: str) -> tuple[AsOfIndex, np.ndarray, np.ndarray]:
        """Index for ``cols`` and each target's ``[start, end)`` range of rows strictly before it."""
        idx = self.index(*cols)
        keys = combine_keys(*(targets[c].to_numpy() for c in cols))
        start, end = idx.locate(keys, targets["ts_listen"].to_numpy())
        return idx, start, end

    def release_indices(self) -> None:
        """Drop the as-of indices built so far (~0.25 GB each at 7.6M rows); the next ``index`` rebuilds
        one from its memoised sort order.  For a caller that runs several groups in one process."""
        self._indices.clear()
        self._sessions = None

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
