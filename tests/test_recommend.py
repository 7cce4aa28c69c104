"""The recommender's candidate pool and reasons, checked on tiny hand-made histories."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.pool import NEIGHBOURS, candidate_pool, pool_context
from pipeline.pool import catalogue as _catalogue
from pipeline.recommend_eval import rank_metrics
from pipeline.recommend_why import _sentence
from tests.featurekit import base_row
from tests.frames import train_frame

DAY = 86_400
NOW = 1_480_000_000
BASE = base_row(ts_listen=NOW - DAY, context_type=1, listen_type=1, user_id=0, user_age=20, artist_id=100)


def _history() -> pd.DataFrame:
    rows = []
    # Track 7 is the most played lately, track 8 second; track 9 was popular 20 days ago only.
    rows += [{"user_id": 1, "media_id": 7, "artist_id": 70}] * 3
    rows += [{"user_id": 2, "media_id": 8, "artist_id": 80}] * 2
    rows += [{"user_id": 2, "media_id": 9, "artist_id": 90, "ts_listen": NOW - 20 * DAY}] * 5
    # User 0 listened to artist 100 (track 1) and heard track 8.
    rows += [{"user_id": 0, "media_id": 1, "artist_id": 100}, {"user_id": 0, "media_id": 8, "artist_id": 80}]
    rows += [{"user_id": 3, "media_id": 2, "artist_id": 100, "ts_listen": NOW - 20 * DAY}]  # artist 100, not recent
    rows += [{"user_id": 1, "media_id": 5, "artist_id": 50, "ts_listen": NOW + 10}]  # after now: never seen
    return train_frame(BASE, rows)


def test_pool_is_recent_popularity_plus_the_users_artists_minus_what_they_heard() -> None:
    df = _history()
    cat = _catalogue(df)
    mine = df[df["user_id"] == 0]
    pool = candidate_pool(df, cat, mine, now=NOW)
    assert pool.index.tolist() == [2, 7]  # 1 and 8 heard; 9 not recent; 5 is after now
    assert pool["source"].tolist() == ["your artists", "popular lately"]
    heard = candidate_pool(df, cat, mine, now=NOW, include_heard=True)
    assert heard.index.tolist() == [1, 2, 7, 8]
    new_user = candidate_pool(df, cat, df.iloc[:0], now=NOW)
    assert new_user.index.tolist() == [1, 7, 8] and set(new_user["source"]) == {"popular lately"}


def test_pool_of_a_past_moment_uses_only_plays_before_it() -> None:
    df = _history()
    pool = candidate_pool(df, _catalogue(df), df.iloc[:0], now=NOW - 19 * DAY)
    assert pool.index.tolist() == [2, 9]


def test_catalogue_counts_plays_and_keeps_the_latest_metadata() -> None:
    df = _history()
    cat = _catalogue(df)
    assert cat.loc[9, "plays"] == 5 and cat.loc[7, "artist_id"] == 70
    assert cat.index.is_unique and len(cat) == 6


def test_rank_metrics_by_hand() -> None:
    m = rank_metrics(np.array([1, 3, 11, 10]))
    assert m["hit_at_10"] == 0.75
    assert m["ndcg_at_10"] == (1 + 1 / np.log2(4) + 0 + 1 / np.log2(11)) / 4
    assert m["users"] == 4


def test_reasons_read_the_feature_value() -> None:
    assert _sentence("user_item_artist_log_plays", np.log1p(12)) == "you played this artist 12 times"
    assert _sentence("item_media_rate", 0.8) == "listeners keep it 80% of the time"
    assert _sentence("cf_artist_listen_cos", 0.3) == "users like you keep it"
    assert _sentence("unknown_feature", 1.0) is None and _sentence("item_media_rate", float("nan")) is None


def _co_listening(seed: int) -> pd.DataFrame:
    """40 users who each listen to a few of 12 artists (artists 0-5 and 6-11 tend to go together)."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(40):
        block = 0 if u < 20 else 6
        for a in rng.choice(6, size=4, replace=False) + block:
            rows += [{"user_id": u, "artist_id": 200 + a, "media_id": 1000 + 10 * a + int(rng.integers(3))}] * 2
        rows.append({"user_id": u, "artist_id": 200 + (6 - block) + int(rng.integers(6)), "media_id": 5})
    return train_frame(BASE, rows)


def test_warming_many_users_artists_at_once_gives_each_the_same_neighbours() -> None:
    df = _co_listening(seed=4)
    alone = pool_context(df, NOW)
    alone.warm(np.array([201]))
    together = pool_context(df, NOW)
    together.warm(np.array([207, 201, 203, 999]))  # 999: never played, no neighbours
    assert len(alone.near[201]) == NEIGHBOURS  # co-listened artists of the same block first
    assert alone.near[201].tolist() == together.near[201].tolist()
    assert set(alone.near[201].tolist()) <= set(range(200, 206))
    assert together.near[999].tolist() == []
    mine = df[df["user_id"] == 3]
    cold = candidate_pool(df, _catalogue(df), mine, now=NOW)
    warm = candidate_pool(df, _catalogue(df), mine, now=NOW, context=together)
    pd.testing.assert_frame_equal(cold, warm)
