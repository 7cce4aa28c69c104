"""Tests of the RBM group: unit states, snapshot matrix, reconstruction by hand, past only."""

from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd
import pytest

from features import rbm
from features.history import History
from features.rbm import _Pairs, rbm_features
from tests.featurekit import base_row, future_changed, redraw_future, sampled_targets, targets_from_train
from tests.frames import train_frame

MONDAY = 1478476800  # 2016-11-07 00:00 UTC, a Monday
DAY = 86400
COLS = ["rbm_artist_p", "rbm_artist_user_logit", "rbm_artist_cond", "rbm_known", "rbm_skip_p", "rbm_skip_cond"]


#: Every row names its time and user; plausible constants elsewhere.
BASE = base_row(context_type=1, release_date=20100101, listen_type=1, user_id=None)
_frame = partial(train_frame, BASE)
_targets = partial(targets_from_train, BASE)


@pytest.fixture
def tiny(monkeypatch):
    """Fit snapshots from a single row and give every listened artist a unit."""
    monkeypatch.setattr(rbm, "MIN_SNAPSHOT_ROWS", 1)
    monkeypatch.setattr(rbm, "MIN_LISTENERS", 1)


# --- additive unit states ----------------------------------------------------------


def test_pair_weights_listened_units():
    # One user, artist 7: skip, skip, listen, skip; artist 8: listen.
    # on (any listen) turns on at the 3rd row of 7; off (played, never listened) is on
    # from the 1st row of 7 until that listen.
    user, ts = np.zeros(5, dtype=np.int64), np.arange(5) * 60
    p = _Pairs(user, np.array([7, 7, 8, 7, 7]), ts, np.array([0, 0, 1, 1, 0], dtype=bool))
    np.testing.assert_array_equal(p.w_on, [0, 0, 1, 1, 0])
    np.testing.assert_array_equal(p.w_off, [1, 0, 0, -1, 0])
    # Pairs (0, 7) and (0, 8): first play and first listen times.
    np.testing.assert_array_equal(p.first_play_ts, [0, 120])
    np.testing.assert_array_equal(p.first_listen_ts, [180, 120])
    # As of position 3 (rows 0..2): artist 7 off, artist 8 on; as of 4: 7 on.
    on, off = p.state(np.zeros(4, dtype=np.int64), np.array([7, 8, 7, 9]), np.array([3, 3, 4, 5]))
    np.testing.assert_array_equal(on, [0, 1, 1, 0])
    np.testing.assert_array_equal(off, [1, 0, 0, 0])


def test_pair_state_keeps_users_apart():
    # Sorted rows: user 0 (artist 5 listened), user 1 (artist 5 skipped).
    p = _Pairs(np.array([0, 1]), np.array([5, 5]), np.array([100, 50]), np.array([True, False]))
    on, off = p.state(np.array([0, 1, 1, -1]), np.array([5, 5, 5, 5]), np.array([1, 1, 2, 2]))
    # User 1's range ends at 1 (before its row) -> nothing; at 2 -> off.  Unknown user -> 0.
    np.testing.assert_array_equal(on, [1, 0, 0, 0])
    np.testing.assert_array_equal(off, [0, 0, 1, 0])


# --- the reconstruction, by hand ---------------------------------------------------

#: Hand-set RBM with one hidden unit over units [on 10, on 20, off 10, off 20].
W = np.array([[1.0, 2.0, -1.0, 0.5]])
B = np.array([0.1, 0.2, 0.3, 0.4])
C = np.array([-0.5])


def _sig(x: float) -> float:
    return 1.0 / (1.0 + np.exp(-x))


def _sp(x: float) -> float:
    return float(np.log1p(np.exp(x)))


def _hand_history() -> pd.DataFrame:
    rows = [
        # Before the snapshot: user 1 listens to 10 and skips 20; user 2 listens to both.
        {"user_id": 1, "artist_id": 10, "ts_listen": MONDAY - 3 * DAY, "is_listened": 1},
        {"user_id": 1, "artist_id": 20, "ts_listen": MONDAY - 3 * DAY + 60, "is_listened": 0},
        {"user_id": 2, "artist_id": 10, "ts_listen": MONDAY - 2 * DAY, "is_listened": 1},
        {"user_id": 2, "artist_id": 20, "ts_listen": MONDAY - 2 * DAY + 60, "is_listened": 1},
        # After it (folded in as of each target): user 3 listens to 20, skips 10, then listens to 10.
        {"user_id": 3, "artist_id": 20, "ts_listen": MONDAY + 60, "is_listened": 1},
        {"user_id": 3, "artist_id": 10, "ts_listen": MONDAY + 120, "is_listened": 0},
        {"user_id": 3, "artist_id": 10, "ts_listen": MONDAY + 180, "is_listened": 1},
        # Artist 30 first appears at the snapshot time itself: no unit.
        {"user_id": 4, "artist_id": 30, "ts_listen": MONDAY, "is_listened": 1},
    ]
    return _frame(rows)


