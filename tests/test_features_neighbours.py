"""Hand-computed and past-only tests of the neighbours feature group (item neighbourhood from co-listening)."""

from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from core.settings import FeatureSettings
from features import neighbours as nb
from features.colisten import item_neighbours
from features.history import History
from features.neighbours import neighbours_features
from tests.featurekit import base_row, future_changed, group_features, redraw_future
from tests.frames import targets_frame, train_frame

MONDAY = 1478476800  # 2016-11-07 00:00 UTC, a snapshot time of the weekly grid
DAY = 86400
K = 2.0  # prior strength of the user's own rate in these tests
SETTINGS = FeatureSettings(session_gap_minutes=10.0, prior_strength=K)
ARTIST_COLS = [
    "neighbours_artist_rate",
    "neighbours_artist_lift",
    "neighbours_artist_log_plays",
    "neighbours_artist_met",
]
BASE = base_row(ts_listen=MONDAY, context_type=1, release_date=20100101, listen_type=1)


@pytest.fixture
def small(monkeypatch):
    """Tiny snapshots count; two neighbours per item; artists only, with 2 listeners to take part."""
    monkeypatch.setattr(nb, "MIN_SNAPSHOT_ROWS", 1)
    monkeypatch.setattr(nb, "TOP_K", 2)
    monkeypatch.setattr(nb, "KINDS", (("artist", "artist_id", 2, 50),))


def _rows(plays: list[tuple[int, int, int, int]]) -> list[dict]:
    """(user, artist, ts, listened) -> rows; each artist has one track, media id = 10 * artist."""
    return [
        {"user_id": u, "artist_id": a, "media_id": 10 * a, "ts_listen": t, "is_listened": y} for u, a, t, y in plays
    ]


# Before the snapshot at MONDAY: users 1 and 2 listen to artists 10 and 11, user 3 to 10 and 12 (and
# skips 11: a skip puts no one in a listener set), user 4 to 12 and 14 (14 has one listener: left out).
T0 = MONDAY - 5 * DAY
SNAPSHOT_PLAYS = [
    (1, 10, T0, 1),
    (1, 11, T0 + 60, 1),
    (2, 10, T0 + 120, 1),
    (2, 11, T0 + 180, 1),
    (3, 10, T0 + 240, 1),
    (3, 12, T0 + 300, 1),
    (3, 11, T0 + 360, 0),
    (4, 12, T0 + 420, 1),
    (4, 14, T0 + 480, 1),
]
LATER_PLAYS = [
    (5, 11, MONDAY, 1),  # at the snapshot time itself: not in it (else 11 and 12 would be co-listened)
    (5, 12, MONDAY, 1),
    (9, 11, MONDAY + 60, 1),  # user 9 meets artist 10's neighbours only after the snapshot
    (9, 11, MONDAY + 120, 0),
    (9, 12, MONDAY + 180, 0),
]
HISTORY = _rows(SNAPSHOT_PLAYS + LATER_PLAYS)

# Listener sets {10, 11}, {10, 11}, {10, 12}, {12}, weighted 1 / sqrt(set size): w = 1/sqrt2, 1/sqrt2,
# 1/sqrt2, 1.  Cosines: 10~11 = (w1 + w2) / sqrt((w1 + w2 + w3) (w1 + w2)) = sqrt(2/3);
# 10~12 = w3 / sqrt((w1 + w2 + w3) (w3 + w4)); 11~12 = 0 (no common listener: not a neighbour).
W = 1 / np.sqrt(2)
S_10_11 = np.sqrt(2 / 3)
S_10_12 = W / np.sqrt(3 * W * (W + 1))  # 0.3716


_features = partial(group_features, neighbours_features, BASE, settings=SETTINGS)


def _user_rate(listens: int, plays: int, g_listens: int, g_plays: int) -> float:
    """The user's as-of rate, toward the global as-of rate (one pseudo-play at 0.5)."""
    return (listens + K * (g_listens + 0.5) / (g_plays + 1)) / (plays + K)


def test_every_feature_hand_computed(small):
    out = _features(HISTORY, [{"user_id": 9, "artist_id": 10, "ts_listen": MONDAY + DAY}])
    assert list(out.columns) == ARTIST_COLS
    assert all(out[c].dtype == np.float32 for c in ARTIST_COLS)
    # User 9 before the target: artist 11 twice (1 listen), artist 12 once (skipped).
    # Globally 14 plays, 11 listens before the target.
    ur = _user_rate(1, 3, 11, 14)
    w_plays, w_listens = 2 * S_10_11 + S_10_12, S_10_11
    rate = (w_listens + 2.0 * ur) / (w_plays + 2.0)  # NEIGHBOUR_PRIOR_STRENGTH = 2
    want = [rate, rate - ur, np.log1p(w_plays), 1.0]
    assert_allclose(out.iloc[0].to_numpy(), want, rtol=1e-6)


