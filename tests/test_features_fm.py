"""Tests of the factorization-machine group: taste ordering, the fold-in's solve, past only, edge cases."""

from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd
import pytest

from features import fm
from features.fm import _Snapshot, fm_features
from features.history import History
from tests.featurekit import base_row, future_changed, redraw_future, sampled_targets, targets_from_train
from tests.frames import train_frame

MONDAY = 1478476800  # 2016-11-07 00:00 UTC, a Monday
DAY = 86400
COLS = fm.NAMES


#: Every row names its time and user; plausible constants elsewhere.
BASE = base_row(context_type=1, release_date=20100101, listen_type=1, user_id=None)
_frame = partial(train_frame, BASE)
_targets = partial(targets_from_train, BASE)


@pytest.fixture
def small(monkeypatch):
    """Fit snapshots from a single row, with few iterations, so tiny hand-made histories are usable."""
    monkeypatch.setattr(fm, "MIN_SNAPSHOT_ROWS", 1)
    monkeypatch.setattr(fm, "MAX_ITER_COLD", 40)
    monkeypatch.setattr(fm, "MAX_ITER_WARM", 20)


# --- end to end: a user who listens to one artist and skips another ------------------


def _two_camps() -> pd.DataFrame:
    """Before MONDAY users 1-4 listen to artist 10 and skip artist 20; users 5-8 the reverse.

    Each artist has four tracks (media ``artist * 10 + j``, album = artist); every user
    plays every track three times.
    """
    rows = []
    t = MONDAY - 6 * DAY
    for u in range(1, 9):
        likes = 10 if u <= 4 else 20
        for _rep in range(3):
            for a in (10, 20):
                for j in range(4):
                    y = int(a == likes)
                    rows.append({"user_id": u, "artist_id": a, "album_id": a, "media_id": a * 10 + j, "is_listened": y})
                    rows[-1]["ts_listen"] = t
                    t += 600
    return _frame(rows)


def test_taste_orders_the_liked_artist_first(small):
    h = History(_two_camps(), gap_seconds=600)
    at = MONDAY + DAY
    tg = _targets(
        [
            {"user_id": 1, "artist_id": 10, "album_id": 10, "media_id": 101, "ts_listen": at},  # known track
            {"user_id": 1, "artist_id": 20, "album_id": 20, "media_id": 201, "ts_listen": at},
            {"user_id": 5, "artist_id": 10, "album_id": 10, "media_id": 101, "ts_listen": at},
            {"user_id": 5, "artist_id": 20, "album_id": 20, "media_id": 201, "ts_listen": at},
            {"user_id": 1, "artist_id": 10, "album_id": 10, "media_id": 999, "ts_listen": at},  # new track
            {"user_id": 1, "artist_id": 20, "album_id": 20, "media_id": 998, "ts_listen": at},
            {"user_id": 77, "artist_id": 10, "album_id": 10, "media_id": 101, "ts_listen": at},  # new user
        ]
    )
    out = fm_features(h, tg)
    assert list(out.columns) == COLS and len(out) == len(tg)
    for like, dislike in ((0, 1), (3, 2), (4, 5)):
        for col in ("fm_p", "fm_taste", "fm_user_artist", "fm_user_album", "fm_fold_p", "fm_fold_taste"):
            assert out.loc[like, col] > out.loc[dislike, col], (col, like, dislike)
    # The classes are well separated: the fitted probability follows the labels (24 rows a
    # user, so the L2 penalty keeps it off 0 and 1).
    assert out.loc[0, "fm_p"] > 0.8 and out.loc[1, "fm_p"] < 0.2
    # Both artists are played equally often by equally many people: no quality difference.
    assert out.loc[0, "fm_item_bias"] == pytest.approx(out.loc[1, "fm_item_bias"], abs=0.05)
    # An unseen track is scored from its album, artist and genre only.
    assert np.isnan(out.loc[4, "fm_user_media"]) and np.isfinite(out.loc[4, "fm_user_artist"])
    # An unseen user (no rows before the target): the item side only.
    r = out.loc[6]
    assert np.isfinite(r["fm_item_bias"])
    assert r[[c for c in COLS if c != "fm_item_bias"]].isna().all()