def test_hand_set_rbm(tiny, monkeypatch):
    seen = []

    def fake_train(x):
        seen.append(x.toarray())
        return W, B, C

    monkeypatch.setattr(rbm, "_train", fake_train)
    tg = _targets(
        [
            {"user_id": 3, "artist_id": 10, "ts_listen": MONDAY + 150},  # 0: 20 on, 10 off
            {"user_id": 3, "artist_id": 10, "ts_listen": MONDAY + 180},  # 1: tie with the listen: excluded
            {"user_id": 3, "artist_id": 10, "ts_listen": MONDAY + 200},  # 2: 20 on, 10 on
            {"user_id": 3, "artist_id": 30, "ts_listen": MONDAY + 200},  # 3: artist without a unit
            {"user_id": 99, "artist_id": 20, "ts_listen": MONDAY + 200},  # 4: unknown user
            {"user_id": 1, "artist_id": 10, "ts_listen": MONDAY - DAY},  # 5: snapshot before any row
        ]
    )
    out = rbm_features(History(_hand_history(), gap_seconds=600), tg)
    assert list(out.columns) == COLS
    # One snapshot (MONDAY) was fit, on users 1 and 2 as of MONDAY, units [on10, on20, off10, off20].
    assert len(seen) == 1
    rows = sorted(map(tuple, seen[0]))
    assert rows == [(1, 0, 0, 1), (1, 1, 0, 0)]

    # Target 0: v = [0, 1, 1, 0] -> pre = 2 - 1 = 1, h = sig(1 - 0.5).
    h = _sig(0.5)
    r = out.iloc[0]
    assert r["rbm_artist_user_logit"] == pytest.approx(h * 1.0, rel=1e-6)
    assert r["rbm_artist_p"] == pytest.approx(_sig(h * 1.0 + 0.1), rel=1e-6)
    assert r["rbm_skip_p"] == pytest.approx(_sig(h * -1.0 + 0.3), rel=1e-6)
    assert r["rbm_known"] == 0
    # Conditional on the other units: drop off10 (-1) from pre -> a = 2 - 0.5 = 1.5.
    assert r["rbm_artist_cond"] == pytest.approx(0.1 + _sp(1.5 + 1.0) - _sp(1.5), rel=1e-6)
    assert r["rbm_skip_cond"] == pytest.approx(0.3 + _sp(1.5 - 1.0) - _sp(1.5), rel=1e-6)
    # Target 1 sits exactly on the listen: the same as target 0.
    np.testing.assert_array_equal(out.iloc[1].to_numpy(), out.iloc[0].to_numpy())
    # Target 2: v = [1, 1, 0, 0] -> pre = 3, h = sig(2.5); own on unit dropped -> a = 1.5 again.
    h = _sig(2.5)
    r = out.iloc[2]
    assert r["rbm_artist_p"] == pytest.approx(_sig(h + 0.1), rel=1e-6)
    assert r["rbm_known"] == 1
    assert r["rbm_artist_cond"] == pytest.approx(0.1 + _sp(2.5) - _sp(1.5), rel=1e-6)
    # Artist 30 has no unit; the unknown user gets the RBM's answer for an empty vector.
    assert out.iloc[3].isna().all()
    h = _sig(-0.5)
    assert out.iloc[4]["rbm_artist_p"] == pytest.approx(_sig(2.0 * h + 0.2), rel=1e-6)
    assert out.iloc[4]["rbm_artist_cond"] == pytest.approx(0.2 + _sp(-0.5 + 2.0) - _sp(-0.5), rel=1e-6)
    assert out.iloc[4]["rbm_known"] == 0
    # No history before the target's snapshot: nothing fit, NaN.
    assert out.iloc[5].isna().all()


def test_too_little_history_gives_nan():
    # The default MIN_SNAPSHOT_ROWS is far above this history's size.
    tg = _targets([{"user_id": 3, "artist_id": 10, "ts_listen": MONDAY + 200}])
    assert rbm_features(History(_hand_history(), gap_seconds=600), tg).isna().all().all()


@pytest.mark.parametrize("n_hist", [0, 1])
def test_empty_or_tiny_history(tiny, n_hist):
    df = _frame([{"user_id": 1, "artist_id": 10, "ts_listen": MONDAY - DAY}])[:n_hist]
    tg = _targets([{"user_id": 1, "artist_id": 10, "ts_listen": MONDAY + DAY}])
    out = rbm_features(History(df, gap_seconds=600), tg)
    assert list(out.columns) == COLS and len(out) == 1 and out.isna().all().all()


