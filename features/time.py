"""Time group: when the play happens, and where it sits in the user's listening rhythm."""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.schema import BROKEN_CLOCK_BEFORE
from features.asof import combine_keys
from features.history import History

__all__ = ["time_features"]

_DAY = 86400
#: Hours per part of the day: 0 night [0, 6), 1 morning [6, 12), 2 afternoon [12, 18), 3 evening [18, 24).
_PART_OF_DAY_HOURS = 6
#: 1970-01-01 was a Thursday: shift so that Monday is 0.
_EPOCH_WEEKDAY = 3


def _take(arr: np.ndarray, pos: np.ndarray, mask: np.ndarray, fill: float) -> np.ndarray:
    """``arr[pos]`` where ``mask``, ``fill`` elsewhere, in float64 (safe on an empty ``arr``)."""
    out = np.full(len(pos), fill, dtype=np.float64)
    out[mask] = arr[pos[mask]]
    return out


def _log_gap(later: np.ndarray, earlier: np.ndarray) -> np.ndarray:
    """``log1p(later - earlier)`` seconds; NaN where either end is missing or a broken clock."""
    ok = (later >= BROKEN_CLOCK_BEFORE) & (earlier >= BROKEN_CLOCK_BEFORE)
    out = np.full(len(later), np.nan)
    out[ok] = np.log1p(np.maximum(later[ok] - earlier[ok], 0.0))
    return out


def time_features(history: History, targets: pd.DataFrame) -> pd.DataFrame:
    """Clock and rhythm of the play: calendar position and the user's session state just before it.

    Calendar (UTC, from the target's own ``ts_listen``; NaN on broken clocks, i.e.
    ``ts < BROKEN_CLOCK_BEFORE``) -- listening habits and attention follow the clock:

    - ``time_hour`` (0-23), ``time_weekday`` (Monday 0), ``time_day_of_month`` (1-31),
      ``time_part_of_day`` (0 night 0-6 h, 1 morning, 2 afternoon, 3 evening).

    Rhythm (from the user's history rows strictly before the target; the same sessions
    as :meth:`History.user_sessions`, a gap above ``history.gap_seconds`` opens one):

    - ``time_log_since_prev``: log1p seconds since the user's previous play (NaN when
      there is none, or when either clock is broken -- a gap across a broken clock
      means nothing).
    - ``time_first_of_session``: 1 when the target opens a session (no previous play,
      or the raw gap exceeds the session gap; a broken previous clock counts as a
      huge gap, as it does in the history's sessions).
    - ``time_session_position``: the user's plays in the current session before the
      target (0 when it opens a session) -- a user already listening is engaged.
    - ``time_plays_today``: the user's plays earlier the same UTC day (NaN on a broken clock).
    - ``time_prev_session_plays`` / ``time_prev_session_log_seconds``: size and log1p
      duration of the user's last complete session (the session of the previous play
      when the target opens a new one, else the one before the current session);
      0 plays and NaN duration when there is none -- long sessions mark engaged users.
    - ``time_log_since_prev_flow``: log1p seconds since the user's previous Flow play
      (NaN when none or a broken clock) -- how fresh the Flow experience is.
    """
    n = len(targets)
    t = targets["ts_listen"].to_numpy().astype(np.int64)
    valid = t >= BROKEN_CLOCK_BEFORE
    tf = t.astype(np.float64)

    hour = np.where(valid, (t // 3600) % 24, np.nan)
    weekday = np.where(valid, (t // _DAY + _EPOCH_WEEKDAY) % 7, np.nan)
    day = t.astype("datetime64[s]").astype("datetime64[D]")
    dom = (day - day.astype("datetime64[M]").astype("datetime64[D]")).astype(np.int64) + 1
    day_of_month = np.where(valid, dom, np.nan)
    part = np.where(valid, hour // _PART_OF_DAY_HOURS, np.nan)

    idx, start, end = history.locate(targets, "user_id")
    sess = history.user_sessions()
    has = end > start
    last = np.where(has, end - 1, 0)
    last_ts = _take(idx.ts_sorted, last, has, np.nan)
    gap = tf - last_ts
    first = ~has | (gap > history.gap_seconds)
    cont = ~first

    ss_last = _take(sess.session_start, last, has, 0).astype(np.int64)
    position = np.where(cont, end - ss_last, 0)

    # Plays today: rows of the user in [day start, t).
    day_start = t - t % _DAY
    _, end_day = idx.locate(combine_keys(targets["user_id"].to_numpy()), day_start)
    plays_today = np.where(valid, end - end_day, np.nan)

    # Last complete session [p_lo, p_hi): the previous play's session when the target opens a
    # new one, else the session before the current one (empty when there is none).
    prev_ok = cont & (ss_last > start)
    before_cur = np.where(prev_ok, ss_last - 1, 0)
    opened = first & has
    p_lo = np.select([opened, prev_ok], [ss_last, _take(sess.session_start, before_cur, prev_ok, 0)], 0).astype(
        np.int64
    )
    p_hi = np.select([opened, prev_ok], [end, ss_last], 0).astype(np.int64)
    p_n = p_hi - p_lo
    p_has = p_n > 0
    p_first_ts = _take(idx.ts_sorted, p_lo, p_has, np.nan)
    p_last_ts = _take(idx.ts_sorted, p_hi - 1, p_has, np.nan)
    p_log_seconds = np.where(p_has, np.log1p(np.maximum(p_last_ts - p_first_ts, 0.0)), np.nan)

    # Previous Flow play: last Flow row at or before each sorted position, if it is the user's.
    flow_sorted = history.flow[idx.order] > 0
    last_flow = np.maximum.accumulate(np.where(flow_sorted, np.arange(len(idx)), -1)) if len(idx) else np.zeros(0, int)
    lf = _take(last_flow, last, has, -1).astype(np.int64)
    lf_has = has & (lf >= start)
    lf_ts = _take(idx.ts_sorted, lf, lf_has, np.nan)

    out = {
        "time_hour": hour,
        "time_weekday": weekday,
        "time_day_of_month": day_of_month,
        "time_part_of_day": part,
        "time_log_since_prev": _log_gap(tf, last_ts),
        "time_first_of_session": first.astype(np.float64),
        "time_session_position": position,
        "time_plays_today": plays_today,
        "time_prev_session_plays": p_n,
        "time_prev_session_log_seconds": p_log_seconds,
        "time_log_since_prev_flow": _log_gap(tf, lf_ts),
    }
    return pd.DataFrame({k: np.asarray(v, dtype=np.float32) for k, v in out.items()}, index=pd.RangeIndex(n))
