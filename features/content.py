"""Content match: how well the candidate's genre, artist, era and length fit the user's past.

The hybrid-recommender side of the features: the user's as-of taste profile over
genres and artists (counts of plays and listens strictly before the target) compared
with the candidate, and the typical release year and duration of what the user
listened to compared with the candidate's.  All sums come from cumulative sums over
the user's time-sorted rows, so every statistic is as of the target's time.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.asof import AsOfIndex
from features.history import History

__all__ = ["content_features"]

#: Fewer listened tracks (with a valid year or duration) than this: no profile, NaN.
MIN_PROFILE_LISTENS = 3
#: Floors added to the user's standard deviation (years; natural log of seconds), so a
#: user who listened to a single era does not turn one year off into a huge z-score.
YEAR_STD_FLOOR = 1.0
LOG_DURATION_STD_FLOOR = 0.1
#: Release years outside this range are placeholders (19000101, 30000101) or junk.
YEAR_RANGE = (1901, 2099)
#: Log durations are summed as integers in steps of 1/_LOG_DUR_SCALE: exact sums.
_LOG_DUR_SCALE = 256
#: Years are summed centred on this, so squares stay small.
_YEAR_CENTRE = 2000


def _prefix(values_sorted: np.ndarray) -> np.ndarray:
    """Cumulative sum with a leading zero (int64 for integer input: exact range sums)."""
    v = np.asarray(values_sorted)
    dtype = np.int64 if np.issubdtype(v.dtype, np.integer) or v.dtype == bool else np.float64
    out = np.zeros(len(v) + 1, dtype=dtype)
    np.cumsum(v, dtype=dtype, out=out[1:])
    return out


def _range_sum(idx: AsOfIndex, values: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Sum of per-row ``values`` over each sorted range ``[start, end)`` of ``idx``."""
    c = _prefix(np.asarray(values)[idx.order])
    return c[end] - c[start]


def _sq_increments(idx: AsOfIndex, y: np.ndarray) -> np.ndarray:
    """Per history row, how much the row adds to the user's sum of squared per-key listens.

    ``idx`` is keyed by (user, item).  A listen of a key the user had listened to ``l``
    times adds ``(l + 1)^2 - l^2 = 2 l + 1``; a skip adds 0.  Summed over a user's
    rows before ``t`` this is ``sum_k listens_k(t)^2``, the squared length of the
    user's listen profile, without materializing the profile.
    """
    n = len(idx)
    ys = y[idx.order]
    c = _prefix(ys)
    new = np.ones(n, dtype=bool)
    if n > 1:
        new[1:] = idx.codes_sorted[1:] != idx.codes_sorted[:-1]
    gstart = np.maximum.accumulate(np.where(new, np.arange(n), 0)) if n else np.zeros(0, dtype=np.int64)
    before = c[:-1] - c[gstart]
    inc = np.empty(n, dtype=np.int64)
    inc[idx.order] = ys * (2 * before + 1)
    return inc