def test_only_plays_strictly_before_the_target_count(small):
    # At MONDAY + 120 the skip of 11 (same second) is excluded: one listen of 11, nothing of 12.
    out = _features(HISTORY, [{"user_id": 9, "artist_id": 10, "ts_listen": MONDAY + 120}])
    ur = _user_rate(1, 1, 11, 12)  # before it: 9 snapshot plays, 2 of user 5, 1 of user 9; one skip
    rate = (S_10_11 + 2.0 * ur) / (S_10_11 + 2.0)
    assert_allclose(out.iloc[0].to_numpy(), [rate, rate - ur, np.log1p(S_10_11), 1.0], rtol=1e-6)


def test_a_row_at_the_snapshot_time_is_not_in_the_snapshot(small):
    # Artist 12's neighbours: 10 only.  Had user 5's plays at MONDAY counted, 11 would be one too.
    out = _features(HISTORY, [{"user_id": 1, "artist_id": 12, "ts_listen": MONDAY + DAY}])
    ur = _user_rate(2, 2, 11, 14)  # user 1: 10 and 11, both listened
    rate = (S_10_12 + 2.0 * ur) / (S_10_12 + 2.0)  # one play of 10, listened
    assert_allclose(out.iloc[0].to_numpy(), [rate, rate - ur, np.log1p(S_10_12), 1.0], rtol=1e-6)


@pytest.mark.parametrize(
    ("case", "target"),
    [
        ("artist with one listener: not in the similarity", {"user_id": 9, "artist_id": 14}),
        ("artist never played", {"user_id": 9, "artist_id": 99}),
        ("user who met no neighbour", {"user_id": 4, "artist_id": 11}),
    ],
)
def test_no_neighbourhood_falls_back_to_the_users_rate(small, case, target):
    out = _features(HISTORY, [{**target, "ts_listen": MONDAY + DAY}])
    row = out.iloc[0]
    assert row["neighbours_artist_lift"] == 0, case
    assert row["neighbours_artist_log_plays"] == 0 and row["neighbours_artist_met"] == 0, case


def test_no_snapshot_before_the_first_rows(small):
    # The snapshot before MONDAY - DAY is MONDAY - 7 days: no rows before it, so no neighbours even
    # though user 1 has played artist 11 (a neighbour of 10 later on).
    out = _features(HISTORY, [{"user_id": 1, "artist_id": 10, "ts_listen": MONDAY - DAY}])
    ur = _user_rate(2, 2, 8, 9)
    assert_allclose(out.iloc[0].to_numpy(), [ur, 0.0, 0.0, 0.0], rtol=1e-6)


def test_tracks_work_like_artists(monkeypatch, small):
    # Each artist has one track (media = 10 * artist): the media kind gives the artist numbers.
    monkeypatch.setattr(nb, "KINDS", (("artist", "artist_id", 2, 50), ("media", "media_id", 2, 50)))
    out = _features(HISTORY, [{"user_id": 9, "artist_id": 10, "media_id": 100, "ts_listen": MONDAY + DAY}])
    for name in ("rate", "lift", "log_plays", "met"):
        assert out[f"neighbours_media_{name}"].iloc[0] == out[f"neighbours_artist_{name}"].iloc[0]


def test_default_columns():
    out = neighbours_features(History(train_frame(BASE, []), settings=SETTINGS), targets_frame(BASE, [{}]))
    assert list(out.columns) == [
        f"neighbours_{k}_{n}" for k, *_ in nb.KINDS for n in ("rate", "lift", "log_plays", "met")
    ]
    assert_allclose(out.iloc[0].to_numpy(), [0.5, 0, 0, 0] * len(nb.KINDS))  # empty history: the 0.5 prior


# --- the similarity itself -----------------------------------------------------------


def _neighbours(users, items, listened, cand, *, min_listeners=1, user_cap=50, top_k=3):
    return item_neighbours(
        np.array(users),
        np.array(items),
        np.array(listened, dtype=bool),
        max(users) + 1,
        max(items) + 1,
        np.array(cand),
        min_listeners=min_listeners,
        user_cap=user_cap,
        top_k=top_k,
    )


def test_equal_similarities_go_to_the_lower_item():
    # One user listened to 0, 2 and 1: candidate 0's neighbours 1 and 2 are equally similar (1.0).
    got, sim = _neighbours([0, 0, 0], [0, 2, 1], [1, 1, 1], [0, 2])
    np.testing.assert_array_equal(got, [[1, 2, -1], [0, 1, -1]])
    assert_allclose(sim, [[1, 1, 0], [1, 1, 0]])