# --- the fold-in's closed form -------------------------------------------------------


def _fixed_fit(media_vec: dict[int, float], user_vec: dict[int, tuple[float, float]]):
    """A stand-in for ``_fit`` (rank 1, every bias 0 but the given users'): tables set by hand."""

    def fit(d, cell, prev):
        media = d.field_uniq[0]
        tabs = [np.zeros((0, 2))]
        users = np.array([np.searchsorted(d.user_uniq, u) for u in sorted(user_vec)], dtype=np.int64)
        tabs[0] = np.array([user_vec[u] for u in sorted(user_vec)], dtype=float).reshape(-1, 2)
        fields = [np.arange(len(media))]
        tabs.append(np.array([[media_vec.get(int(m), 0.0), 0.0] for m in media]))
        for j in range(1, len(fm.ITEM_FIELDS)):
            fields.append(np.arange(len(d.field_uniq[j])))
            tabs.append(np.zeros((len(d.field_uniq[j]), 2)))
        ctx = [np.arange(len(u)) for u in d.ctx_uniq]
        return _Snapshot(users, fields, ctx, 0.0, tabs, [], 1.0)

    return fit


@pytest.fixture
def rank1(monkeypatch):
    monkeypatch.setattr(fm, "MIN_SNAPSHOT_ROWS", 1)
    monkeypatch.setattr(fm, "RANK", 1)
    monkeypatch.setattr(fm, "L2_FACTOR", 1.0)
    monkeypatch.setattr(fm, "L2_BIAS", 1.0)
    monkeypatch.setattr(fm, "L2_COUNT_POWER", 0.0)  # a flat penalty (the count-scaled one has its own test)
    monkeypatch.setattr(fm, "CONTEXT_FIELDS", ())


def test_fold_in_from_the_prior_solves_the_ridge_newton_step_exactly(rank1, monkeypatch):
    # User 7 is not in the snapshot (prior 0).  Before the target: media 1 (V = 2) listened,
    # media 2 (V = -1) skipped.  With x = [V, 1], p = sigmoid(0) = 1/2, weights 1/4:
    #   H = 1/4 ([[4, 2], [2, 1]] + [[1, -1], [-1, 1]]) + I = [[2.25, 0.25], [0.25, 1.5]]
    #   g = 1/2 [2, 1] - 1/2 [-1, 1] = [1.5, 0]
    #   theta = H^-1 g = [1.5 * 1.5, -0.25 * 1.5] / (2.25 * 1.5 - 0.25^2) = [2.25, -0.375] / 3.3125
    monkeypatch.setattr(fm, "_fit", _fixed_fit({1: 2.0, 2: -1.0}, {8: (0.0, 0.0)}))
    df = _frame(
        [
            {"user_id": 8, "media_id": 3, "ts_listen": MONDAY - DAY},  # the snapshot's only user
            {"user_id": 7, "media_id": 1, "ts_listen": MONDAY + 60, "is_listened": 1},
            {"user_id": 7, "media_id": 2, "ts_listen": MONDAY + 120, "is_listened": 0},
        ]
    )
    tg = _targets([{"user_id": 7, "media_id": 1, "ts_listen": MONDAY + 180}])
    out = fm_features(History(df, gap_seconds=600), tg).iloc[0]
    u, b = 2.25 / 3.3125, -0.375 / 3.3125
    assert out["fm_fold_bias"] == pytest.approx(b, rel=1e-6)
    assert out["fm_fold_taste"] == pytest.approx(u * 2.0, rel=1e-6)
    assert out["fm_fold_p"] == pytest.approx(1 / (1 + np.exp(-(b + 2 * u))), rel=1e-6)
    # The snapshot does not know user 7: its own terms are NaN.
    assert np.isnan(out["fm_p"]) and np.isnan(out["fm_taste"]) and np.isnan(out["fm_user_bias"])


