"""User group: how this user listens -- overall, in Flow, in this context, on this device, lately."""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.schema import BROKEN_CLOCK_BEFORE
from features.asof import logit, range_sum, ranges_within, smooth
from features.history import GLOBAL_PSEUDO, History

__all__ = ["user_features", "flow_session_starts"]

_DAY = 86400
#: Half-lives (days) of the recency-weighted listen rate over all plays: a short one for
#: the current mood, a longer one for the user's drift over weeks.
HALF_LIVES_DAYS = (3.0, 14.0)
#: Half-life (days) of the recency-weighted listen rate over Flow plays only.
FLOW_HALF_LIFE_DAYS = 14.0
#: Decay weights are ``2 ** e`` with ``e`` at most this, so no float64 overflow even when a
#: user's valid clock spans more than 1000 half-lives (then the oldest rows saturate).
_MAX_EXP2 = 1000.0


def _shift(rate: np.ndarray, to: np.ndarray, frm: np.ndarray) -> np.ndarray:
    """``rate`` moved in log-odds by the gap from ``frm`` to ``to``: a user's prior in a narrower kind of play."""
    return 1.0 / (1.0 + np.exp(-(logit(rate) + logit(to) - logit(frm))))


def _flow_session_starts_sorted(history: History) -> np.ndarray:
    """Per row of the user index (sorted order): True on the first Flow play of its session.

    The same definition as the examples' targets (pipeline.data.examples), so the user's rate on
    these rows is their rate on exactly the kind of play the model predicts.  It depends
    only on the row and the user's earlier rows, so it is past-only.
    """
    idx = history.index("user_id")
    sess = history.user_sessions()
    flow_sorted = history.flow[idx.order] > 0
    before = np.concatenate([[0], np.cumsum(flow_sorted, dtype=np.int64)])  # flows in [0, i)
    flows_earlier_in_session = before[:-1] - before[sess.session_start]
    return flow_sorted & (flows_earlier_in_session == 0)


def flow_session_starts(history: History) -> np.ndarray:
    """Per history row (original order): 1.0 on the first Flow play of its session (the predicted kind of play)."""
    out = np.zeros(len(history))
    out[history.index("user_id").order] = _flow_session_starts_sorted(history)
    return out


def _decayed_sums(
    history: History, t: np.ndarray, start: np.ndarray, end: np.ndarray, half_life_days: float, values: dict
) -> tuple[np.ndarray, dict]:
    """Recency-weighted count and sums of the user's rows before ``t``, weight ``2 ** (-(t - ts) / h)``.

    ``values`` are per row in the user index's sorted order.  Weights are computed relative
    to the user's first valid-clock play (an anchor in the past of any target that has a
    valid row before it), accumulated per user (a segmented cumulative sum, so no
    cancellation between users of very different scales), and the anchor is cancelled at
    query time in log space.  Broken-clock rows (``ts < core.schema.BROKEN_CLOCK_BEFORE``) get weight 0: their
    age is unknown.  Returns the decayed count ``D`` and sums, 0 where there is nothing.
    """
    idx = history.index("user_id")
    ts = idx.ts_sorted.astype(np.int64)
    if len(ts) == 0:
        return np.zeros(len(t)), {name: np.zeros(len(t)) for name in values}
    h = half_life_days * _DAY
    codes = idx.codes_sorted
    valid = ts >= BROKEN_CLOCK_BEFORE
    # First valid row of each user (broken clocks sort first within a user).  A user with
    # no valid row gets a meaningless anchor, but all their weights are 0 anyway.
    _, first_valid = idx.locate(idx.uniq, np.full(len(idx.uniq), BROKEN_CLOCK_BEFORE, dtype=np.int64))
    anchor = ts[np.minimum(first_valid, len(ts) - 1)][codes]
    w = np.zeros(len(ts))
    w[valid] = np.exp2(np.minimum((ts[valid] - anchor[valid]) / h, _MAX_EXP2))
    has = end > start
    last = np.where(has, end - 1, 0)
    shift = np.zeros(len(t))
    shift[has] = (t[has] - anchor[last[has]]) / h

    def at_target(v: np.ndarray) -> np.ndarray:
        cum = pd.Series(w * v).groupby(codes).cumsum().to_numpy()
        p = np.zeros(len(t))
        p[has] = cum[last[has]]
        out = np.zeros(len(t))
        pos = p > 0
        out[pos] = np.exp2(np.log2(p[pos]) - shift[pos])
        return out

    count = at_target(np.ones(len(ts)))
    return count, {name: at_target(v) for name, v in values.items()}