def test_user_cap_keeps_each_users_most_listened():
    # User 0 listened to item 0 twice and item 1 once; user 1 to items 1 and 2 once each.
    users, items, listened = [0, 0, 0, 1, 1], [0, 0, 1, 1, 2], [1, 1, 1, 1, 1]
    # Capped to one item each: user 0 keeps 0 (most listened), user 1 keeps 1 (tie: lower code).
    got, _ = _neighbours(users, items, listened, [0, 1, 2], user_cap=1)
    assert (got == -1).all()
    # Uncapped: sets {0, 1} and {1, 2}, weights 1/sqrt2: 1~0 = 1~2 = 1/sqrt2 / sqrt(2/sqrt2 * 1/sqrt2).
    got, sim = _neighbours(users, items, listened, [1], user_cap=2)
    np.testing.assert_array_equal(got, [[0, 2, -1]])
    assert_allclose(sim[0, :2], [np.sqrt(0.5)] * 2, rtol=1e-6)


def test_skips_and_thin_items_stay_out():
    # Item 2 was only skipped; with min_listeners=2 item 3 (one listener) is left out too.
    got, _ = _neighbours([0, 0, 0, 1, 1, 1], [0, 1, 2, 0, 1, 3], [1, 1, 0, 1, 1, 1], [0], min_listeners=2)
    np.testing.assert_array_equal(got, [[1, -1, -1]])


# --- past only, over several snapshots -----------------------------------------------


def _random_history(seed: int, n: int = 900) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    user = rng.integers(0, 20, n)
    artist = (user % 3) * 10 + rng.integers(0, 5, n)  # three loose taste blocks
    ts = MONDAY - 14 * DAY + rng.integers(0, 28 * DAY, n)  # four weeks: snapshots MONDAY - 7d .. MONDAY + 7d
    ts[:4] = [1, 79, 1980, 316000000]  # broken clocks
    plays = list(zip(user, artist, ts, (rng.random(n) < 0.6).astype(int), strict=True))
    df = train_frame(BASE, _rows([(int(u), int(a), int(t), int(y)) for u, a, t, y in plays]))
    df["media_id"] = df["artist_id"] * 10 + rng.integers(0, 3, n)
    return df


@pytest.fixture
def both_kinds(monkeypatch):
    monkeypatch.setattr(nb, "MIN_SNAPSHOT_ROWS", 1)
    monkeypatch.setattr(nb, "TOP_K", 4)
    monkeypatch.setattr(nb, "KINDS", (("artist", "artist_id", 2, 50), ("media", "media_id", 2, 5)))


def _targets(df: pd.DataFrame) -> pd.DataFrame:
    picks = df[df["ts_listen"] > MONDAY - 7 * DAY].sample(30, random_state=1)
    return targets_frame(BASE, picks.drop(columns="is_listened").to_dict("records"))


def test_changing_the_future_moves_nothing(both_kinds):
    rng = np.random.default_rng(5)
    df = _random_history(3)
    tg = _targets(df)
    draws = {"artist_id": (0, 40), "media_id": (0, 400)}
    change = partial(redraw_future, rng=rng, draws=draws, extra=30, extra_later=5, shuffle=True)
    base, runs = future_changed(neighbours_features, df, tg, change, settings=SETTINGS)
    assert base["neighbours_artist_met"].sum() > 10 and base["neighbours_media_met"].sum() > 5
    assert len(np.unique(nb._snapshot_number(tg["ts_listen"].to_numpy()))) >= 2
    for i, got in runs:
        assert_allclose(got.to_numpy(), base.iloc[[i]].to_numpy(), rtol=1e-6, err_msg=f"target {i}")


def test_changing_the_snapshot_moves_something(both_kinds):
    # Other users' plays before each target's snapshot: only the similarity sees them.
    df = _random_history(4)
    tg = _targets(df)
    base = neighbours_features(History(df, settings=SETTINGS), tg)
    first_snapshot = nb._snapshot_time(nb._snapshot_number(tg["ts_listen"].to_numpy()).min())
    changed = df.copy()
    past = (df["ts_listen"].to_numpy() < first_snapshot) & ~df["user_id"].isin(tg["user_id"]).to_numpy()
    assert past.sum() > 20
    changed.loc[past, "is_listened"] = 1 - changed.loc[past, "is_listened"]
    after = neighbours_features(History(changed, settings=SETTINGS), tg)
    for kind in ("artist", "media"):
        assert not np.allclose(after[f"neighbours_{kind}_log_plays"], base[f"neighbours_{kind}_log_plays"]), kind