def _div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` in float64, NaN where ``den`` is 0."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.full(len(num), np.nan)
    ok = den > 0
    out[ok] = num[ok] / den[ok]
    return out


def _year(release_date: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Release year (int64) and whether it is a real one (not a placeholder)."""
    year = np.asarray(release_date, dtype=np.int64) // 10000
    return year, (year >= YEAR_RANGE[0]) & (year <= YEAR_RANGE[1])


def _log_duration(duration: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Quantized ``log1p(duration)`` (int64, in 1/_LOG_DUR_SCALE steps) and validity (duration > 0)."""
    d = np.asarray(duration, dtype=np.float64)
    return np.rint(np.log1p(np.maximum(d, 0)) * _LOG_DUR_SCALE).astype(np.int64), d > 0


def _profile_z(
    idx: AsOfIndex,
    start: np.ndarray,
    end: np.ndarray,
    values: np.ndarray,
    mask: np.ndarray,
    cand: np.ndarray,
    cand_ok: np.ndarray,
    floor: float,
    scale: float,
) -> tuple[np.ndarray, np.ndarray]:
    """(candidate - user mean, z-score) against the user's masked rows before ``t``.

    ``values`` are integers (exact sums); ``scale`` turns them into real units.
    """
    v = np.where(mask, values, 0)
    n = _range_sum(idx, mask.astype(np.int64), start, end)
    s1 = _range_sum(idx, v, start, end)
    s2 = _range_sum(idx, v * v, start, end)
    ok = (n >= MIN_PROFILE_LISTENS) & cand_ok
    diff = np.full(len(n), np.nan)
    z = np.full(len(n), np.nan)
    nn = n[ok].astype(np.float64)
    mean = s1[ok] / nn
    var = (n[ok] * s2[ok] - s1[ok] * s1[ok]) / (nn * nn)  # exact integer numerator
    diff[ok] = (cand[ok] - mean) / scale
    z[ok] = diff[ok] / np.sqrt(var / (scale * scale) + floor * floor)
    return diff, z


def content_features(history: History, targets: pd.DataFrame) -> pd.DataFrame:
    """Similarity of the candidate to the user's as-of taste profile (hybrid recommender).

    Uses only the user's own rows strictly before the target.

    - ``content_genre_cos``: cosine between the user's listen profile over genres
      (listens per genre) and the candidate's genre as a one-hot vector, i.e. listens
      in this genre over the profile's length: near 1 when the genre dominates.
    - ``content_artist_cos``: the same cosine over artists.
    - ``content_artist_share``: the user's listens of this artist over all their plays
      (share of plays of the artist weighted by how often they were listened to).
    - ``content_year_diff``: candidate's release year minus the mean release year of
      the tracks the user listened to (years).
    - ``content_year_z``: that difference over the user's spread of years (floored).
    - ``content_duration_z``: z-score of the candidate's log duration against the
      log durations of the tracks the user listened to.

    (The plain share of the user's plays in the genre is ``user_item_genre_share``.)

    NaN where undefined: no past plays (share), no past listens (cosines), fewer than
    ``MIN_PROFILE_LISTENS`` listened tracks with a valid year/duration, or a
    placeholder release date / zero duration on the candidate.
    """
    n_t = len(targets)
    y = (history.y > 0.5).astype(np.int64)
    idx_u, s_u, e_u = history.locate(targets, "user_id")
    n_plays = e_u - s_u
    out: dict[str, np.ndarray] = {}

    for name, column in (("genre", "genre_id"), ("artist", "artist_id")):
        idx_k, s_k, e_k = history.locate(targets, "user_id", column)
        listens_k = _range_sum(idx_k, y, s_k, e_k)
        sq = _range_sum(idx_u, _sq_increments(idx_k, y), s_u, e_u)
        out[f"content_{name}_cos"] = _div(listens_k, np.sqrt(sq.astype(np.float64)))
        if name == "artist":
            out["content_artist_share"] = _div(listens_k, n_plays)

    listened = y > 0
    year, year_ok = _year(history.col("release_date"))
    t_year, t_year_ok = _year(targets["release_date"].to_numpy())
    diff, z = _profile_z(
        idx_u,
        s_u,
        e_u,
        year - _YEAR_CENTRE,
        listened & year_ok,
        (t_year - _YEAR_CENTRE).astype(np.float64),
        t_year_ok,
        YEAR_STD_FLOOR,
        1.0,
    )
    out["content_year_diff"], out["content_year_z"] = diff, z

    dur, dur_ok = _log_duration(history.col("media_duration"))
    t_dur, t_dur_ok = _log_duration(targets["media_duration"].to_numpy())
    _, out["content_duration_z"] = _profile_z(
        idx_u,
        s_u,
        e_u,
        dur,
        listened & dur_ok,
        t_dur.astype(np.float64),
        t_dur_ok,
        LOG_DURATION_STD_FLOOR,
        _LOG_DUR_SCALE,
    )

    cols = [
        "content_genre_cos",
        "content_artist_cos",
        "content_artist_share",
        "content_year_diff",
        "content_year_z",
        "content_duration_z",
    ]
    return pd.DataFrame({c: np.asarray(out[c], dtype=np.float32) for c in cols}, index=pd.RangeIndex(n_t))
