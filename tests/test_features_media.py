"""Hand-computed tests of the media feature group."""

from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd
import pytest

from features.history import History
from features.media import media_features
from tests.featurekit import base_row
from tests.frames import targets_frame, train_frame

D = 1479722400  # Monday 2016-11-21 10:00:00 UTC
NAN = np.nan
BASE = base_row(ts_listen=D, user_id=0)
_train = partial(train_frame, BASE)
_targets = partial(targets_frame, BASE)


EMPTY = History(_train([]), gap_seconds=600)

RELEASE_COLUMNS = [
    "media_release_year",
    "media_days_since_release",
    "media_release_placeholder",
    "media_new_release",
    "media_before_release",
]


# expected: year, days since release, placeholder, new release, played before release
@pytest.mark.parametrize(
    ("release_date", "ts", "expected"),
    [
        (20161101, D, [2016, 20, 0, 1, 0]),  # 1 Nov -> 21 Nov: 20 days
        (20161121, D, [2016, 0, 0, 1, 0]),  # released the same day
        (20161022, D, [2016, 30, 0, 1, 0]),  # 9 (Oct 22..31) + 21 = 30 days: still new
        (20161021, D, [2016, 31, 0, 0, 0]),  # 31 days: not new any more
        (20161201, D, [2016, -10, 0, 0, 1]),  # played 10 days before release
        (20160229, D, [2016, 266, 0, 0, 0]),  # leap day: 1 (to 1 Mar) + 245 (Mar..Oct) + 20
        (20151121, D, [2015, 366, 0, 0, 0]),  # a year spanning 29 Feb 2016
        (19000101, D, [NAN, NAN, 1, 0, 0]),  # placeholder
        (30000101, D, [NAN, NAN, 1, 0, 0]),  # placeholder
        (20150229, D, [NAN, NAN, 1, 0, 0]),  # not a date (2015 is not a leap year)
        (20161301, D, [NAN, NAN, 1, 0, 0]),  # month 13
        (20161100, D, [NAN, NAN, 1, 0, 0]),  # day 0
        (0, D, [NAN, NAN, 1, 0, 0]),
        (19570615, D, [1957, 21709, 0, 0, 0]),  # an old release is trusted: 21709 days
        (20161101, 79, [2016, NAN, 0, 0, 0]),  # broken play clock: no age, no flags
        (20161101, 315532805, [2016, NAN, 0, 0, 0]),  # 1980 clock: before MIN_VALID_TS
    ],
)
def test_release(release_date: int, ts: int, expected: list[float]) -> None:
    out = media_features(EMPTY, _targets([{"release_date": release_date, "ts_listen": ts}]))
    np.testing.assert_allclose(out[RELEASE_COLUMNS].iloc[0].to_numpy(dtype=np.float64), expected, rtol=1e-6)


def test_old_release_days() -> None:
    # 1957-06-15 -> 2016-11-21, checked against the standard library.
    import datetime as dt

    assert (dt.date(2016, 11, 21) - dt.date(1957, 6, 15)).days == 21709


# expected: duration, long track, zero duration
@pytest.mark.parametrize(
    ("duration", "expected"),
    [(222, [222, 0, 0]), (600, [600, 0, 0]), (601, [601, 1, 0]), (0, [0, 0, 1]), (65535, [65535, 1, 0])],
)
def test_duration(duration: int, expected: list[float]) -> None:
    out = media_features(EMPTY, _targets([{"media_duration": duration}]))
    cols = ["media_duration", "media_long_track", "media_zero_duration"]
    np.testing.assert_allclose(out[cols].iloc[0].to_numpy(dtype=np.float64), expected)


@pytest.mark.parametrize(("genre", "unknown"), [(0, 1), (1, 0), (260000, 0)])
def test_genre_unknown(genre: int, unknown: int) -> None:
    out = media_features(EMPTY, _targets([{"genre_id": genre}]))
    assert out["media_genre_unknown"].iloc[0] == unknown


def test_raw_codes_pass_through() -> None:
    row = {
        "context_type": 23,
        "platform_name": 2,
        "platform_family": 1,
        "listen_type": 1,
        "user_age": 30,
        "user_gender": 1,
    }
    out = media_features(EMPTY, _targets([row]))
    for c, v in row.items():
        assert out[f"media_{c}"].iloc[0] == v


def test_contract_order_and_dtype() -> None:
    rows = [{"release_date": r, "media_duration": d} for r, d in [(20161101, 0), (19000101, 700), (20161201, 222)]]
    targets = _targets(rows)
    out = media_features(EMPTY, targets)
    assert isinstance(out.index, pd.RangeIndex) and len(out) == 3
    assert all(c.startswith("media_") for c in out.columns)
    assert all(out[c].dtype == np.float32 for c in out.columns)
    rev = media_features(EMPTY, targets.iloc[::-1].reset_index(drop=True))
    np.testing.assert_array_equal(rev.to_numpy(), out.to_numpy()[::-1])


def test_past_only_history_is_ignored() -> None:
    """The group reads only the target row: any history, past or future, gives the same features."""
    targets = _targets([{"release_date": 20161101}, {"user_id": 5, "ts_listen": 79}])
    hist = History(_train([{"ts_listen": D - 10}, {"ts_listen": D + 10, "is_listened": 0}]), gap_seconds=600)
    np.testing.assert_array_equal(media_features(hist, targets).to_numpy(), media_features(EMPTY, targets).to_numpy())
