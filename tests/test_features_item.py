"""Hand-computed tests of the item feature group."""

from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from core.settings import FeatureSettings
from features.item import item_features
from tests.featurekit import assert_features, base_row, change_future, future_changed, group_features, random_catalogue
from tests.frames import targets_frame, train_frame

T = 1_478_000_000
TA = T + 100  # the main target's time
K = 2.0  # PRIOR_STRENGTH in these tests (patched), to keep the arithmetic short
SETTINGS = FeatureSettings(session_gap_minutes=10.0, prior_strength=K)
NAN = np.nan
BASE = base_row(genre_id=0, ts_listen=T, media_id=10, album_id=100, artist_id=1000)
_train = partial(train_frame, BASE)
_targets = partial(targets_frame, BASE)
_features = partial(group_features, item_features, BASE, settings=SETTINGS)


# Track 10 on album 100 by artist 1000 in genre 0 (unknown); track 11 same album, genre 5;
# track 12 another album of artist 1000; track 13 another artist.
HISTORY = [
    {"user_id": 1, "ts_listen": T},  # r1
    {"user_id": 2, "ts_listen": T + 10, "listen_type": 1, "is_listened": 0},  # r2
    {"user_id": 1, "ts_listen": T + 20, "listen_type": 1},  # r3 (user 1 again on track 10)
    {"user_id": 2, "ts_listen": T + 30, "listen_type": 1, "media_id": 11, "genre_id": 5},  # r4
    {"user_id": 3, "ts_listen": T + 40, "media_id": 12, "album_id": 101, "genre_id": 5, "is_listened": 0},  # r5
    {
        "user_id": 3,
        "ts_listen": T + 50,
        "listen_type": 1,
        "media_id": 13,
        "album_id": 102,
        "artist_id": 1001,
        "genre_id": 5,
    },  # r6
    {"user_id": 4, "ts_listen": TA, "listen_type": 1, "is_listened": 0},  # r7 tie: excluded
    {"user_id": 4, "ts_listen": TA + 500, "is_listened": 0},  # r8 future
]
TARGET = {"user_id": 9, "ts_listen": TA, "listen_type": 1}

# Global before TA: r1..r6 -> 6 plays, 4 listened; Flow r2 r3 r4 r6 -> 4 plays, 3 listened.
G_RATE = (4 + 0.5) / (6 + 1)  # 0.642857
G_FLOW = (3 + K * G_RATE) / (4 + K)  # 0.714286
# artist 1000: r1..r5, 3 listened; Flow r2 r3 r4, 2 listened.  Users 1, 2, 3.
ARTIST = (3 + K * G_RATE) / (5 + K)
ARTIST_FLOW = (2 + K * G_FLOW) / (3 + K)
# album 100: r1..r4, 3 listened; Flow r2 r3 r4, 2 listened -- smoothed toward the artist.
ALBUM = (3 + K * ARTIST) / (4 + K)
ALBUM_FLOW = (2 + K * ARTIST_FLOW) / (3 + K)

EXPECTED = {
    # genre 0: r1 r2 r3, 2 listened; Flow r2 r3, 1 listened
    "item_genre_log_plays": np.log1p(3),
    "item_genre_pop": np.log1p(1e6 * 3 / 6),
    "item_genre_rate": (2 + K * G_RATE) / (3 + K),
    "item_genre_flow_rate": (1 + K * G_FLOW) / (2 + K),
    "item_artist_log_plays": np.log1p(5),
    "item_artist_pop": np.log1p(1e6 * 5 / 6),
    "item_artist_rate": ARTIST,
    "item_artist_flow_rate": ARTIST_FLOW,
    "item_artist_plays_per_user": 5 / 3,
    "item_album_log_plays": np.log1p(4),
    "item_album_pop": np.log1p(1e6 * 4 / 6),
    "item_album_rate": ALBUM,
    "item_album_flow_rate": ALBUM_FLOW,
    # track 10: r1 r2 r3, 2 listened; Flow r2 r3, 1 listened; users 1 and 2 -- toward the album
    "item_media_log_plays": np.log1p(3),
    "item_media_pop": np.log1p(1e6 * 3 / 6),
    "item_media_rate": (2 + K * ALBUM) / (3 + K),
    "item_media_flow_rate": (1 + K * ALBUM_FLOW) / (2 + K),
    "item_media_plays_per_user": 3 / 2,
}


