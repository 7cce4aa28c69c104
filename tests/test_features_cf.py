"""Tests of the collaborative-filtering group: grid, weights, fold-in, SVD geometry, past only."""

from __future__ import annotations

import datetime as dt
from functools import partial

import numpy as np
import pandas as pd
import pytest

from features import cf
from features.cf import _fold_in, _snapshot_number, _snapshot_time, _telescoped_weights, cf_features
from features.history import History
from tests.featurekit import base_row, future_changed, redraw_future, sampled_targets, targets_from_train
from tests.frames import train_frame

MONDAY = 1478476800  # 2016-11-07 00:00 UTC, a Monday
DAY = 86400
COLS = ["cf_artist_listen_cos", "cf_artist_skip_cos", "cf_artist_norm", "cf_media_listen_cos", "cf_media_skip_cos"]


#: Every row names its time and user; plausible constants elsewhere.
BASE = base_row(context_type=1, release_date=20100101, listen_type=1, user_id=None)
_frame = partial(train_frame, BASE)
_targets = partial(targets_from_train, BASE)


@pytest.fixture
def small_snapshots(monkeypatch):
    """Fit snapshots from a single row, so tiny hand-made histories are usable."""
    monkeypatch.setattr(cf, "MIN_SNAPSHOT_ROWS", 1)


# --- the calendar grid -------------------------------------------------------------


def test_grid_origin_is_a_monday_and_the_grid_is_weekly():
    assert _snapshot_time(0) == 4 * DAY  # 1970-01-05 00:00 UTC
    assert dt.datetime.fromtimestamp(_snapshot_time(0), dt.UTC).weekday() == 0
    assert dt.datetime.fromtimestamp(MONDAY, dt.UTC).weekday() == 0
    k = _snapshot_number(np.array([MONDAY]))[0]
    assert _snapshot_time(k) == MONDAY
    assert _snapshot_time(k + 1) - _snapshot_time(k) == 7 * DAY


@pytest.mark.parametrize(
    ("ts", "expected_snapshot_time"),
    [
        (MONDAY, MONDAY),  # exactly on the grid: that snapshot (T_s <= t)
        (MONDAY - 1, MONDAY - 7 * DAY),  # one second before: the previous Monday
        (MONDAY + 7 * DAY - 1, MONDAY),  # last second of the week
        (MONDAY + 3 * DAY + 5, MONDAY),
        (79, -3 * DAY),  # broken clock: the Monday before 1970-01-05 (1969-12-29)
    ],
)
def test_snapshot_assignment(ts, expected_snapshot_time):
    assert _snapshot_time(_snapshot_number(np.array([ts])))[0] == expected_snapshot_time


# --- the additive log1p weights ----------------------------------------------------


def test_telescoped_weights_sum_to_log1p_counts():
    # One user, items a a b a, listened 1 1 1 0:
    # listens of a: rank 1 -> log(2), rank 2 -> log(3/2); b: rank 1 -> log(2); skip of a: rank 1 -> log(2).
    user = np.zeros(4, dtype=np.int64)
    item = np.array([7, 7, 8, 7])
    flag = np.array([True, True, True, False])
    w_on, w_off = _telescoped_weights(user, item, flag)
    np.testing.assert_allclose(w_on, [np.log(2), np.log(1.5), np.log(2), 0.0], rtol=1e-6)
    np.testing.assert_allclose(w_off, [0.0, 0.0, 0.0, np.log(2)], rtol=1e-6)
    # Prefix sums give log1p of the as-of count: after 2 rows, log1p(2 listens of a) = log 3.
    assert w_on[:2].sum() == pytest.approx(np.log(3), rel=1e-6)


def test_telescoped_weights_restart_per_user():
    user = np.array([0, 1])
    w_on, _ = _telescoped_weights(user, np.array([5, 5]), np.array([True, True]))
    np.testing.assert_allclose(w_on, [np.log(2), np.log(2)], rtol=1e-6)


# --- the fold-in arithmetic --------------------------------------------------------