def user_features(history: History, targets: pd.DataFrame) -> pd.DataFrame:
    """The user's listening behaviour before the target: how much, how often they listen through, where, lately.

    The strongest signal in DSG17 is the user: listen rates are spread wide across users
    (sd ~0.26) and differ sharply between Flow (the machine chose) and non-Flow plays (the
    user chose).  Every rate is additively smoothed with ``prior_strength`` (PRIOR_STRENGTH)
    pseudo-plays toward an as-of prior (computed from all users' rows before the target,
    so it is past-only too): the global rate, the global Flow / non-Flow rate, or the
    global rate of the target's context / platform.

    - ``user_log_plays``, ``user_log_flow_plays``: log1p of the user's plays, and Flow plays.
    - ``user_rate``: smoothed listen rate over all the user's plays.
    - ``user_flow_rate`` / ``user_nonflow_rate``: over the user's Flow / non-Flow plays.
    - ``user_flow_lift``: ``user_flow_rate - user_rate`` -- how much worse the user takes
      what Flow proposes than what they choose.
    - ``user_flow_start_rate``: over the user's Flow session starts (first Flow play of a
      session, the very kind of play predicted), toward the global Flow-start rate.
    - ``user_flow_share``: share of the user's plays that are Flow (smoothed toward the
      global share) -- a Flow-centred listener vs. one who picks.
    - ``user_ctx_rate``, ``user_log_ctx_plays``: rate and log1p count in the target's
      ``context_type`` (prior: the global rate in that context).
    - ``user_platform_rate``, ``user_platform_share``: rate on the target's
      ``platform_name`` (prior: global rate on that platform) and the share of the user's
      plays made there (NaN without plays) -- an unusual device is an unusual moment.
    - ``user_rate_hl3d``, ``user_rate_hl14d``, ``user_flow_rate_hl14d``: recency-weighted
      rates (each play weighted ``2 ** (-age / half_life)``, ratio form, so the time scale
      cancels), smoothed with the decayed count toward the user's ``user_rate`` (resp.
      ``user_flow_rate``): lately the user skips more or less than usual.  Broken-clock
      plays have unknown age and weight 0.
    - ``user_log_recent_plays_hl3d``: log1p of the 3-day decayed play count -- current activity.
    - ``user_active_days``: distinct UTC days with a valid-clock play.
    - ``user_days_since_first``: days since the user's first valid-clock play (NaN when
      none, or the target's clock is broken) -- seniority.
    - ``user_flow_rate_own``: the user's Flow rate shrunk toward the user's OWN overall rate
      (moved by the global Flow-vs-all gap in log-odds), not toward everyone's Flow rate: a
      user with three Flow plays is still mostly themselves.  ``user_flow_start_rate_own``:
      the Flow session-start rate shrunk the same way toward ``user_flow_rate_own`` (moved
      by the global start-vs-Flow gap).  The chain is global -> user -> user in Flow ->
      user's Flow starts, each with ``prior_strength`` pseudo-plays.
    - ``user_flow_gap_logit``, ``user_flow_start_gap_logit``: log-odds of those two minus
      that of ``user_rate`` -- the user's own Flow attitude, apart from how much they skip.
      (Measured on two 2,000-user sets, one per generator: with the prior moved by the global
      gap, the gap carried slightly more new information than with the user's rate as is.)
    """
    k = history.settings.prior_strength
    n = len(targets)
    t = targets["ts_listen"].to_numpy().astype(np.int64)
    y = history.y
    flow = history.flow

    idx, s, e = history.locate(targets, "user_id")
    order = idx.order
    fss = flow_session_starts(history)
    fss_sorted = fss[order]

    # Global as-of priors: prefix sums over the history sorted by time.
    g_n, g = history.global_asof(t, {"y": y, "f": flow, "fy": flow * y, "s": fss, "sy": fss * y})
    g_rate = smooth(g["y"], g_n, 0.5, GLOBAL_PSEUDO)
    g_flow_rate = smooth(g["fy"], g["f"], g_rate, k)
    g_nonflow_rate = smooth(g["y"] - g["fy"], g_n - g["f"], g_rate, k)
    g_start_rate = smooth(g["sy"], g["s"], g_flow_rate, k)
    g_flow_share = smooth(g["f"], g_n, 0.5, GLOBAL_PSEUDO)

    # The user's own counts.
    u_n = (e - s).astype(np.float64)
    y_s, f_s = y[order], flow[order]
    u_y = range_sum(y_s, s, e)
    u_f = range_sum(f_s, s, e)
    u_fy = range_sum(f_s * y_s, s, e)
    u_s = range_sum(fss_sorted, s, e)
    u_sy = range_sum(fss_sorted * y_s, s, e)
    user_rate = smooth(u_y, u_n, g_rate, k)
    user_flow_rate = smooth(u_fy, u_f, g_flow_rate, k)

    out: dict[str, np.ndarray] = {
        "user_log_plays": np.log1p(u_n),
        "user_log_flow_plays": np.log1p(u_f),
        "user_rate": user_rate,
        "user_flow_rate": user_flow_rate,
        "user_nonflow_rate": smooth(u_y - u_fy, u_n - u_f, g_nonflow_rate, k),
        "user_flow_lift": user_flow_rate - user_rate,
        "user_flow_start_rate": smooth(u_sy, u_s, g_start_rate, k),
        "user_flow_share": smooth(u_f, u_n, g_flow_share, k),
    }
    # Hierarchical Flow propensity: global -> the user overall -> the user in Flow -> the user's
    # Flow session starts, each level shrunk toward the one above it moved by the global gap.
    user_flow_own = smooth(u_fy, u_f, _shift(user_rate, g_flow_rate, g_rate), k)
    user_start_own = smooth(u_sy, u_s, _shift(user_flow_own, g_start_rate, g_flow_rate), k)
    out["user_flow_rate_own"] = user_flow_own
    out["user_flow_start_rate_own"] = user_start_own
    out["user_flow_gap_logit"] = logit(user_flow_own) - logit(user_rate)
    out["user_flow_start_gap_logit"] = logit(user_start_own) - logit(user_rate)

    # Context and platform of the target: the user's rate there, toward the global rate there.
    # The user's code in the index where they have rows before the target (else -1: nothing to find).
    u_code = np.where(e > s, idx.codes_sorted[np.minimum(s, max(len(idx) - 1, 0))] if len(idx) else -1, -1)
    for col, name in (("context_type", "ctx"), ("platform_name", "platform")):
        hcol, qcol = history.col(col), targets[col].to_numpy()
        c_n, c = history.global_asof_in(col, qcol, t, {"y": y})
        c_prior = smooth(c["y"], c_n, g_rate, k)
        perm, us, ue = ranges_within(hcol[order], idx.codes_sorted, len(idx.uniq), idx.ts_sorted, qcol, u_code, t)
        uc_n = (ue - us).astype(np.float64)
        out[f"user_{name}_rate"] = smooth(range_sum(y_s[perm], us, ue), uc_n, c_prior, k)
        if name == "ctx":
            out["user_log_ctx_plays"] = np.log1p(uc_n)
        else:
            out["user_platform_share"] = np.where(u_n > 0, uc_n / np.maximum(u_n, 1.0), np.nan)

    # Recency-weighted rates.
    for hl in HALF_LIVES_DAYS:
        d_n, d = _decayed_sums(history, t, s, e, hl, {"y": y_s})
        out[f"user_rate_hl{hl:g}d"] = smooth(d["y"], d_n, user_rate, k)
        if hl == HALF_LIVES_DAYS[0]:
            out[f"user_log_recent_plays_hl{hl:g}d"] = np.log1p(d_n)
    _, d = _decayed_sums(history, t, s, e, FLOW_HALF_LIFE_DAYS, {"f": f_s, "fy": f_s * y_s})
    out[f"user_flow_rate_hl{FLOW_HALF_LIFE_DAYS:g}d"] = smooth(d["fy"], d["f"], user_flow_rate, k)

    # Activity: distinct valid days, seniority.
    ts_s = idx.ts_sorted.astype(np.int64)
    day = ts_s // _DAY
    new_day = np.ones(len(ts_s), dtype=bool)
    if len(ts_s) > 1:
        new_day[1:] = (idx.codes_sorted[1:] != idx.codes_sorted[:-1]) | (day[1:] != day[:-1])
    out["user_active_days"] = range_sum(new_day & (ts_s >= BROKEN_CLOCK_BEFORE), s, e)
    _, first_valid = idx.locate(
        targets["user_id"].to_numpy().astype(np.int64), np.full(n, BROKEN_CLOCK_BEFORE, dtype=np.int64)
    )
    has_valid = first_valid < e
    since_first = np.full(n, np.nan)
    since_first[has_valid] = (t[has_valid] - ts_s[first_valid[has_valid]]) / _DAY
    out["user_days_since_first"] = since_first

    columns = [
        "user_log_plays",
        "user_log_flow_plays",
        "user_rate",
        "user_flow_rate",
        "user_nonflow_rate",
        "user_flow_lift",
        "user_flow_start_rate",
        "user_flow_share",
        "user_ctx_rate",
        "user_log_ctx_plays",
        "user_platform_rate",
        "user_platform_share",
        *(f"user_rate_hl{hl:g}d" for hl in HALF_LIVES_DAYS),
        f"user_flow_rate_hl{FLOW_HALF_LIFE_DAYS:g}d",
        f"user_log_recent_plays_hl{HALF_LIVES_DAYS[0]:g}d",
        "user_active_days",
        "user_days_since_first",
        "user_flow_rate_own",
        "user_flow_start_rate_own",
        "user_flow_gap_logit",
        "user_flow_start_gap_logit",
    ]
    return pd.DataFrame({c: np.asarray(out[c], dtype=np.float32) for c in columns})