def test_every_feature_hand_computed():
    assert_features(_features(HISTORY, [TARGET]), EXPECTED)


UNSEEN = {
    "item_genre_rate": G_RATE,
    "item_artist_rate": G_RATE,
    "item_album_rate": G_RATE,
    "item_media_rate": G_RATE,
    "item_genre_flow_rate": G_FLOW,
    "item_media_flow_rate": G_FLOW,
    "item_media_log_plays": 0,
    "item_media_pop": 0,
    "item_artist_plays_per_user": NAN,
    "item_media_plays_per_user": NAN,
}


@pytest.mark.parametrize(
    ("case", "history", "target", "expected"),
    [
        (
            "unseen track, album, artist, genre: global priors",
            HISTORY,
            {**TARGET, "media_id": 99, "album_id": 999, "artist_id": 9999, "genre_id": 77},
            UNSEEN,
        ),
        # a new track on a known album borrows the album's rate (itself smoothed toward the artist)
        (
            "unseen track on a known album",
            HISTORY,
            {**TARGET, "media_id": 99},
            {
                "item_media_rate": ALBUM,
                "item_media_flow_rate": ALBUM_FLOW,
                "item_media_log_plays": 0,
                "item_album_rate": ALBUM,
                "item_media_plays_per_user": NAN,
            },
        ),
        (
            "empty history: rates 0.5, popularity 0",
            [],
            TARGET,
            {
                "item_media_rate": 0.5,
                "item_genre_flow_rate": 0.5,
                "item_artist_pop": 0,
                "item_media_log_plays": 0,
                "item_media_plays_per_user": NAN,
            },
        ),
        # at T + 20: r3 (same time) excluded; before: r1 r2 -> 2 plays, 1 listened, both track 10 by users 1, 2
        (
            "a row at exactly the target's time is excluded",
            HISTORY,
            {**TARGET, "ts_listen": T + 20},
            {
                "item_media_log_plays": np.log1p(2),
                "item_media_pop": np.log1p(1e6),
                "item_media_plays_per_user": 1.0,
                "item_genre_rate": (1 + K * (1.5 / 3)) / (2 + K),
            },
        ),
        # broken-clock plays count as plays (the play happened, only its clock is wrong)
        (
            "broken-clock history rows count",
            [{"ts_listen": 1, "is_listened": 0}, {"ts_listen": 79}],
            TARGET,
            {"item_media_log_plays": np.log1p(2), "item_media_rate": (1 + K * 0.5) / (2 + K)},
        ),
    ],
)
def test_edge_cases(case, history, target, expected):
    out = _features(history, [target])
    for col, want in expected.items():
        assert_allclose(out[col].iloc[0], want, rtol=1e-6, err_msg=f"{case}: {col}")


def test_popularity_share_is_stable_while_the_history_grows():
    # The same track share (1 play in 2) at two dates with different history sizes: equal pop.
    rows = [{"ts_listen": T}, {"ts_listen": T + 1, "media_id": 11}] + [
        {"ts_listen": T + 10 + i, "media_id": 10 + (i % 2)} for i in range(4)
    ]
    out = _features(rows, [{**TARGET, "ts_listen": T + 2}, {**TARGET, "ts_listen": T + 100}])
    assert out["item_media_pop"].iloc[0] == out["item_media_pop"].iloc[1]
    assert out["item_media_log_plays"].iloc[0] < out["item_media_log_plays"].iloc[1]


def _random(seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    extra = {"media_id": 555}  # an unseen track, at the latest time
    return random_catalogue(BASE, T, seed, broken_ts=79, n_media=30, n_users=8, flow_share=0.4, extra_target=extra)


#: Flip label and Flow of every future row, shuffle their ids among them.
FUTURE = {
    "flip": ("is_listened", "listen_type"),
    "permute": ("media_id", "album_id", "artist_id", "genre_id", "user_id"),
}


@pytest.mark.parametrize("seed", [0, 1])
def test_past_only_changing_the_future_moves_nothing(seed):
    hist, targets = _random(seed)
    change = partial(change_future, seed=seed, **FUTURE)
    before, runs = future_changed(item_features, hist, targets, change, settings=SETTINGS)
    for i, after in runs:
        assert_allclose(after.iloc[0].to_numpy(), before.iloc[i].to_numpy(), rtol=1e-6, err_msg=f"target {i}")