def test_fold_in_steps_from_the_snapshot_user(rank1, monkeypatch):
    # User 7 is in the snapshot with U = 0.5, b = 0.2 (its snapshot rows are media 1, listened;
    # one more skip of media 2 comes after the snapshot).  One Newton step from theta0:
    #   p_i = sigmoid(theta0 . x_i), H = sum p(1-p) x x^T + I, g = sum (y - p) x - theta0.
    monkeypatch.setattr(fm, "_fit", _fixed_fit({1: 2.0, 2: -1.0}, {7: (0.5, 0.2)}))
    df = _frame(
        [
            {"user_id": 7, "media_id": 1, "ts_listen": MONDAY - DAY, "is_listened": 1},
            {"user_id": 7, "media_id": 2, "ts_listen": MONDAY + 60, "is_listened": 0},
        ]
    )
    tg = _targets([{"user_id": 7, "media_id": 1, "ts_listen": MONDAY + 180}])
    out = fm_features(History(df, gap_seconds=600), tg).iloc[0]
    th0 = np.array([0.5, 0.2])
    x = np.array([[2.0, 1.0], [-1.0, 1.0]])
    y = np.array([1.0, 0.0])
    p = 1 / (1 + np.exp(-(x @ th0)))
    h = (x.T * (p * (1 - p))) @ x + np.eye(2)
    th = th0 + np.linalg.solve(h, x.T @ (y - p) - th0)
    assert out["fm_fold_taste"] == pytest.approx(th[0] * 2.0, rel=1e-6)
    assert out["fm_fold_bias"] == pytest.approx(th[1], rel=1e-6)
    # The snapshot's own terms: U . V = 0.5 * 2, p = sigmoid(0.2 + 1).
    assert out["fm_taste"] == pytest.approx(1.0, rel=1e-6)
    assert out["fm_user_media"] == pytest.approx(1.0, rel=1e-6)
    assert out["fm_user_artist"] == pytest.approx(0.0, abs=1e-12)
    assert out["fm_p"] == pytest.approx(1 / (1 + np.exp(-1.2)), rel=1e-6)


def test_fold_in_penalty_scales_with_the_users_rows(rank1, monkeypatch):
    # The first fold-in test with L2_COUNT_POWER 0.5 and L2_COUNT_REF 1: user 7 has 2 rows
    # before the target, so the vector's penalty is 1 * (2 / 1) ** 0.5 = sqrt(2); the bias's stays 1:
    #   H = 1/4 ([[5, 1], [1, 2]]) + diag(sqrt(2), 1) = [[1.25 + sqrt(2), 0.25], [0.25, 1.5]],  g = [1.5, 0]
    monkeypatch.setattr(fm, "L2_COUNT_POWER", 0.5)
    monkeypatch.setattr(fm, "L2_COUNT_REF", 1.0)
    monkeypatch.setattr(fm, "_fit", _fixed_fit({1: 2.0, 2: -1.0}, {8: (0.0, 0.0)}))
    df = _frame(
        [
            {"user_id": 8, "media_id": 3, "ts_listen": MONDAY - DAY},
            {"user_id": 7, "media_id": 1, "ts_listen": MONDAY + 60, "is_listened": 1},
            {"user_id": 7, "media_id": 2, "ts_listen": MONDAY + 120, "is_listened": 0},
        ]
    )
    tg = _targets([{"user_id": 7, "media_id": 1, "ts_listen": MONDAY + 180}])
    out = fm_features(History(df, gap_seconds=600), tg).iloc[0]
    h00 = 1.25 + np.sqrt(2.0)
    det = h00 * 1.5 - 0.25**2
    u, b = 1.5 * 1.5 / det, -0.25 * 1.5 / det
    assert out["fm_fold_taste"] == pytest.approx(u * 2.0, rel=1e-6)
    assert out["fm_fold_bias"] == pytest.approx(b, rel=1e-6)


