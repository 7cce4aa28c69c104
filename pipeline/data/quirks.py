"""The real data's quirks and the data summary (``data/interim/data_summary.json``) the report shows.

Quirks are loaded unchanged, not rejected: what each one is and how the pipeline treats
it is stated here once, counted on train and test by :func:`summarize`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from core.schema import BROKEN_CLOCK_BEFORE, TARGET
from pipeline.data.contract import RELEASE_DATE_PLACEHOLDERS

__all__ = ["QUIRKS", "summarize"]

#: The real data's quirks: what each is and how the pipeline treats it (shown in the report).
QUIRKS: dict[str, dict[str, str]] = {
    "broken_clock": {
        "description": "ts_listen before 2010-01-01 (device with a broken clock: values like 1, 865, Jan 1980)",
        "handling": "Loaded unchanged, not an error. The rows keep their place in the history, but time "
        "features (hour, weekday, gaps) are left missing for them (core.schema.BROKEN_CLOCK_BEFORE).",
    },
    "release_date_19000101": {
        "description": "release_date = 19000101, a placeholder for an unknown release date",
        "handling": "Loaded unchanged, not an error. Read as 'release date unknown': release-year and "
        "days-since-release features are left missing for these rows.",
    },
    "release_date_30000101": {
        "description": "release_date = 30000101, a placeholder for an unknown release date",
        "handling": "Loaded unchanged, not an error. Read as 'release date unknown': release-year and "
        "days-since-release features are left missing for these rows.",
    },
    "play_before_release": {
        "description": "played before its release date (valid clock, real release date)",
        "handling": "Loaded unchanged, not an error: album release dates are sometimes later than a "
        "track's first plays, so days since release can be negative.",
    },
    "media_duration_0": {
        "description": "media_duration = 0 (duration unknown)",
        "handling": "Loaded unchanged, not an error. Read as 'duration unknown': flagged "
        "(media_zero_duration) and left out of duration profiles.",
    },
    "genre_id_0": {
        "description": "genre_id = 0 (genre unknown)",
        "handling": "Loaded unchanged, not an error. Read as 'genre unknown' and flagged (media_genre_unknown).",
    },
    "test_media_unseen": {
        "description": "test rows whose media_id never appears in train (cold-start tracks)",
        "handling": "Expected in a cold-start challenge, not an error. Track statistics are empty and "
        "fall back to smoothed priors; artist, album and genre statistics still apply.",
    },
}


# --------------------------------------------------------------------------- summary


def _yyyymmdd(ts: np.ndarray) -> np.ndarray:
    """Unix seconds (>= 0) -> the UTC date as a YYYYMMDD integer, like ``release_date``.

    Integer arithmetic (H. Hinnant's civil-from-days), several times faster than numpy's
    datetime64 month and year conversions on millions of rows.
    """
    z = ts.astype(np.int64) // 86400 + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = np.where(mp < 10, mp + 3, mp - 9)
    y = yoe + era * 400 + (m <= 2)
    return y * 10000 + m * 100 + d


def _quirk_masks(df: pd.DataFrame) -> dict[str, np.ndarray]:
    ts = df["ts_listen"].to_numpy()
    release = df["release_date"].to_numpy()
    valid_clock = ts >= BROKEN_CLOCK_BEFORE
    real_release = ~np.isin(release, RELEASE_DATE_PLACEHOLDERS)
    return {
        "broken_clock": ~valid_clock,
        "release_date_19000101": release == 19000101,
        "release_date_30000101": release == 30000101,
        "play_before_release": valid_clock & real_release & (_yyyymmdd(ts) < release),
        "media_duration_0": df["media_duration"].to_numpy() == 0,
        "genre_id_0": df["genre_id"].to_numpy() == 0,
    }


def _share(count: int, total: int) -> float:
    return round(count / total, 6) if total else 0.0


def summarize(train: pd.DataFrame, test: pd.DataFrame) -> dict[str, Any]:
    """Facts about the loaded data for ``data_summary.json`` and the report.

    Sizes, class balance, Flow share, test users and tracks unseen in train, and per
    quirk of the real data its count, share and a one-line "how it is handled".
    """
    n_train, n_test = len(train), len(test)
    listened = int(train[TARGET].sum())
    train_users = train["user_id"].unique()
    test_users = test["user_id"].unique()
    unseen_users = int((~np.isin(test_users, train_users)).sum())
    # Hash the few test tracks and scan train once: much cheaper than hashing every train track.
    test_media, train_media = test["media_id"], train["media_id"]
    seen_media = train_media[train_media.isin(test_media.unique())].unique()
    unseen_media = ~test_media.isin(seen_media).to_numpy()
    quirks: dict[str, dict[str, Any]] = {}
    train_masks, test_masks = _quirk_masks(train), _quirk_masks(test)
    for name, info in QUIRKS.items():
        tr = int(train_masks[name].sum()) if name in train_masks else None
        te = int(test_masks[name].sum()) if name in test_masks else int(unseen_media.sum())
        quirks[name] = {
            **info,
            "train_rows": tr,
            "train_share": None if tr is None else _share(tr, n_train),
            "test_rows": te,
            "test_share": _share(te, n_test),
        }
    return {
        "train": {
            "rows": n_train,
            "users": int(train_users.size),
            "is_listened_1": listened,
            "is_listened_0": n_train - listened,
            "is_listened_mean": _share(listened, n_train),
            "flow_share": _share(int((train["listen_type"] == 1).sum()), n_train),
        },
        "test": {
            "rows": n_test,
            "users": int(test_users.size),
            "flow_share": _share(int((test["listen_type"] == 1).sum()), n_test),
            "users_unseen_in_train": unseen_users,
            "media_unseen_in_train_rows": int(unseen_media.sum()),
        },
        "quirks": quirks,
    }
