"""Sequence group: what the user just did (listens, skips, Flow or not) predicts what they do next."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.history import History

__all__ = ["sequence_features"]

#: Windows (in plays) of the recent listen rate, over all plays and over Flow plays.
WINDOWS = (5, 20, 100)
FLOW_WINDOWS = (5, 20)
#: Window (in Flow session starts) of the user's recent listen rate on session-opening Flow tracks.
START_WINDOW = 5
#: Pseudo-plays pulling a short-window or session rate toward the user's own as-of rate:
#: small, because the point of a window is to show how the user deviates from their habit.
WINDOW_STRENGTH = 2.0
#: Global listen rate assumed when no history row at all is before the target.
EMPTY_PRIOR = 0.5


def _take(arr: np.ndarray, pos: np.ndarray, mask: np.ndarray, fill: float) -> np.ndarray:
    """``arr[pos]`` where ``mask``, ``fill`` elsewhere, in float64 (safe on an empty ``arr``)."""
    out = np.full(len(pos), fill, dtype=np.float64)
    out[mask] = arr[pos[mask]]
    return out


def _csum0(v: np.ndarray) -> np.ndarray:
    return np.concatenate([[0.0], np.cumsum(v, dtype=np.float64)])


def _rate(listens: np.ndarray, count: np.ndarray, fallback: np.ndarray | float) -> np.ndarray:
    """Raw rate, ``fallback`` where the count is 0."""
    return np.where(count > 0, listens / np.maximum(count, 1), fallback)


def _smooth(listens: np.ndarray, count: np.ndarray, prior: np.ndarray, strength: float) -> np.ndarray:
    return (listens + strength * prior) / (count + strength)


class _Subset:
    """Rows of the user index flagged by ``mask`` (sorted order), with listens indexed by rank.

    ``before[p]`` is the number of flagged rows at sorted positions < p; the user's flagged
    rows in ``[start, end)`` have ranks ``[before[start], before[end])``, so the listens of
    the user's last ``m`` flagged rows are ``listens[r] - listens[r - m]`` with ``r = before[end]``.
    """

    def __init__(self, mask: np.ndarray, y_sorted: np.ndarray) -> None:
        self.before = _csum0(mask).astype(np.int64)
        self.listens = _csum0(y_sorted[mask])

    def last(self, start: np.ndarray, end: np.ndarray, window: np.ndarray | int) -> tuple[np.ndarray, np.ndarray]:
        """(listens, count) over the last ``window`` flagged rows of each ``[start, end)``."""
        r = self.before[end]
        m = np.minimum(window, r - self.before[start])
        return self.listens[r] - self.listens[r - m], m.astype(np.float64)


def sequence_features(history: History, targets: pd.DataFrame) -> pd.DataFrame:
    """The user's last moves before the target: recent listen rates, skips, sessions, Flow.

    Listening is streaky: a user who skipped the last few tracks, or whose last session
    was all skips, is likely to skip again; a user who was just listening keeps going.
    These are short-term, recency-ordered views that complement the user's long-run
    rates (the ``user`` group). Everything comes from the user's history rows strictly
    before the target (ties at the target's timestamp excluded). Window and session
    rates are smoothed with ``WINDOW_STRENGTH`` pseudo-plays toward the user's own as-of
    rate (overall, Flow or Flow-start to match the window), itself smoothed with
    ``prior_strength`` (PRIOR_STRENGTH) toward the as-of global rate over all users' rows before
    the target -- so an unseen user gets the global rate, and a rate never sees the future.

    - ``sequence_last_listened``: 1 if the previous play was listened, 0 if skipped (NaN: none).
    - ``sequence_last_flow``: 1 if the previous play came from Flow (NaN: none).
    - ``sequence_skip_streak``: consecutive skips ending at the previous play (0: none).
    - ``sequence_rate_last_{5,20,100}``: listen rate over the user's last N plays.
    - ``sequence_flow_rate_last_{5,20}``: listen rate over the user's last N Flow plays.
    - ``sequence_flow_start_rate_last_5``: listen rate over the user's last 5 Flow session
      starts (first Flow play of a session, as in :mod:`pipeline.data.examples`) -- the
      recent record on exactly the kind of play predicted.
    - ``sequence_cur_session_skips`` / ``sequence_cur_session_rate``: skips and listen rate
      in the current session so far (0 and the user's rate when the target opens a session).
    - ``sequence_prev_session_skips`` / ``sequence_prev_session_rate``: the same over the
      user's last complete session (the session of the previous play when the target
      opens a new one, else the one before the current session).
    """
    n = len(targets)
    t = targets["ts_listen"].to_numpy().astype(np.int64)
    idx, start, end = history.locate(targets, "user_id")
    sess = history.user_sessions()
    y, flow = history.y, history.flow
    y_s = y[idx.order]
    flow_s = flow[idx.order] > 0
    cy = _csum0(y_s)
    flows = _Subset(flow_s, y_s)
    # Flow session starts (first Flow play of a session): the very kind of play predicted.
    starts_s = flow_s & (flows.before[:-1] == flows.before[sess.session_start])
    starts = _Subset(starts_s, y_s)
    start_flag = np.zeros(len(y))
    start_flag[idx.order] = starts_s

    # As-of global priors; a rate with nothing behind it falls back to a broader one.
    g_n, gs = history.global_asof(t, {"y": y, "f": flow, "fy": y * flow, "s": start_flag, "sy": y * start_flag})
    gs["n"] = g_n
    g = _rate(gs["y"], gs["n"], EMPTY_PRIOR)
    g_flow = _rate(gs["fy"], gs["f"], g)
    g_start = _rate(gs["sy"], gs["s"], g_flow)

    has = end > start
    last = np.where(has, end - 1, 0)
    everything = np.iinfo(np.int64).max
    u = _smooth(cy[end] - cy[start], (end - start).astype(np.float64), g, history.settings.prior_strength)
    u_flow = _smooth(*flows.last(start, end, everything), g_flow, history.settings.prior_strength)
    u_start = _smooth(*starts.last(start, end, everything), g_start, history.settings.prior_strength)

    out: dict[str, np.ndarray] = {
        "sequence_last_listened": _take(y_s, last, has, np.nan),
        "sequence_last_flow": _take(flow_s.astype(np.float64), last, has, np.nan),
    }
    pos = np.arange(len(idx))
    last_listen = np.maximum.accumulate(np.where(y_s > 0, pos, -1)) if len(idx) else pos
    ll = _take(last_listen, last, has, -1).astype(np.int64)
    out["sequence_skip_streak"] = np.where(has, last - np.maximum(ll, start - 1), 0)

    for w in WINDOWS:
        lo = np.maximum(start, end - w)
        out[f"sequence_rate_last_{w}"] = _smooth(cy[end] - cy[lo], end - lo, u, WINDOW_STRENGTH)
    for w in FLOW_WINDOWS:
        out[f"sequence_flow_rate_last_{w}"] = _smooth(*flows.last(start, end, w), u_flow, WINDOW_STRENGTH)
    out[f"sequence_flow_start_rate_last_{START_WINDOW}"] = _smooth(
        *starts.last(start, end, START_WINDOW), u_start, WINDOW_STRENGTH
    )

    # Sessions: the target continues the previous play's session unless the gap is too long.
    last_ts = _take(idx.ts_sorted, last, has, np.nan)
    cont = has & ((t - last_ts) <= history.gap_seconds)
    ss_last = _take(sess.session_start, last, has, 0).astype(np.int64)
    cur_lo = np.where(cont, ss_last, end)
    prev_ok = cont & (ss_last > start)
    before_cur = np.where(prev_ok, ss_last - 1, 0)
    opened = has & ~cont
    p_lo = np.select([opened, prev_ok], [ss_last, _take(sess.session_start, before_cur, prev_ok, 0)], 0).astype(
        np.int64
    )
    p_hi = np.select([opened, prev_ok], [end, ss_last], 0).astype(np.int64)
    for name, lo, hi in (("cur", cur_lo, end), ("prev", p_lo, p_hi)):
        plays = (hi - lo).astype(np.float64)
        listens = cy[hi] - cy[lo]
        out[f"sequence_{name}_session_skips"] = plays - listens
        out[f"sequence_{name}_session_rate"] = _smooth(listens, plays, u, WINDOW_STRENGTH)
    return pd.DataFrame({k: np.asarray(v, dtype=np.float32) for k, v in out.items()}, index=pd.RangeIndex(n))