def test_vector_penalty_by_hand(monkeypatch):
    monkeypatch.setattr(fm, "L2_FACTOR", 2.0)
    monkeypatch.setattr(fm, "L2_COUNT_REF", 4.0)
    monkeypatch.setattr(fm, "L2_COUNT_POWER", 0.5)
    assert fm._vector_penalty(np.array([1.0, 4.0, 9.0, 16.0])) == pytest.approx([1.0, 2.0, 3.0, 4.0])
    monkeypatch.setattr(fm, "L2_COUNT_POWER", 0.0)
    assert fm._vector_penalty(np.array([1.0, 4.0, 9.0])) == pytest.approx([2.0, 2.0, 2.0])


def test_the_fit_penalizes_each_entity_by_its_own_rows(monkeypatch):
    """The fit asks the penalty of every user by their rows, and of every track, album, artist, genre by theirs."""
    monkeypatch.setattr(fm, "MIN_SNAPSHOT_ROWS", 1)
    monkeypatch.setattr(fm, "L2_COUNT_POWER", 0.5)
    monkeypatch.setattr(fm, "MAX_ITER_COLD", 2)
    asked = []
    real = fm._vector_penalty
    monkeypatch.setattr(fm, "_vector_penalty", lambda rows: asked.append(np.asarray(rows).copy()) or real(rows))
    rows, t = [], MONDAY - 6 * DAY
    for u in range(1, 5):
        for m in range(1, u + 2):  # user u plays tracks 1 .. u + 1 once
            rows.append({"user_id": u, "media_id": m, "album_id": 100 + m % 2, "artist_id": 200, "ts_listen": t})
            t += 600
    df = _frame(rows)
    d = fm._data(History(df, gap_seconds=600), _targets([{"user_id": 1, "media_id": 1, "ts_listen": MONDAY}]))
    fm._fit(d, int(fm._fm_cell(np.array([MONDAY]))[0]), None)
    users, media, albums, artists, genres = asked
    assert users.tolist() == [2.0, 3.0, 4.0, 5.0]  # users 1-4 in order
    assert media.tolist() == [4.0, 4.0, 3.0, 2.0, 1.0]  # tracks 1-5
    assert albums.tolist() == [6.0, 8.0]  # album 100 (tracks 2, 4), album 101 (tracks 1, 3, 5)
    assert artists.tolist() == [14.0] and genres.tolist() == [14.0]


# --- edge cases ----------------------------------------------------------------------


def test_too_little_history_gives_nan():
    # The default MIN_SNAPSHOT_ROWS is far above this history's size.
    h = History(_two_camps(), gap_seconds=600)
    tg = _targets([{"user_id": 1, "artist_id": 10, "media_id": 101, "ts_listen": MONDAY + DAY}])
    assert fm_features(h, tg).isna().all().all()


@pytest.mark.parametrize("n_hist", [0, 1])
def test_empty_or_tiny_history(small, n_hist):
    df = _frame([{"user_id": 1, "ts_listen": MONDAY - DAY}])[:n_hist]
    tg = _targets([{"user_id": 1, "ts_listen": MONDAY + DAY}])
    out = fm_features(History(df, gap_seconds=600), tg)
    assert list(out.columns) == COLS and len(out) == 1
    if n_hist == 0:
        assert out.isna().all().all()


def test_no_targets(small):
    out = fm_features(History(_two_camps(), gap_seconds=600), _targets([]))
    assert list(out.columns) == COLS and len(out) == 0


def test_targets_before_any_snapshot_get_nan(small):
    h = History(_two_camps(), gap_seconds=600)
    tg = _targets([{"user_id": 1, "artist_id": 10, "media_id": 101, "ts_listen": MONDAY - DAY}])
    assert fm_features(h, tg).isna().all().all()


# --- past only -----------------------------------------------------------------------


def _random_history(rng: np.random.Generator, n: int = 700) -> pd.DataFrame:
    """Three loose taste blocks over four weeks (four snapshots), with a few broken clocks."""
    user = rng.integers(0, 15, n)
    artist = (user % 3) * 10 + rng.integers(0, 4, n)
    media = artist * 10 + rng.integers(0, 3, n)
    ts = MONDAY - 14 * DAY + rng.integers(0, 28 * DAY, n)
    ts[:5] = [1, 79, 79, 1980, 316000000]
    y = rng.random(n) < 0.3 + 0.4 * ((artist + user) % 2)
    rows = [
        {
            "user_id": u,
            "artist_id": a,
            "album_id": a,
            "genre_id": a % 4,
            "media_id": m,
            "ts_listen": t,
            "is_listened": int(v),
            "listen_type": int(t % 3 == 0),
            "context_type": int(t % 5),
        }
        for u, a, m, t, v in zip(user, artist, media, ts, y, strict=True)
    ]
    return _frame(rows)


