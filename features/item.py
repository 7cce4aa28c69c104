"""Item group: how popular the track, album, artist and genre are, and how often they are listened through."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.asof import combine_keys, range_sum, smooth
from features.history import GLOBAL_PSEUDO, History

__all__ = ["item_features"]

#: Item levels, finest last.  Rates are smoothed down this chain: artist toward the global
#: rate, album toward its artist, track toward its album (genre stands apart: genre 0 is
#: "unknown" on about half the rows and is kept as a key of its own).
ITEM_KEYS = ("genre", "artist", "album", "media")
#: Levels that also get a plays-per-listener ratio (repeat listening marks a liked item).
REPEAT_KEYS = ("artist", "media")
#: Popularity unit: plays per million of all plays before the target.
_PER = 1e6


def _first_listen_of_pair(history: History, col: str, order: np.ndarray) -> np.ndarray:
    """In the sorted ``order`` of the ``col`` index: True on the earliest play of each (``col``, user) pair.

    Counting these over an item's rows before ``t`` gives its distinct listeners before
    ``t`` (a pair's earliest play is before ``t`` whenever any of its plays is).  The index
    is sorted by (item, time), so the first occurrence of a pair in that order is its
    earliest play; a hash-based ``duplicated`` finds it in linear time.
    """
    key = combine_keys(history.col(col), history.col("user_id"))[order]
    return ~pd.Series(key).duplicated().to_numpy()


def item_features(history: History, targets: pd.DataFrame) -> pd.DataFrame:
    """Popularity and listen-through rates of the target's track, album, artist and genre before the target.

    Some tracks are skipped by almost everyone, some artists are listened through; the
    Flow recommender proposes both.  For each level ``<k>`` in genre, artist, album,
    media (track), from all users' plays strictly before the target:

    - ``item_<k>_log_plays``: log1p of its plays.
    - ``item_<k>_pop``: log1p of its plays per million plays (of everything) before the
      target -- popularity as a share, comparable across rounds at different dates while
      the history keeps growing.
    - ``item_<k>_rate``: listen rate smoothed with ``prior_strength`` (PRIOR_STRENGTH) pseudo-plays
      toward an as-of prior that follows the hierarchy: genre and artist toward the global
      rate, album toward its artist's smoothed rate, track toward its album's -- a track
      with few plays borrows from its album and artist, not from the whole catalogue.
    - ``item_<k>_flow_rate``: the same over its Flow plays only (the chain built from Flow
      rates, ending at the global Flow rate): how the item fares when Flow proposes it.
    - ``item_artist_plays_per_user``, ``item_media_plays_per_user``: plays per distinct
      listener (NaN when never played) -- items people come back to.

    Genre 0 means "unknown" (about half the rows); it is kept as its own key, so its
    features describe the unknown-genre bucket.
    """
    k = history.settings.prior_strength
    t = targets["ts_listen"].to_numpy().astype(np.int64)
    y = history.y
    flow = history.flow
    fy = flow * y

    g_n, g = history.global_asof(t, {"y": y, "f": flow, "fy": fy})
    g_rate = smooth(g["y"], g_n, 0.5, GLOBAL_PSEUDO)
    g_flow_rate = smooth(g["fy"], g["f"], g_rate, k)

    out: dict[str, np.ndarray] = {}
    parent: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for key in ITEM_KEYS:
        col = f"{key}_id"
        idx, s, e = history.locate(targets, col)
        order = idx.order
        n_k = (e - s).astype(np.float64)
        prior, flow_prior = parent.get({"album": "artist", "media": "album"}.get(key, ""), (g_rate, g_flow_rate))
        rate = smooth(range_sum(y[order], s, e), n_k, prior, k)
        flow_rate = smooth(range_sum(fy[order], s, e), range_sum(flow[order], s, e), flow_prior, k)
        parent[key] = (rate, flow_rate)
        out[f"item_{key}_log_plays"] = np.log1p(n_k)
        out[f"item_{key}_pop"] = np.log1p(_PER * n_k / np.maximum(g_n, 1.0))
        out[f"item_{key}_rate"] = rate
        out[f"item_{key}_flow_rate"] = flow_rate
        if key in REPEAT_KEYS:
            users = range_sum(_first_listen_of_pair(history, col, order), s, e)
            out[f"item_{key}_plays_per_user"] = np.where(users > 0, n_k / np.maximum(users, 1.0), np.nan)

    return pd.DataFrame({c: np.asarray(v, dtype=np.float32) for c, v in out.items()})