def test_fold_in_sums_own_rows_before_each_end():
    # Sorted rows: user 0 at positions 0..2, user 1 at positions 3..4.
    ucode = np.array([0, 0, 0, 1, 1])
    col = np.array([0, 1, -1, 1, 0])  # -1: an item the snapshot has not seen (ignored)
    w = np.array([1.0, 2.0, 5.0, 3.0, 4.0])
    factors = np.array([[1.0, 0.0], [0.0, 10.0]])
    # Targets: user 0 before its 2nd row [0, 1), user 0 before all [0, 3), user 1 before its 2nd [3, 4).
    start = np.array([0, 0, 3])
    end = np.array([1, 3, 4])
    (u,) = _fold_in(ucode, col, [w], start, end, factors)
    # [0,1): 1*[1,0]; [0,3): 1*[1,0] + 2*[0,10] (+ row 2 ignored); [3,4): 3*[0,10].
    np.testing.assert_array_equal(u, [[1.0, 0.0], [1.0, 20.0], [0.0, 30.0]])


# --- end to end: two disjoint taste blocks ----------------------------------------


def _two_block_history() -> pd.DataFrame:
    """Before MONDAY users 1-4 play artists 10/11 (media 100/110), users 5-7 play 20/21 (200/210)."""
    rows = []
    t = MONDAY - 5 * DAY
    for u in (1, 2, 3, 4):
        for a in (10, 11):
            rows.append({"user_id": u, "artist_id": a, "media_id": a * 10, "ts_listen": t})
            t += 60
    for u in (5, 6, 7):
        for a in (20, 21):
            rows.append({"user_id": u, "artist_id": a, "media_id": a * 10, "ts_listen": t})
            t += 60
    # User 9 listened to artist 10 and skipped artist 20 after the snapshot (folded in,
    # not part of the SVD) ...
    rows.append({"user_id": 9, "artist_id": 10, "media_id": 100, "ts_listen": MONDAY + 60, "is_listened": 1})
    rows.append({"user_id": 9, "artist_id": 20, "media_id": 200, "ts_listen": MONDAY + 120, "is_listened": 0})
    # ... and artist 30 appears only at the snapshot time itself: not in the snapshot.
    rows.append({"user_id": 8, "artist_id": 30, "media_id": 300, "ts_listen": MONDAY})
    return _frame(rows)


def test_two_blocks_own_block_scores_high_other_block_zero(small_snapshots):
    h = History(_two_block_history(), gap_seconds=600)
    tg = _targets(
        [
            {"user_id": 9, "artist_id": 11, "media_id": 110, "ts_listen": MONDAY + DAY},
            {"user_id": 9, "artist_id": 21, "media_id": 210, "ts_listen": MONDAY + DAY},
            {"user_id": 9, "artist_id": 30, "media_id": 300, "ts_listen": MONDAY + DAY},
            {"user_id": 99, "artist_id": 11, "media_id": 110, "ts_listen": MONDAY + DAY},
        ]
    )
    out = cf_features(h, tg)
    assert list(out.columns) == COLS
    # Block A's artists 10 and 11 have identical columns, so they share one latent
    # direction: V[10] = V[11] = e_A / sqrt(2) and block B lives in an orthogonal one.
    # User 9's listen profile is log1p(1) * idf(10) * V[10], parallel to V[11]: cos 1;
    # V[21] is orthogonal to it: cos 0.  The skip profile (artist 20) is the reverse.
    r = out.iloc[0]
    assert r["cf_artist_listen_cos"] == pytest.approx(1.0, abs=1e-5)
    assert r["cf_artist_skip_cos"] == pytest.approx(0.0, abs=1e-5)
    assert r["cf_artist_norm"] == pytest.approx(1 / np.sqrt(2), abs=1e-5)
    # Media 100/110 are played by exactly block A's users: folded in, they sit on e_A too.
    assert r["cf_media_listen_cos"] == pytest.approx(1.0, abs=1e-5)
    assert r["cf_media_skip_cos"] == pytest.approx(0.0, abs=1e-5)
    r = out.iloc[1]
    assert r["cf_artist_listen_cos"] == pytest.approx(0.0, abs=1e-5)
    assert r["cf_artist_skip_cos"] == pytest.approx(1.0, abs=1e-5)
    assert r["cf_media_listen_cos"] == pytest.approx(0.0, abs=1e-5)
    # Artist 30 was first played at exactly the snapshot time: not in it, so NaN.
    assert out.iloc[2].isna().all()
    # Unseen user: the candidate's vector exists (norm) but there is no profile.
    r = out.iloc[3]
    assert r["cf_artist_norm"] == pytest.approx(1 / np.sqrt(2), abs=1e-5)
    assert np.isnan(r["cf_artist_listen_cos"]) and np.isnan(r["cf_media_listen_cos"])


