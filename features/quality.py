"""Quality group: how well a track, album, artist and genre fare net of who plays them."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.asof import AsOfIndex, logit, range_sum, smooth
from features.history import GLOBAL_PSEUDO, History, code_hash

__all__ = ["quality_features", "player_rate_per_row"]

#: Item levels, coarsest first: the chain artist -> album -> track backs off a thin level to
#: the level above it; genre stands apart (genre 0 is "unknown" on about half the rows).
CHAIN_KEYS = ("artist", "album", "media")
#: Pseudo-plays (at residual 0, or at the level above) in an item's mean residual.  Residuals
#: are noisy (a play is 0 or 1) and the item effects they average small, so the mean needs
#: many plays: correlation of ``quality_media`` with the base features' out-of-fold error
#: (demo1 / alt1): strength 5 0.015 / 0.005, 20 0.016 / 0.008, 100 0.016 / 0.011, 400 0.014 / 0.013.
QUALITY_PRIOR_STRENGTH = 100.0
_CODE = code_hash(__file__)


def _prefix_before(codes_sorted: np.ndarray, sorted_key: np.ndarray, values: list[np.ndarray]) -> tuple:
    """For rows sorted by (key, ts): count and sums of ``values`` over the key's rows strictly earlier in time.

    A row's own timestamp ties (same key, same ts) are excluded, as ``AsOfIndex.locate``
    would exclude them: both ends are run starts, of the key's rows and of the row's
    (key, ts) run.  Linear time: no search.
    """
    n = len(codes_sorted)
    pos = np.arange(n)
    new_key = np.ones(n, dtype=bool)
    new_run = np.ones(n, dtype=bool)
    if n > 1:
        new_key[1:] = codes_sorted[1:] != codes_sorted[:-1]
        new_run[1:] = sorted_key[1:] != sorted_key[:-1]
    key_start = np.maximum.accumulate(np.where(new_key, pos, 0)) if n else pos
    run_start = np.maximum.accumulate(np.where(new_run, pos, 0)) if n else pos
    count = (run_start - key_start).astype(np.float64)
    sums = []
    for v in values:
        c = np.concatenate([[0.0], np.cumsum(v, dtype=np.float64)])
        sums.append(c[run_start] - c[key_start])
    return count, sums


def player_rate_per_row(history: History, *, by_kind: bool = False) -> np.ndarray:
    """Per history row (original order): the player's smoothed listen rate from their rows strictly before it.

    The user's as-of rate is smoothed with ``prior_strength`` pseudo-plays toward the
    global as-of rate (all users' rows before the row).  With ``by_kind``, the rate is the
    user's in the row's kind of play (Flow or not), smoothed toward the user's overall rate
    moved by the global gap between that kind and all plays (in logit), so a user with few
    Flow plays starts from their own rate, lowered as Flow lowers everyone's.  Everything
    is computed in the user index's (user, time) order and scattered back at the end.
    """
    k = history.settings.prior_strength
    idx = history.index("user_id")
    y = history.y[idx.order]
    flow = history.flow[idx.order]
    u_n, (u_y, u_f, u_fy) = _prefix_before(idx.codes_sorted, idx.sorted_key, [y, flow, flow * y])
    g_n, g = history.global_asof(idx.ts_sorted, {"y": history.y, "f": history.flow, "fy": history.flow * history.y})
    g_rate = smooth(g["y"], g_n, 0.5, GLOBAL_PSEUDO)
    rate = smooth(u_y, u_n, g_rate, k)
    if by_kind:
        is_flow = flow > 0
        g_kind = np.where(
            is_flow, smooth(g["fy"], g["f"], g_rate, k), smooth(g["y"] - g["fy"], g_n - g["f"], g_rate, k)
        )
        prior = _expit(logit(rate) + logit(g_kind) - logit(g_rate))
        # The user's earlier rows of the row's own kind: Flow ones, or all minus the Flow ones.
        k_n = np.where(is_flow, u_f, u_n - u_f)
        k_y = np.where(is_flow, u_fy, u_y - u_fy)
        rate = smooth(k_y, k_n, prior, k)
    out = np.empty(len(rate))
    out[idx.order] = rate
    return out


def _expit(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def quality_features(history: History, targets: pd.DataFrame) -> pd.DataFrame:
    """How the target's track, album, artist and genre fare net of who plays them, before the target.

    The item group's plain listen rate of a track mixes the track with its audience: a good
    track that heavy skippers happen to meet looks bad.  Here each history row gets the
    residual ``r = is_listened - p``, where ``p`` is the player's own smoothed listen rate in
    that row's kind of play (Flow or not) from the player's rows strictly before it
    (:func:`player_rate_per_row`), and an item's quality is the smoothed mean residual over its
    plays before the target -- above 0: people take it better than they usually take what
    they play.  Smoothing (``QUALITY_PRIOR_STRENGTH`` pseudo-plays) backs a thin level off to
    the one above: artist toward 0, album toward its artist, track toward its album; genre (0
    is the "unknown" bucket) toward 0.

    - ``quality_artist``, ``quality_album``, ``quality_media``, ``quality_genre``.

    The play counts behind them are the item group's ``item_<k>_log_plays`` (the same
    rows), so they are not repeated.  Measured against the plain user's overall rate as
    ``p`` (the residual ignoring the kind of play), the kind-aware residual carried a little
    more new information on the demo generator and the same on tools/altgen.py.

    Past-only: a row's residual uses only the player's rows and the global rate strictly
    before that row, and a target averages only rows strictly before it (as-of ranges of
    :mod:`features.asof`), so every input precedes the target.
    """
    k = QUALITY_PRIOR_STRENGTH
    # Per history row, so a function of the history alone: computed once, shared by the train
    # and test builds (it is most of this group's time).
    r = history.memo("quality-residual", lambda: history.y - player_rate_per_row(history, by_kind=True), code=_CODE)
    t = targets["ts_listen"].to_numpy()
    ts = history.col("ts_listen")
    out: dict[str, np.ndarray] = {}
    parent: np.ndarray | float = 0.0
    for key in (*CHAIN_KEYS, "genre"):
        # A local index per level, dropped after use: four cached ones would cost ~0.3 GB each
        # at full size (7.6M rows), and this group needs each only once.
        col = f"{key}_id"
        idx = AsOfIndex(history.col(col), ts, time_order=history.time_order())
        s, e = idx.locate(targets[col].to_numpy(), t)
        m = smooth(range_sum(r[idx.order], s, e), (e - s).astype(np.float64), parent if key != "genre" else 0.0, k)
        out[f"quality_{key}"] = parent = m
        del idx
    return pd.DataFrame({c: np.asarray(v, dtype=np.float32) for c, v in out.items()})