def test_no_targets(tiny):
    out = rbm_features(History(_hand_history(), gap_seconds=600), _targets([]))
    assert list(out.columns) == COLS and len(out) == 0


# --- a real fit: taste blocks, determinism, past only -----------------------------


def _random_history(rng: np.random.Generator, n: int = 1500) -> pd.DataFrame:
    """Three weeks around MONDAY (>= 2 snapshots): 30 users in three taste blocks of 6 artists."""
    user = rng.integers(0, 30, n)
    artist = (user % 3) * 10 + rng.integers(0, 6, n)
    liked = (artist % 10) < 4
    y = rng.random(n) < np.where(liked, 0.85, 0.25)
    ts = MONDAY - 10 * DAY + rng.integers(0, 24 * DAY, n)
    ts[:3] = [1, 79, 316000000]  # broken clocks
    rows = [
        {"user_id": u, "artist_id": a, "media_id": a * 10, "ts_listen": t, "is_listened": int(v)}
        for u, a, t, v in zip(user, artist, ts, y, strict=True)
    ]
    return _frame(rows)


@pytest.fixture
def small_rbm(tiny, monkeypatch):
    monkeypatch.setattr(rbm, "N_HIDDEN", 4)
    monkeypatch.setattr(rbm, "BATCH_SIZE", 8)
    monkeypatch.setattr(rbm, "TRAIN_PASSES", 600)
    monkeypatch.setattr(rbm, "MAX_EPOCHS", 20)


def test_deterministic_and_spanning_snapshots(small_rbm):
    df = _random_history(np.random.default_rng(0))
    tg = sampled_targets(BASE, df, 60, 1)
    a = rbm_features(History(df, gap_seconds=600), tg)
    b = rbm_features(History(df, gap_seconds=600), tg)
    assert a.to_numpy().tobytes() == b.to_numpy().tobytes()
    # The targets use at least two fitted snapshots.
    snaps = rbm._snapshot_number(tg["ts_listen"].to_numpy()[a["rbm_artist_p"].notna().to_numpy()])
    assert len(np.unique(snaps)) >= 2


def test_changing_the_future_moves_nothing(small_rbm):
    rng = np.random.default_rng(3)
    df = _random_history(rng)
    tg = sampled_targets(BASE, df, 12, 2)
    # The future of each target includes its own row.
    change = partial(redraw_future, rng=rng, draws={"artist_id": (0, 40)}, extra=20, extra_later=7, extra_user=77)
    base, runs = future_changed(rbm_features, df, tg, change, gap_seconds=600)
    assert base["rbm_artist_p"].notna().sum() > 6
    for i, got in runs:
        np.testing.assert_array_equal(got.to_numpy(), base.iloc[[i]].to_numpy(), err_msg=f"target {i}")


def test_changing_the_past_moves_something(small_rbm):
    df = _random_history(np.random.default_rng(4))
    tg = sampled_targets(BASE, df, 30, 3)
    base = rbm_features(History(df, gap_seconds=600), tg)
    # Labels of every row before MONDAY flipped: the MONDAY snapshot changes, so later targets move.
    changed = df.copy()
    past = changed["ts_listen"].to_numpy() < MONDAY
    changed.loc[past, "is_listened"] = 1 - changed.loc[past, "is_listened"]
    got = rbm_features(History(changed, gap_seconds=600), tg)
    later = (tg["ts_listen"] >= MONDAY).to_numpy() & base["rbm_artist_p"].notna().to_numpy()
    assert later.any()
    assert not np.allclose(got.to_numpy()[later], base.to_numpy()[later])


def test_a_past_row_of_the_user_is_folded_in(small_rbm):
    # Same snapshots, one more listen of the target's user between the snapshot and the target.
    df = _random_history(np.random.default_rng(5))
    tg = _targets([{"user_id": 4, "artist_id": 12, "media_id": 120, "ts_listen": MONDAY + 3 * DAY}])
    base = rbm_features(History(df, gap_seconds=600), tg)
    # User 4 (block 1: artists 10..15) listens to artist 3 of block 0, new to them.
    extra = _frame([{"user_id": 4, "artist_id": 3, "media_id": 30, "ts_listen": MONDAY + 2 * DAY}])
    got = rbm_features(History(pd.concat([df, extra], ignore_index=True), gap_seconds=600), tg)
    assert base["rbm_artist_p"].notna().all()
    assert got["rbm_artist_p"].iloc[0] != base["rbm_artist_p"].iloc[0]
