"""Hand-computed tests of the user x item feature group."""

from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from core.settings import FeatureSettings
from features import user_item as user_item_module
from features.user_item import user_item_features
from tests.featurekit import assert_features, base_row, change_future, future_changed, group_features, random_catalogue
from tests.frames import targets_frame, train_frame

T = 1_478_000_000
TA = T + 1000  # the main target's time
K = 2.0  # PRIOR_STRENGTH in these tests (patched)
SETTINGS = FeatureSettings(session_gap_minutes=10.0, prior_strength=K)
KP = 1.0  # PAIR_PRIOR_STRENGTH in these tests (patched)
NAN = np.nan
BASE = base_row(genre_id=5, ts_listen=T, media_id=10, album_id=100, artist_id=1000)
_train = partial(train_frame, BASE)
_targets = partial(targets_frame, BASE)
_features = partial(group_features, user_item_features, BASE, settings=SETTINGS)


@pytest.fixture(autouse=True)
def _strength(monkeypatch):
    monkeypatch.setattr(user_item_module, "PAIR_PRIOR_STRENGTH", KP)


# User 1's plays (target: track 10, album 100, artist 1000, genre 5):
HISTORY = [
    {"ts_listen": T},  # r1 track 10
    {"ts_listen": T + 100, "media_id": 11, "artist_id": 1001, "is_listened": 0},  # r2 album 100, other artist
    {"ts_listen": T + 200, "is_listened": 0},  # r3 track 10 again, skipped
    {"ts_listen": T + 300, "media_id": 20, "album_id": 200, "artist_id": 2000},  # r4 genre 5 only
    {"ts_listen": T + 400, "media_id": 21, "album_id": 201, "genre_id": 6},  # r5 artist 1000, listened
    {"user_id": 2, "ts_listen": T + 50},  # r6 another user on track 10
    {"ts_listen": TA},  # r7 tie: excluded
    {"ts_listen": TA + 1000, "is_listened": 0},  # r8 future
]
TARGET = {"ts_listen": TA, "listen_type": 1}

G_RATE = (4 + 0.5) / (6 + 1)  # global before TA: r1..r6, 4 listened
U_RATE = (3 + K * G_RATE) / (5 + K)  # user 1: r1..r5, 3 listened
# First plays of a track by its user: r1 r2 r4 r5 (user 1), r6 (user 2) -> 5, 4 listened; of an artist: r1 r2 r4 r6 -> 4, 3.
G_NEW_MEDIA = (4 + K * G_RATE) / (5 + K)
G_NEW_ARTIST = (3 + K * G_RATE) / (4 + K)

EXPECTED = {
    "user_item_genre_log_plays": np.log1p(4),  # genre 5: r1 r2 r3 r4, 2 listened
    "user_item_genre_rate": (2 + KP * U_RATE) / (4 + KP),
    "user_item_genre_share": 4 / 5,
    "user_item_artist_log_plays": np.log1p(3),  # artist 1000: r1 r3 r5, 2 listened
    "user_item_artist_rate": (2 + KP * U_RATE) / (3 + KP),
    "user_item_artist_since_s": TA - (T + 400),  # last: r5
    "user_item_artist_last_listened": 1,
    "user_item_artist_share": 3 / 5,
    "user_item_album_log_plays": np.log1p(3),  # album 100: r1 r2 r3, 1 listened
    "user_item_album_rate": (1 + KP * U_RATE) / (3 + KP),
    "user_item_media_log_plays": np.log1p(2),  # track 10: r1 r3, 1 listened
    "user_item_media_rate": (1 + KP * U_RATE) / (2 + KP),
    "user_item_media_played": 1,
    "user_item_media_since_s": TA - (T + 200),  # last: r3
    "user_item_media_last_listened": 0,
    "user_item_new_artist_rate": (2 + K * G_NEW_ARTIST)
    / (3 + K),  # user 1's first plays of an artist: r1 r2 r4, 2 listened
    "user_item_new_media_rate": (3 + K * G_NEW_MEDIA)
    / (4 + K),  # user 1's first plays of a track: r1 r2 r4 r5, 3 listened
}


