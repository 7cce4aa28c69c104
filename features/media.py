"""Media group: what the target row itself says about the track and the play, no history needed."""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.schema import BROKEN_CLOCK_BEFORE
from features.history import History

__all__ = ["media_features"]

_DAY = 86400
#: Release dates outside these years are placeholders (19000101, 30000101) or junk: not trusted.
_MIN_RELEASE_YEAR = 1901
_MAX_RELEASE_YEAR = 2099
#: A play at most this many days after the release counts as a new release.
NEW_RELEASE_DAYS = 30
#: Tracks longer than this (seconds) are mixes, podcasts, live sets: skipped or listened differently.
LONG_TRACK_SECONDS = 600

#: Raw categorical codes of the row, passed through as numbers (all low-cardinality).
_RAW_COLUMNS = ("context_type", "platform_name", "platform_family", "listen_type", "user_age", "user_gender")


def _release_day(release_date: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parse ``YYYYMMDD`` ints: (days since epoch, year, trusted mask); NaN where not trusted."""
    rd = np.asarray(release_date, dtype=np.int64)
    y, m, d = rd // 10000, rd // 100 % 100, rd % 100
    ok = (y >= _MIN_RELEASE_YEAR) & (y <= _MAX_RELEASE_YEAR) & (m >= 1) & (m <= 12) & (d >= 1)
    y_c = np.where(ok, y, 1970)
    m_c = np.where(ok, m, 1)
    month = (y_c - 1970).astype("datetime64[Y]").astype("datetime64[M]") + (m_c - 1)
    first = month.astype("datetime64[D]").astype(np.int64)
    month_len = (month + 1).astype("datetime64[D]").astype(np.int64) - first
    ok &= d <= month_len
    days = np.where(ok, first + d - 1, np.nan)
    return days, np.where(ok, y, np.nan), ok


def media_features(history: History, targets: pd.DataFrame) -> pd.DataFrame:
    """Track and context of the play, read from the target row only (``history`` is not used).

    - ``media_release_year``: album release year (NaN when not trusted).
    - ``media_days_since_release``: days from release to the play (negative if played
      before release); NaN when the release date is not trusted or the play's clock is
      broken (``ts < BROKEN_CLOCK_BEFORE``) -- freshness drives curiosity.
    - ``media_release_placeholder``: 1 when ``release_date`` is a placeholder
      (19000101, 30000101), not a calendar date, or outside 1901-2099.
    - ``media_new_release``: released at most ``NEW_RELEASE_DAYS`` days before the play.
    - ``media_before_release``: played before its release date (a data oddity worth flagging).
    - ``media_duration`` (seconds), ``media_long_track`` (> ``LONG_TRACK_SECONDS``),
      ``media_zero_duration`` (duration 0: broken metadata).
    - ``media_genre_unknown``: ``genre_id == 0`` (about half the rows in DSG17).
    - ``media_context_type``, ``media_platform_name``, ``media_platform_family``,
      ``media_listen_type``, ``media_user_age``, ``media_user_gender``: the row's raw
      low-cardinality codes as numbers. The user columns are not media properties; they
      carry the ``media_`` prefix only because a group's columns must, and are here so
      that every model sees the row's own context without extra plumbing.
    """
    n = len(targets)
    t = targets["ts_listen"].to_numpy().astype(np.int64)
    play_ok = t >= BROKEN_CLOCK_BEFORE
    rel_day, year, trusted = _release_day(targets["release_date"].to_numpy())
    days = np.where(play_ok & trusted, (t // _DAY) - rel_day, np.nan)
    dur = targets["media_duration"].to_numpy().astype(np.float64)
    with np.errstate(invalid="ignore"):
        new_release = (days >= 0) & (days <= NEW_RELEASE_DAYS)
        before_release = days < 0

    out = {
        "media_release_year": year,
        "media_days_since_release": days,
        "media_release_placeholder": ~trusted,
        "media_new_release": new_release,
        "media_before_release": before_release,
        "media_duration": dur,
        "media_long_track": dur > LONG_TRACK_SECONDS,
        "media_zero_duration": dur == 0,
        "media_genre_unknown": targets["genre_id"].to_numpy() == 0,
    }
    for c in _RAW_COLUMNS:
        out[f"media_{c}"] = targets[c].to_numpy()
    return pd.DataFrame({k: np.asarray(v, dtype=np.float32) for k, v in out.items()}, index=pd.RangeIndex(n))
