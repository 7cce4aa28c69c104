"""Past-only by construction, checked for every registered feature group.

For a target at time t, every history row at or after t (any user's) is relabelled,
re-pointed at other tracks, deleted or duplicated, and new future rows are added; the
target's features must not move.  Features are also computed for the target alone
rather than in a batch, so a group cannot lean on the other targets either.
"""

import numpy as np
import pandas as pd
import pytest

from core.schema import TRAIN_COLUMNS
from features import FEATURE_GROUPS
from features.history import History
from pipeline.build_features import compute_group, compute_with_riders
from pipeline.data.examples import build_test_examples, build_train_examples

T0 = 1_478_000_000  # early Nov 2016


def _history(seed: int, n_users: int = 25, plays: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = n_users * plays
    user = np.repeat(np.arange(n_users), plays)
    # sessions: bursts of plays a few minutes apart, separated by hours
    steps = np.where(rng.random(n) < 0.15, rng.integers(3_600, 90_000, n), rng.integers(5, 400, n))
    ts = T0 + rng.integers(0, 86_400, n_users)[user] + np.cumsum(steps.reshape(n_users, plays), axis=1).ravel()
    media = rng.integers(0, 40, n)
    df = pd.DataFrame(
        {
            "genre_id": media % 7,
            "ts_listen": ts,
            "media_id": media + 1000,
            "album_id": media // 2 + 500,
            "context_type": rng.choice([0, 1, 5, 23], n),
            "release_date": rng.choice([20160101, 20161020, 19000101, 20001231], n),
            "platform_name": rng.integers(0, 3, n),
            "platform_family": rng.integers(0, 3, n),
            "media_duration": rng.choice([0, 180, 240, 700], n),
            "listen_type": (rng.random(n) < 0.5).astype(int),
            "user_gender": (user % 2),
            "user_id": user,
            "artist_id": media // 4 + 90,
            "user_age": 18 + user % 13,
            "is_listened": (rng.random(n) < 0.65).astype(int),
        }
    )
    df.loc[::97, "ts_listen"] = 1  # broken clocks
    return df.astype(TRAIN_COLUMNS)[list(TRAIN_COLUMNS)]


def _future_changed(df: pd.DataFrame, t: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    fut = df["ts_listen"].to_numpy() >= t
    out = df.copy()
    out.loc[fut, "is_listened"] = 1 - out.loc[fut, "is_listened"]
    out.loc[fut, "media_id"] = rng.permutation(out.loc[fut, "media_id"].to_numpy())
    out.loc[fut, "artist_id"] = rng.permutation(out.loc[fut, "artist_id"].to_numpy())
    out.loc[fut, "genre_id"] = rng.permutation(out.loc[fut, "genre_id"].to_numpy())
    out.loc[fut, "listen_type"] = 1 - out.loc[fut, "listen_type"]
    drop = np.flatnonzero(fut)[::3]
    extra = out[fut].head(40).copy()
    extra["ts_listen"] = extra["ts_listen"] + 7
    out = pd.concat([out.drop(index=drop), extra], ignore_index=True)
    return out.sample(frac=1.0, random_state=seed).reset_index(drop=True).astype(TRAIN_COLUMNS)


def _targets(history: pd.DataFrame) -> pd.DataFrame:
    train_ex = build_train_examples(history, rounds=3, gap_seconds=600)
    # test-like targets: each user's next play after the history, plus an unseen user
    test = history.sort_values("ts_listen").groupby("user_id").tail(1).head(6).copy()
    test["ts_listen"] = test["ts_listen"] + 3_600
    test.loc[test.index[0], "user_id"] = 999  # never seen
    test = test.drop(columns="is_listened").reset_index(drop=True)
    test.insert(0, "sample_id", np.arange(len(test), dtype=np.int32))
    test_ex = build_test_examples(test)
    return pd.concat([train_ex.drop(columns="is_listened"), test_ex], ignore_index=True).assign(
        example_id=lambda d: np.arange(len(d))
    )


@pytest.mark.parametrize("group", list(FEATURE_GROUPS))
def test_changing_the_future_moves_nothing(group):
    hist = _history(seed=1)
    targets = _targets(hist)
    batch = compute_group(group, History(hist, gap_seconds=600), targets).drop(columns="example_id")
    # a spread of targets: earliest, middle and latest rounds, and test-like rows
    picks = np.unique(np.r_[0, len(targets) // 3, len(targets) // 2, len(targets) - 1, len(targets) - 4])
    for i, pick in enumerate(picks):
        t = int(targets.loc[pick, "ts_listen"])
        changed = _future_changed(hist, t, seed=10 + i)
        assert not changed.equals(hist)
        one = targets.iloc[[pick]].reset_index(drop=True)
        alone = compute_group(group, History(changed, gap_seconds=600), one).drop(columns="example_id")
        np.testing.assert_allclose(
            alone.iloc[0].to_numpy(dtype=float),
            batch.iloc[pick].to_numpy(dtype=float),
            rtol=1e-5,
            atol=1e-6,
            equal_nan=True,
            err_msg=f"group {group!r}: features of target {pick} (t={t}) moved when rows at/after t changed",
        )


# media features come from the target row itself, not from history
@pytest.mark.parametrize("group", [g for g in FEATURE_GROUPS if g != "media"])
def test_the_past_does_move_something(group):
    """Guard against a vacuous pass: changing the past must change some history feature."""
    hist = _history(seed=2)
    targets = _targets(hist)
    before = compute_group(group, History(hist, gap_seconds=600), targets).drop(columns="example_id")
    t_max = int(targets["ts_listen"].max())
    past = hist["ts_listen"].to_numpy() < t_max
    changed = hist.copy()
    changed.loc[past, "is_listened"] = 1 - changed.loc[past, "is_listened"]
    changed.loc[past, "ts_listen"] = changed.loc[past, "ts_listen"] - 3_000
    after = compute_group(group, History(changed, gap_seconds=600), targets).drop(columns="example_id")
    assert not np.allclose(before.to_numpy(float), after.to_numpy(float), equal_nan=True)


@pytest.mark.parametrize("group", list(FEATURE_GROUPS))
def test_riders_leave_the_test_rows_bytes_alone(group):
    """The report's sample candidates ride along in the test pass (make features): the test
    rows' features must be the same bytes with and without them, and theirs the same as alone."""
    hist = _history(seed=3)
    targets = _targets(hist)
    test = targets[targets["round"] == 0].reset_index(drop=True)
    now = int(hist["ts_listen"].max()) + 3_600
    riders = targets.iloc[:30].copy()  # other users and tracks, put at "now" (as pipeline.pool does)
    riders["ts_listen"] = np.int32(now)
    riders["user_id"] = np.where(np.arange(30) < 20, 3, 999).astype(riders["user_id"].dtype)
    riders = riders.reset_index(drop=True).assign(example_id=np.arange(30, dtype=np.int64))
    history = History(hist, gap_seconds=600)
    alone = compute_group(group, history, test)
    with_riders, rider_rows = compute_with_riders(group, history, test, riders)
    pd.testing.assert_frame_equal(with_riders, alone, check_exact=True)
    pd.testing.assert_frame_equal(rider_rows, compute_group(group, history, riders), check_exact=True)
    assert rider_rows["example_id"].tolist() == list(range(30))
