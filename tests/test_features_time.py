"""Hand-computed tests of the time feature group."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.history import History
from features.time import time_features
from tests.frames import targets_frame, train_frame

D = 1479722400  # Monday 2016-11-21 10:00:00 UTC
NAN = np.nan
BASE = {
    "genre_id": 1,
    "ts_listen": D,
    "media_id": 1,
    "album_id": 1,
    "context_type": 0,
    "release_date": 20160101,
    "platform_name": 0,
    "platform_family": 0,
    "media_duration": 200,
    "listen_type": 0,
    "user_gender": 0,
    "user_id": 0,
    "artist_id": 1,
    "user_age": 25,
    "is_listened": 1,
}


def _train(rows: list[dict]) -> pd.DataFrame:
    return train_frame(BASE, rows)


def _targets(rows: list[dict]) -> pd.DataFrame:
    return targets_frame(BASE, rows)


def _hist(rows: list[dict]) -> History:
    return History(_train(rows), gap_seconds=600)


# User 0: r0 on Sunday evening alone in its session; r1, r2 a session; r3, r4 a session
# (900 s after r2 > 600); r5 in the future of every target.  User 1: one broken-clock play.
HISTORY = [
    {"user_id": 0, "ts_listen": D - 50000, "listen_type": 1},  # r0
    {"user_id": 0, "ts_listen": D + 0},  # r1
    {"user_id": 0, "ts_listen": D + 100, "listen_type": 1, "is_listened": 0},  # r2
    {"user_id": 0, "ts_listen": D + 1000},  # r3
    {"user_id": 0, "ts_listen": D + 1200, "is_listened": 0},  # r4
    {"user_id": 0, "ts_listen": D + 5000, "listen_type": 1},  # r5
    {"user_id": 1, "ts_listen": 1, "listen_type": 1},  # q0: broken clock
]
LOG = np.log1p
# columns: hour, weekday, day_of_month, part_of_day, log_since_prev, first_of_session,
# session_position, plays_today, prev_session_plays, prev_session_log_seconds, log_since_prev_flow
COLUMNS = [
    "time_hour",
    "time_weekday",
    "time_day_of_month",
    "time_part_of_day",
    "time_log_since_prev",
    "time_first_of_session",
    "time_session_position",
    "time_plays_today",
    "time_prev_session_plays",
    "time_prev_session_log_seconds",
    "time_log_since_prev_flow",
]
CASES = {
    # Continues the r3-r4 session (gap 300): 2 plays before it in the session; r1-r4 today;
    # last complete session r1-r2 (2 plays over 100 s); last Flow play r2, 1400 s before.
    "continues": ({"user_id": 0, "ts_listen": D + 1500}, [10, 0, 21, 1, LOG(300), 0, 2, 4, 2, LOG(100), LOG(1400)]),
    # Gap 601 > 600 opens a session; last complete session is r3-r4 (2 plays over 200 s).
    "opens": ({"user_id": 0, "ts_listen": D + 1801}, [10, 0, 21, 1, LOG(601), 1, 0, 4, 2, LOG(200), LOG(1701)]),
    # Tie with r2 at D+100: r2 excluded. Continues r1's session (gap 100) at position 1;
    # today only r1; last complete session r0 (1 play, 0 s); last Flow play r0, 50100 s before.
    "tie": ({"user_id": 0, "ts_listen": D + 100}, [10, 0, 21, 1, LOG(100), 0, 1, 1, 1, LOG(0), LOG(50100)]),
    # Hour 23:59:59 on Sunday 20 Nov (part 3); previous play r0 at 20:06:40 (13999 s; raw gap > 600).
    "evening": (
        {"user_id": 0, "ts_listen": D - 36001},
        [23, 6, 20, 3, LOG(13999), 1, 0, 1, 1, LOG(0), LOG(13999)],
    ),
    "unseen_user": ({"user_id": 7, "ts_listen": D + 1500}, [10, 0, 21, 1, NAN, 1, 0, 0, 0, NAN, NAN]),
    # Broken target clock: no calendar, no day; nothing of user 0 before ts 79.
    "broken_target": ({"user_id": 0, "ts_listen": 79}, [NAN, NAN, NAN, NAN, NAN, 1, 0, NAN, 0, NAN, NAN]),
    # Previous play at ts 1 (broken): gap NaN but a new session; that session was 1 play, 0 s.
    "broken_previous": ({"user_id": 1, "ts_listen": D}, [10, 0, 21, 1, NAN, 1, 0, 0, 1, LOG(0), NAN]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_hand_computed(name: str) -> None:
    target, expected = CASES[name]
    out = time_features(_hist(HISTORY), _targets([target]))
    assert list(out.columns) == COLUMNS
    np.testing.assert_allclose(out.iloc[0].to_numpy(dtype=np.float64), expected, rtol=1e-6)


def test_empty_history() -> None:
    hist = History(_train([]).iloc[:0], gap_seconds=600)
    out = time_features(hist, _targets([{"user_id": 0, "ts_listen": D + 1500}]))
    expected = [10, 0, 21, 1, NAN, 1, 0, 0, 0, NAN, NAN]
    np.testing.assert_allclose(out.iloc[0].to_numpy(dtype=np.float64), expected, rtol=1e-6)


def test_contract_order_and_dtype() -> None:
    targets = _targets([c[0] for c in CASES.values()])
    hist = _hist(HISTORY)
    out = time_features(hist, targets)
    assert isinstance(out.index, pd.RangeIndex) and len(out) == len(targets)
    assert all(c.startswith("time_") for c in out.columns)
    assert all(out[c].dtype == np.float32 for c in out.columns)
    assert not np.isinf(out.to_numpy()).any()
    # Rows follow the targets' order: reversing the targets reverses the features.
    rev = time_features(hist, targets.iloc[::-1].reset_index(drop=True))
    np.testing.assert_array_equal(rev.to_numpy(), out.to_numpy()[::-1])


def _random_history(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = 300
    ts = D + np.cumsum(rng.choice([5, 60, 200, 700, 5000], size=n))
    ts[rng.random(n) < 0.03] = rng.choice([1, 79, 315532800 + 5])
    ts[rng.random(n) < 0.1] = D + 3000  # ties
    rows = {
        "user_id": rng.integers(0, 4, n),
        "ts_listen": ts,
        "is_listened": rng.integers(0, 2, n),
        "listen_type": rng.integers(0, 2, n),
    }
    return _train([dict(zip(rows, v, strict=True)) for v in zip(*rows.values(), strict=True)])


@pytest.mark.parametrize("mutation", ["delete", "relabel", "move"])
def test_past_only(mutation: str) -> None:
    """Deleting, relabelling or moving every history row at or after t leaves the target's features unchanged."""
    df = _random_history(0)
    rng = np.random.default_rng(1)
    pick = rng.choice(len(df), 25, replace=False)
    targets = _targets(df.iloc[pick].drop(columns="is_listened").to_dict("records"))
    targets.loc[0, "user_id"] = 9  # an unseen user
    full = time_features(History(df, gap_seconds=600), targets)
    for i in range(len(targets)):
        t = targets["ts_listen"].iloc[i]
        fut = df["ts_listen"].to_numpy() >= t
        mut = df.copy()
        if mutation == "delete":
            mut = mut[~fut]
        elif mutation == "relabel":
            mut.loc[fut, "is_listened"] = 1 - mut.loc[fut, "is_listened"]
            mut.loc[fut, "listen_type"] = 1 - mut.loc[fut, "listen_type"]
            mut.loc[fut, "user_id"] = (mut.loc[fut, "user_id"] + 1) % 4
        else:
            mut.loc[fut, "ts_listen"] = mut.loc[fut, "ts_listen"] + 7
        got = time_features(History(mut, gap_seconds=600), targets.iloc[[i]].reset_index(drop=True))
        np.testing.assert_allclose(got.iloc[0].to_numpy(), full.iloc[i].to_numpy(), rtol=1e-6, err_msg=f"target {i}")