def _picks(df: pd.DataFrame) -> pd.DataFrame:
    """Targets that ARE history rows (train examples): one per snapshot week and more."""
    return sampled_targets(BASE, df, 12, 1)


def test_changing_the_future_moves_nothing(small):
    rng = np.random.default_rng(3)
    df = _random_history(rng)
    tg = _picks(df)
    draws = {"artist_id": (0, 40), "media_id": (0, 400), "user_id": (0, 30)}
    change = partial(redraw_future, rng=rng, draws=draws, extra=30, extra_later=5, extra_user=99)
    base, runs = future_changed(fm_features, df, tg, change, gap_seconds=600)
    assert base["fm_fold_p"].notna().sum() >= 8 and base["fm_p"].notna().sum() >= 6
    assert len(np.unique(fm._fm_cell(tg["ts_listen"].to_numpy()))) >= 2
    for i, got in runs:
        np.testing.assert_allclose(got.to_numpy(), base.iloc[[i]].to_numpy(), rtol=1e-5, err_msg=f"target {i}")


def test_changing_the_past_moves_the_features(small):
    rng = np.random.default_rng(3)
    df = _random_history(rng)
    tg = _picks(df)
    base = fm_features(History(df, gap_seconds=600), tg)
    i = int(np.argmax(tg["ts_listen"].to_numpy()))
    t = tg["ts_listen"].iloc[i]
    # Flip one label of the target's own user, a day before the target.
    own = np.flatnonzero((df["user_id"].to_numpy() == tg["user_id"].iloc[i]) & (df["ts_listen"].to_numpy() < t - DAY))
    changed = df.copy()
    changed.loc[own[-1], "is_listened"] = 1 - changed.loc[own[-1], "is_listened"]
    got = fm_features(History(changed, gap_seconds=600), tg)
    assert not np.allclose(got.iloc[i].to_numpy(), base.iloc[i].to_numpy(), equal_nan=True)


def test_a_target_never_sees_its_own_label(small):
    df = _random_history(np.random.default_rng(5))
    tg = _picks(df)
    base = fm_features(History(df, gap_seconds=600), tg)
    for i in range(len(tg)):
        # The history row the target was drawn from: same user and time.
        own = (df["user_id"] == tg["user_id"].iloc[i]) & (df["ts_listen"] == tg["ts_listen"].iloc[i])
        changed = df.copy()
        changed.loc[own, "is_listened"] = 1 - changed.loc[own, "is_listened"]
        got = fm_features(History(changed, gap_seconds=600), tg)
        # Its own features do not move (later targets of course may).
        np.testing.assert_array_equal(got.iloc[i].to_numpy(), base.iloc[i].to_numpy(), err_msg=f"target {i}")


def test_deterministic(small):
    df = _random_history(np.random.default_rng(7))
    tg = _picks(df)
    a = fm_features(History(df, gap_seconds=600), tg)
    b = fm_features(History(df.copy(), gap_seconds=600), tg.copy())
    assert a.to_numpy().tobytes() == b.to_numpy().tobytes()