def test_every_feature_hand_computed():
    assert_features(_features(HISTORY, [TARGET]), EXPECTED)


NEVER = {
    "user_item_media_played": 0,
    "user_item_media_log_plays": 0,
    "user_item_media_since_s": NAN,
    "user_item_media_last_listened": NAN,
}


@pytest.mark.parametrize(
    ("case", "history", "target", "expected"),
    [
        (
            "unseen user: counts 0, rates at the global prior, shares undefined",
            HISTORY,
            {**TARGET, "user_id": 9},
            {
                **NEVER,
                "user_item_artist_rate": G_RATE,
                "user_item_media_rate": G_RATE,
                "user_item_artist_share": NAN,
                "user_item_genre_share": NAN,
                "user_item_artist_since_s": NAN,
            },
        ),
        (
            "known user, never played the track or artist: rates at the user's rate",
            HISTORY,
            {**TARGET, "media_id": 99, "artist_id": 9999},
            {
                **NEVER,
                "user_item_media_rate": U_RATE,
                "user_item_artist_rate": U_RATE,
                "user_item_artist_share": 0,
                "user_item_artist_last_listened": NAN,
            },
        ),
        (
            "empty history",
            [],
            TARGET,
            {**NEVER, "user_item_media_rate": 0.5, "user_item_genre_rate": 0.5, "user_item_genre_share": NAN},
        ),
        # at T + 200, r3 (same time) is excluded: track 10 only r1, listened, 200 s ago
        (
            "a row at exactly the target's time is excluded",
            HISTORY,
            {**TARGET, "ts_listen": T + 200},
            {
                "user_item_media_log_plays": np.log1p(1),
                "user_item_media_since_s": 200,
                "user_item_media_last_listened": 1,
            },
        ),
        # the last play of the track has a broken clock: it counts, but the gap is unknown
        (
            "broken-clock last play",
            [{"ts_listen": 79, "is_listened": 0}],
            TARGET,
            {
                "user_item_media_played": 1,
                "user_item_media_since_s": NAN,
                "user_item_media_last_listened": 0,
                "user_item_artist_since_s": NAN,
            },
        ),
    ],
)
def test_edge_cases(case, history, target, expected):
    out = _features(history, [target])
    for col, want in expected.items():
        assert_allclose(out[col].iloc[0], want, rtol=1e-6, err_msg=f"{case}: {col}")


def test_other_users_plays_do_not_count_as_the_users():
    # User 2 played track 10 (r6); for user 2, only that play counts.
    out = _features(HISTORY, [{**TARGET, "user_id": 2}])
    assert_allclose(out["user_item_media_log_plays"].iloc[0], np.log1p(1))
    assert_allclose(out["user_item_media_since_s"].iloc[0], TA - (T + 50))
    assert_allclose(out["user_item_genre_share"].iloc[0], 1.0)


def _random(seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    extra = {"user_id": 55}  # an unseen user, at the latest time
    return random_catalogue(BASE, T, seed, broken_ts=1, n_media=25, n_users=5, flow_share=None, extra_target=extra)


#: Flip the label of every future row, shuffle their ids among them.
FUTURE = {"flip": ("is_listened",), "permute": ("media_id", "album_id", "artist_id", "genre_id", "user_id")}


@pytest.mark.parametrize("seed", [0, 1])
def test_past_only_changing_the_future_moves_nothing(seed):
    hist, targets = _random(seed)
    change = partial(change_future, seed=seed, **FUTURE)
    before, runs = future_changed(user_item_features, hist, targets, change, settings=SETTINGS)
    for i, after in runs:
        assert_allclose(after.iloc[0].to_numpy(), before.iloc[i].to_numpy(), rtol=1e-6, err_msg=f"target {i}")
