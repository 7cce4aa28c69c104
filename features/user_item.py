"""User x item group: this user's own history with the target's track, album, artist and genre."""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.schema import BROKEN_CLOCK_BEFORE
from features.asof import range_sum, smooth
from features.history import GLOBAL_PSEUDO, History

__all__ = ["user_item_features", "first_plays"]

#: Item levels crossed with the user, coarsest first.
PAIR_KEYS = ("genre", "artist", "album", "media")
#: Pseudo-plays pulling a user x item rate toward the user's own rate.  Lighter than
#: ``prior_strength`` (PRIOR_STRENGTH): a pair is rarely played more than a few times, and a user
#: who skipped a track twice has told us something the user's average does not.
PAIR_PRIOR_STRENGTH = 5.0
#: Levels whose "first play by this user" rows define the user's taste for novelty.
NOVELTY_KEYS = ("artist", "media")


def first_plays(history: History, key: str) -> np.ndarray:
    """Per history row (original order): 1.0 on the user's first play of the row's ``key`` (artist, media...)."""
    idx = history.index("user_id", f"{key}_id")
    first = np.ones(len(idx), dtype=bool)
    first[1:] = idx.codes_sorted[1:] != idx.codes_sorted[:-1]
    out = np.zeros(len(idx))
    out[idx.order] = first
    return out


def user_item_features(history: History, targets: pd.DataFrame) -> pd.DataFrame:
    """The user's past with this track, album, artist and genre: how often, how recently, listened through or not.

    A user's taste is personal: the same artist is a favourite for one and a skip for
    another, and a track the user skipped last time is likely skipped again.  From the
    target user's plays strictly before the target:

    - ``user_item_<k>_log_plays`` (``<k>`` in genre, artist, album, media): log1p of the
      user's plays of the target's genre / artist / album / track.
    - ``user_item_<k>_rate``: the user's listen rate on it, smoothed with
      ``PAIR_PRIOR_STRENGTH`` pseudo-plays toward the user's own as-of rate (itself
      smoothed with ``prior_strength`` (PRIOR_STRENGTH) toward the global as-of rate): above the
      user's usual rate means a liked item.
    - ``user_item_media_played``: 1 if the user played this track before.
    - ``user_item_media_since_s``, ``user_item_artist_since_s``: seconds since the user
      last played this track / artist (NaN if never, or across a broken clock).
    - ``user_item_media_last_listened``, ``user_item_artist_last_listened``: whether that
      last play was listened through (NaN if never).
    - ``user_item_artist_share``, ``user_item_genre_share``: share of the user's plays
      that were this artist / genre (NaN without plays) -- how central it is to the user.
    - ``user_item_new_artist_rate``, ``user_item_new_media_rate``: the user's listen rate
      on their first plays of an artist / a track (smoothed with ``prior_strength`` (PRIOR_STRENGTH)
      toward the global as-of rate on first plays) -- how the user takes novelty, which
      is what Flow often proposes; read it together with ``user_item_media_played``.

    Genre 0 ("unknown", about half the rows) is kept as a genre of its own.
    """
    k = history.settings.prior_strength
    n = len(targets)
    t = targets["ts_listen"].to_numpy().astype(np.int64)
    y = history.y

    pairs = {key: history.locate(targets, "user_id", f"{key}_id") for key in PAIR_KEYS}
    # First play of each (user, item) pair: the first row of its run in the pair index.
    first_play = {key: first_plays(history, key) for key in NOVELTY_KEYS}

    values = {"y": y}
    for key, f in first_play.items():
        values[f"new_{key}"], values[f"new_{key}_y"] = f, f * y
    g_n, g = history.global_asof(t, values)
    g_rate = smooth(g["y"], g_n, 0.5, GLOBAL_PSEUDO)
    uidx, us, ue = history.locate(targets, "user_id")
    u_n = (ue - us).astype(np.float64)
    user_rate = smooth(range_sum(y[uidx.order], us, ue), u_n, g_rate, k)

    out: dict[str, np.ndarray] = {}
    for key in PAIR_KEYS:
        idx, s, e = pairs[key]
        p_n = (e - s).astype(np.float64)
        out[f"user_item_{key}_log_plays"] = np.log1p(p_n)
        out[f"user_item_{key}_rate"] = smooth(range_sum(y[idx.order], s, e), p_n, user_rate, PAIR_PRIOR_STRENGTH)
        if key == "media":
            out["user_item_media_played"] = (p_n > 0).astype(np.float64)
        if key in ("media", "artist"):
            has = e > s
            last_pos = np.where(has, e - 1, 0)
            last_ts = idx.last_ts(s, e)
            ok = has & (last_ts >= BROKEN_CLOCK_BEFORE)
            since = np.full(n, np.nan)
            since[ok] = t[ok] - last_ts[ok]
            out[f"user_item_{key}_since_s"] = since
            last_y = np.full(n, np.nan)
            if has.any():
                last_y[has] = y[idx.row_at(last_pos[has])]
            out[f"user_item_{key}_last_listened"] = last_y
        if key in ("artist", "genre"):
            out[f"user_item_{key}_share"] = np.where(u_n > 0, p_n / np.maximum(u_n, 1.0), np.nan)

    for key, f in first_play.items():
        g_new_rate = smooth(g[f"new_{key}_y"], g[f"new_{key}"], g_rate, k)
        u_new = range_sum(f[uidx.order], us, ue)
        u_new_y = range_sum((f * y)[uidx.order], us, ue)
        out[f"user_item_new_{key}_rate"] = smooth(u_new_y, u_new, g_new_rate, k)

    return pd.DataFrame({c: np.asarray(v, dtype=np.float32) for c, v in out.items()})