def test_plays_between_snapshot_and_target_are_folded_in(small_snapshots):
    # User 9 plays artist 10 only after the snapshot (MONDAY + 1h) but before the target:
    # the play counts in the profile, projected on the snapshot's factors.
    df = _two_block_history()
    df = df[df["user_id"] != 9]
    late = _frame([{"user_id": 9, "artist_id": 10, "media_id": 100, "ts_listen": MONDAY + 3600}])
    h = History(pd.concat([df, late], ignore_index=True), gap_seconds=600)
    tg = _targets(
        [
            {"user_id": 9, "artist_id": 11, "media_id": 110, "ts_listen": MONDAY + 3600},  # tie: excluded
            {"user_id": 9, "artist_id": 11, "media_id": 110, "ts_listen": MONDAY + 3601},
        ]
    )
    out = cf_features(h, tg)
    assert np.isnan(out.loc[0, "cf_artist_listen_cos"])
    assert out.loc[1, "cf_artist_listen_cos"] == pytest.approx(1.0, abs=1e-5)
    assert np.isnan(out.loc[1, "cf_artist_skip_cos"])  # no skips: zero profile


def test_too_little_history_gives_nan():
    # The default MIN_SNAPSHOT_ROWS (1000) is far above this history's size.
    h = History(_two_block_history(), gap_seconds=600)
    tg = _targets([{"user_id": 9, "artist_id": 11, "media_id": 110, "ts_listen": MONDAY + DAY}])
    assert cf_features(h, tg).isna().all().all()


@pytest.mark.parametrize("n_hist", [0, 1])
def test_empty_or_tiny_history(small_snapshots, n_hist):
    df = _frame([{"user_id": 1, "ts_listen": MONDAY - DAY}])[:n_hist]
    tg = _targets([{"user_id": 1, "ts_listen": MONDAY + DAY}])
    out = cf_features(History(df, gap_seconds=600), tg)
    assert list(out.columns) == COLS and len(out) == 1 and out.isna().all().all()


def test_no_targets(small_snapshots):
    out = cf_features(History(_two_block_history(), gap_seconds=600), _targets([]))
    assert list(out.columns) == COLS and len(out) == 0


# --- past only ---------------------------------------------------------------------


def _random_history(rng: np.random.Generator, n: int = 600) -> pd.DataFrame:
    user = rng.integers(0, 15, n)
    artist = (user % 3) * 10 + rng.integers(0, 4, n)  # three taste blocks, loosely
    media = artist * 10 + rng.integers(0, 3, n)
    ts = MONDAY - 14 * DAY + rng.integers(0, 28 * DAY, n)
    ts[:5] = [1, 79, 79, 1980, 316000000]  # broken clocks
    y = rng.random(n) < 0.6
    rows = [
        {"user_id": u, "artist_id": a, "media_id": m, "ts_listen": t, "is_listened": int(v)}
        for u, a, m, t, v in zip(user, artist, media, ts, y, strict=True)
    ]
    return _frame(rows)


def test_changing_the_future_moves_nothing(small_snapshots):
    rng = np.random.default_rng(3)
    df = _random_history(rng)
    tg = sampled_targets(BASE, df, 25, 1)
    change = partial(redraw_future, rng=rng, draws={"artist_id": (0, 40), "media_id": (0, 400)})
    base, runs = future_changed(cf_features, df, tg, change, gap_seconds=600)
    assert base["cf_artist_listen_cos"].notna().sum() > 10
    for i, got in runs:
        np.testing.assert_allclose(got.to_numpy(), base.iloc[[i]].to_numpy(), rtol=1e-6, err_msg=f"target {i}")
