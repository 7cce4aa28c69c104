"""Hand-computed tests of the time feature group."""

from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd
import pytest

from features.history import History
from features.time import time_features
from tests.featurekit import (
    MUTATIONS,
    base_row,
    future_changed,
    history,
    mutate_future,
    random_sessions,
    session_targets,
)
from tests.frames import targets_frame, train_frame

D = 1479722400  # Monday 2016-11-21 10:00:00 UTC
NAN = np.nan
BASE = base_row(ts_listen=D, user_id=0)
_train = partial(train_frame, BASE)
_targets = partial(targets_frame, BASE)
_hist = partial(history, BASE, gap_seconds=600)


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


@pytest.mark.parametrize("mutation", MUTATIONS)
def test_past_only(mutation: str) -> None:
    """Deleting, relabelling or moving every history row at or after t leaves the target's features unchanged."""
    df = random_sessions(BASE, D, 0)
    targets = session_targets(BASE, df, 1)
    change = partial(mutate_future, mutation=mutation)
    full, runs = future_changed(time_features, df, targets, change, gap_seconds=600)
    for i, got in runs:
        np.testing.assert_allclose(got.iloc[0].to_numpy(), full.iloc[i].to_numpy(), rtol=1e-6, err_msg=f"target {i}")
