"""Hand-computed tests of the genre group (genre 0 filled from the artist, the user's taste for it)."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
from numpy.testing import assert_allclose

from core.settings import FeatureSettings
from features.genre import GENRE_PRIOR_STRENGTH, artist_genres, filled_genre, genre_features
from features.history import History
from tests.featurekit import (
    assert_features,
    base_row,
    change_future,
    future_changed,
    group_features,
    logit,
    random_catalogue,
)
from tests.frames import targets_frame, train_frame

T = 1_478_000_000
TA = T + 1000  # the main target's time
K = 2.0  # PRIOR_STRENGTH in these tests
KG = GENRE_PRIOR_STRENGTH
SETTINGS = FeatureSettings(session_gap_minutes=10.0, prior_strength=K)
NAN = np.nan
BASE = base_row(genre_id=0, ts_listen=T, media_id=10, album_id=100, artist_id=1000)
_features = partial(group_features, genre_features, BASE, settings=SETTINGS)

# Artist 1000 first shows a genre (7) at T, on user 2's play; artist 3000 never shows one.
HISTORY = [
    {"user_id": 2, "album_id": 101, "genre_id": 7},  # r1 at T: artist 1000 is genre 7 from T on
    {},  # r2 at T, genre 0: the artist's genre is known only strictly after T -> stays 0
    {"ts_listen": T + 100, "is_listened": 0},  # r3 artist 1000, genre 0 -> 7, skipped
    {"ts_listen": T + 200, "artist_id": 2000, "genre_id": 7},  # r4 genre 7 shown, listened
    {"ts_listen": T + 300, "artist_id": 3000},  # r5 genre 0, artist never shows one -> 0
    {"ts_listen": T + 400, "artist_id": 4000, "genre_id": 8, "is_listened": 0},  # r6 genre 8
    {"ts_listen": TA + 10, "is_listened": 0},  # r7 future
]
TARGET = {"ts_listen": TA, "listen_type": 1}  # artist 1000, genre 0 -> 7

G_RATE = (4 + 0.5) / (6 + 1)  # every row before TA: r1..r6, 4 listened
U_RATE = (3 + K * G_RATE) / (5 + K)  # user 1: r2..r6, 3 listened
GENRE7_RATE = (1 + KG * U_RATE) / (2 + KG)  # user 1's genre-7 plays: r3 (skipped), r4 (listened)

EXPECTED = {
    "genre_known": 1,
    "genre_filled": 1,
    "genre_user_log_plays": np.log1p(2),
    "genre_user_rate": GENRE7_RATE,
    "genre_user_lift": logit(GENRE7_RATE) - logit(U_RATE),
    "genre_user_share": 2 / 5,
}
UNKNOWN = {
    "genre_known": 0,
    "genre_filled": 0,
    "genre_user_log_plays": NAN,
    "genre_user_rate": NAN,
    "genre_user_lift": NAN,
    "genre_user_share": NAN,
}


def test_every_feature_hand_computed():
    assert_features(_features(HISTORY, [TARGET]), EXPECTED)


@pytest.mark.parametrize(
    ("case", "target", "expected"),
    [
        ("the artist's genre shows at T itself: not before the target", {**TARGET, "ts_listen": T}, UNKNOWN),
        ("an artist that never showed a genre", {**TARGET, "artist_id": 3000}, UNKNOWN),
        (
            "a genre the file shows is kept, not filled (genre 8: r6, skipped)",
            {**TARGET, "genre_id": 8},
            {
                "genre_known": 1,
                "genre_filled": 0,
                "genre_user_log_plays": np.log1p(1),
                "genre_user_rate": KG * U_RATE / (1 + KG),
                "genre_user_share": 1 / 5,
            },
        ),
        (
            "an unseen user: no plays, the rate at the global prior, no lift, no share",
            {**TARGET, "user_id": 9},
            {
                "genre_known": 1,
                "genre_user_log_plays": 0,
                "genre_user_rate": G_RATE,
                "genre_user_lift": 0,
                "genre_user_share": NAN,
            },
        ),
    ],
)
def test_edge_cases(case, target, expected):
    out = _features(HISTORY, [target])
    for col, want in expected.items():
        assert_allclose(out[col].iloc[0], want, rtol=1e-6, atol=1e-12, err_msg=f"{case}: {col}")


def test_empty_history_knows_no_genre_but_a_shown_one():
    out = _features([], [TARGET, {**TARGET, "genre_id": 8}])
    assert out["genre_known"].tolist() == [0, 1]
    assert_allclose(out["genre_user_rate"].iloc[1], 0.5)


def test_filled_genre_by_hand():
    hist = History(train_frame(BASE, HISTORY), settings=SETTINGS)
    genres = artist_genres(hist)
    assert genres.artist.tolist() == [1000, 2000, 4000]
    assert genres.first_ts.tolist() == [T, T + 200, T + 400]
    assert genres.genre.tolist() == [7, 7, 8]
    got = filled_genre(
        genres, np.array([1000, 1000, 3000, 2000, 5]), np.array([0, 0, 0, 9, 0]), np.array([T, T + 1, TA, TA, TA])
    )
    assert got.tolist() == [0, 7, 0, 9, 0]


def test_first_genre_at_a_tied_time_is_the_lowest_whatever_the_row_order():
    rows = [{"genre_id": 9}, {"genre_id": 4, "media_id": 11}, {"ts_listen": T + 50, "genre_id": 2}]
    for ordered in (rows, rows[::-1]):
        genres = artist_genres(History(train_frame(BASE, ordered)))
        assert genres.genre.tolist() == [4]


def test_changing_the_past_moves_the_features():
    base = _features(HISTORY, [TARGET]).iloc[0]
    relabelled = [dict(r) for r in HISTORY]
    relabelled[2]["is_listened"] = 1  # r3, a filled genre-7 play, now listened
    assert _features(relabelled, [TARGET]).iloc[0]["genre_user_rate"] > base["genre_user_rate"]
    regenred = [dict(r) for r in HISTORY]
    regenred[0]["genre_id"] = 8  # r1: artist 1000 is now genre 8, the genre of r6 (skipped)
    moved = _features(regenred, [TARGET]).iloc[0]
    assert_allclose(moved["genre_user_log_plays"], np.log1p(2))  # r3 and r6
    assert moved["genre_user_rate"] < base["genre_user_rate"]


def test_a_later_genre_of_the_artist_does_not_fill_the_past():
    later = [*HISTORY, {"ts_listen": TA + 20, "artist_id": 3000, "genre_id": 5}]
    target = {**TARGET, "artist_id": 3000}
    out = _features(later, [target])
    assert out["genre_known"].iloc[0] == 0


def _random(seed: int):
    extra = {"user_id": 55}  # an unseen user, at the latest time
    return random_catalogue(BASE, T, seed, broken_ts=1, n_media=25, n_users=5, flow_share=0.4, extra_target=extra)


#: Flip the label of every future row, shuffle their ids (genres and artists too) among them.
FUTURE = {"flip": ("is_listened",), "permute": ("media_id", "album_id", "artist_id", "genre_id", "user_id")}


@pytest.mark.parametrize("seed", [0, 1])
def test_past_only_changing_the_future_moves_nothing(seed):
    hist, targets = _random(seed)
    assert (hist["genre_id"] == 0).any() and (targets["genre_id"] == 0).any()  # genre 0 to fill
    change = partial(change_future, seed=seed, **FUTURE)
    before, runs = future_changed(genre_features, hist, targets, change, settings=SETTINGS)
    assert before["genre_filled"].sum() > 0
    for i, after in runs:
        assert_allclose(after.iloc[0].to_numpy(), before.iloc[i].to_numpy(), rtol=1e-6, err_msg=f"target {i}")


def test_the_now_path_gets_the_same_features_from_one_users_rows_and_the_whole_historys_genres():
    hist = History(train_frame(BASE, HISTORY), settings=SETTINGS)
    targets = targets_frame(BASE, [TARGET])
    full = genre_features(hist, targets)
    mine = History(train_frame(BASE, HISTORY).query("user_id == 1").reset_index(drop=True), settings=SETTINGS)
    # Without the whole history's genres the user's own rows cannot fill genre 0 (r1 is user 2's).
    assert genre_features(mine, targets)["genre_filled"].iloc[0] == 0
    own = genre_features(mine, targets, genres=artist_genres(hist))
    assert_allclose(own["genre_user_log_plays"], full["genre_user_log_plays"])