def test_the_test_build_reads_the_train_builds_snapshots(small, monkeypatch, tmp_path):
    """A snapshot is a function of the history: a second build (another process) fits none of it again."""
    df = _random_history(np.random.default_rng(11))
    train_targets = _picks(df)
    last = int(df["ts_listen"].max())
    test_targets = _targets([{"user_id": u, "media_id": 10 * u, "ts_listen": last + DAY} for u in range(1, 6)])
    real, fits = fm._fit, []

    def counting(d, cell, prev):
        fits.append(int(cell))
        return real(d, cell, prev)

    monkeypatch.setattr(fm, "_fit", counting)
    alone = fm_features(History(df, gap_seconds=600), test_targets)  # no store: every snapshot fit here
    fit_alone = list(fits)
    fits.clear()
    fm_features(History(df, gap_seconds=600, store=tmp_path), train_targets)  # the train build
    fit_by_train = list(fits)
    fits.clear()
    got = fm_features(History(df, gap_seconds=600, store=tmp_path), test_targets)  # the test build
    assert len(fit_alone) >= 3 and set(fit_by_train) < set(fit_alone)
    # Only the cells the train build's targets did not reach are fit again, and the result is the same bytes.
    assert fits == [c for c in fit_alone if c not in fit_by_train] and len(fits) < len(fit_alone)
    assert got.to_numpy().tobytes() == alone.to_numpy().tobytes()
    assert got["fm_fold_p"].notna().all()


def test_the_now_state_gives_a_full_passs_numbers(small):
    """One user's rows and the snapshot in force at now: the numbers of a pass over the whole history."""
    df = _random_history(np.random.default_rng(13))
    now = int(df["ts_listen"].max()) + 3600
    state = fm.fm_now_state(History(df, gap_seconds=600), now)
    assert state.snapshot is not None and len(state.vocab["media_id"]) > 20
    counts = df["user_id"].value_counts()
    for user in (int(counts.index[0]), int(counts.index[-1]), 999):  # heavy, light, unknown
        cands = [
            {"media_id": 10, "artist_id": 1, "album_id": 1, "genre_id": 1, "listen_type": 1, "context_type": 0},
            {"media_id": 201, "artist_id": 20, "album_id": 20, "genre_id": 0, "listen_type": 0, "context_type": 3},
            {"media_id": 5555, "artist_id": 11, "album_id": 11, "genre_id": 3, "listen_type": 1, "context_type": 1},
            {"media_id": 7777, "artist_id": 77, "album_id": 77, "genre_id": 9, "listen_type": 1, "context_type": 9},
        ]
        tg = _targets([{**c, "user_id": user, "ts_listen": now} for c in cands])
        full = fm_features(History(df, gap_seconds=600), tg)
        rows = df[df["user_id"] == user]
        fast = fm_features(History(rows, gap_seconds=600), tg, now=state)
        assert fast.to_numpy().tobytes() == full.to_numpy().tobytes(), user
        assert full["fm_item_bias"].iloc[:3].notna().all() and np.isnan(full["fm_item_bias"].iloc[3])
        assert full["fm_fold_p"].iloc[:3].notna().all() == (user != 999)
    with pytest.raises(ValueError, match="before the now state's snapshot"):
        fm_features(History(df, gap_seconds=600), _targets([{"user_id": 1, "ts_listen": MONDAY - 20 * DAY}]), now=state)


def test_every_module_setting_is_in_the_snapshot_key_or_is_the_fold_ins(monkeypatch):
    """A new setting left out of the snapshot key would let a cached snapshot of the old value be read back."""
    settings = {
        n
        for n, v in vars(fm).items()
        if n.isupper() and not n.startswith("_") and isinstance(v, int | float | str | tuple)
    }
    settings -= {"SNAPSHOT_SETTINGS", "FOLD_SETTINGS"}
    assert set(fm.SNAPSHOT_SETTINGS) | set(fm.FOLD_SETTINGS) == settings
    assert not set(fm.SNAPSHOT_SETTINGS) & set(fm.FOLD_SETTINGS)
    base = fm._params_key()
    for name in fm.SNAPSHOT_SETTINGS:
        value = getattr(fm, name)
        other = value[:-1] if isinstance(value, tuple) else value + "x" if isinstance(value, str) else value * 2 + 1
        with monkeypatch.context() as m:
            m.setattr(fm, name, other)
            assert fm._params_key() != base, name
    for name in fm.FOLD_SETTINGS:
        with monkeypatch.context() as m:
            m.setattr(fm, name, getattr(fm, name) * 2)
            assert fm._params_key() == base, name
