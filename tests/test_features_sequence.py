"""Hand-computed tests of the sequence feature group."""

from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd
import pytest

from core.settings import FeatureSettings
from features import sequence as seq
from features.history import History
from features.sequence import sequence_features
from tests.featurekit import MUTATIONS, base_row, future_changed, mutate_future, random_sessions, session_targets
from tests.frames import targets_frame, train_frame

D = 1479722400  # Monday 2016-11-21 10:00:00 UTC
NAN = np.nan
BASE = base_row(ts_listen=D, user_id=0)
_train = partial(train_frame, BASE)
_targets = partial(targets_frame, BASE)

#: Fixed settings so the hand arithmetic below does not depend on the environment.
SETTINGS = FeatureSettings(session_gap_minutes=10.0, prior_strength=4.0)


@pytest.fixture(autouse=True)
def _strengths(monkeypatch: pytest.MonkeyPatch) -> None:
    # Fixed strengths so the hand arithmetic below does not depend on the environment.
    monkeypatch.setattr(seq, "WINDOW_STRENGTH", 2.0)
    monkeypatch.setattr(seq, "EMPTY_PRIOR", 0.5)


def _row(user: int, dt: int, listened: int, flow: int) -> dict:
    return {"user_id": user, "ts_listen": D + dt, "is_listened": listened, "listen_type": flow}


# Sessions (gap 600): user 0 has r0-r2 then r3-r5 (800 s silence); r6 is in every target's future.
HISTORY = [
    _row(0, 0, 1, 0),  # r0
    _row(0, 100, 1, 1),  # r1
    _row(0, 200, 0, 1),  # r2
    _row(0, 1000, 1, 1),  # r3
    _row(0, 1100, 0, 0),  # r4
    _row(0, 1200, 0, 1),  # r5
    _row(0, 3000, 1, 1),  # r6 (future)
    _row(1, 50, 0, 1),  # q0
    _row(1, 150, 0, 0),  # q1
]
COLUMNS = [
    "sequence_last_listened",
    "sequence_last_flow",
    "sequence_skip_streak",
    "sequence_rate_last_5",
    "sequence_rate_last_20",
    "sequence_rate_last_100",
    "sequence_flow_rate_last_5",
    "sequence_flow_rate_last_20",
    "sequence_flow_start_rate_last_5",
    "sequence_cur_session_skips",
    "sequence_cur_session_rate",
    "sequence_prev_session_skips",
    "sequence_prev_session_rate",
]
# Before D+1300: 8 rows (r0-r5, q0, q1), listens r0 r1 r3 -> g = 3/8 = 0.375;
# Flow rows r1 r2 r3 r5 q0, listens r1 r3 -> g_flow = 2/5 = 0.4.
# User 0: 6 plays, 3 listens -> u = (3 + 4*0.375)/(6 + 4) = 0.45;
# 4 Flow plays, 2 listens -> u_flow = (2 + 4*0.4)/(4 + 4) = 0.45.
# last 5 (r1-r5): 2 listens -> (2 + 2*0.45)/7; last 20/100 (all 6): (3 + 0.9)/8 = 0.4875;
# last 5/20 Flow (4 of them): (2 + 0.9)/6.  Skip streak: r5, r4 skipped, r3 listened -> 2.
# Flow session starts (first Flow play of a session): r1 (listened), r3 (listened), q0 (skipped)
# -> g_start = 2/3; user 0: 2 starts, 2 listens -> u_start = (2 + 4*2/3)/(2 + 4) = 7/9;
# last 5 starts (both): (2 + 2*7/9)/(2 + 2) = 8/9.
# Session r3-r5: 3 plays, 1 listen -> 2 skips, (1 + 0.9)/5 = 0.38;
# session r0-r2: 1 skip, (2 + 0.9)/5 = 0.58.
WIN0 = [2.9 / 7, 0.4875, 0.4875, 2.9 / 6, 2.9 / 6, 8 / 9]
CASES = {
    # Gap 100 from r5: continues r3-r5 (current), r0-r2 is the last complete session.
    "continues": ({"user_id": 0, "ts_listen": D + 1300}, [0, 1, 2, *WIN0, 2, 0.38, 1, 0.58]),
    # Gap 601 from r5: opens a session; r3-r5 is the last complete session. Same priors (no row in (D+1300, D+1801)).
    "opens": ({"user_id": 0, "ts_listen": D + 1801}, [0, 1, 2, *WIN0, 0, 0.45, 2, 0.38]),
    # Tie with r1 at D+100 (excluded for the user and for the global prior): before it only r0 and q0.
    # g = 1/2, g_flow = 0/1 = 0; u = (1 + 4*0.5)/(1 + 4) = 0.6; u_flow = (0 + 4*0)/4 = 0.
    # windows: (1 + 2*0.6)/(1 + 2) = 2.2/3; Flow windows empty -> u_flow = 0.
    # Starts: only q0 (skipped) -> g_start = 0; user 0 has none -> u_start = 0, window 0.
    # r0's session continues (gap 100): 0 skips, rate 2.2/3; no complete session -> 0 skips, rate u.
    "tie": (
        {"user_id": 0, "ts_listen": D + 100},
        [1, 0, 0, 2.2 / 3, 2.2 / 3, 2.2 / 3, 0, 0, 0, 0, 2.2 / 3, 0, 0.6],
    ),
    # User 1: q0, q1 both skipped -> u = (0 + 4*0.375)/(2 + 4) = 0.25; 1 Flow play skipped ->
    # u_flow = (0 + 4*0.4)/(1 + 4) = 0.32.  Streak 2 (does not run into user 0's rows).
    # windows (0 + 2*0.25)/(2 + 2) = 0.125; Flow windows (0 + 2*0.32)/(1 + 2) = 0.64/3.
    # Starts: q0 skipped -> u_start = (0 + 4*2/3)/(1 + 4) = 8/15, window (0 + 2*8/15)/(1 + 2) = 16/45.
    # Gap 1150 opens a session; last complete session q0-q1: 2 skips, (0 + 0.5)/(2 + 2) = 0.125.
    "other_user": (
        {"user_id": 1, "ts_listen": D + 1300},
        [0, 0, 2, 0.125, 0.125, 0.125, 0.64 / 3, 0.64 / 3, 16 / 45, 0, 0.25, 2, 0.125],
    ),
    # Unseen user: everything falls back to the global as-of rates (0.375, Flow 0.4, starts 2/3).
    "unseen_user": (
        {"user_id": 9, "ts_listen": D + 1300},
        [NAN, NAN, 0, 0.375, 0.375, 0.375, 0.4, 0.4, 2 / 3, 0, 0.375, 0, 0.375],
    ),
    # Broken clock: nothing before ts 79 at all -> EMPTY_PRIOR.
    "broken_clock": (
        {"user_id": 0, "ts_listen": 79},
        [NAN, NAN, 0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0, 0.5, 0, 0.5],
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_hand_computed(name: str) -> None:
    target, expected = CASES[name]
    out = sequence_features(History(_train(HISTORY), settings=SETTINGS), _targets([target]))
    assert list(out.columns) == COLUMNS
    np.testing.assert_allclose(out.iloc[0].to_numpy(dtype=np.float64), expected, rtol=1e-6)


def test_windows_cut_at_n() -> None:
    # Eight plays of user 0, listened L L L S S S S S (oldest first), all in one session, all Flow.
    # Global = user: 3 listens of 8 -> g = g_flow = 0.375; u = (3 + 4*0.375)/(8 + 4) = 0.375 = u_flow.
    # last 5 = 5 skips: (0 + 2*0.375)/(5 + 2) = 0.75/7; last 20 = all: (3 + 0.75)/10 = 0.375.
    hist = History(_train([_row(0, 10 * i, int(i < 3), 1) for i in range(8)]), settings=SETTINGS)
    out = sequence_features(hist, _targets([{"user_id": 0, "ts_listen": D + 100}])).iloc[0]
    assert out["sequence_skip_streak"] == 5
    np.testing.assert_allclose(out["sequence_rate_last_5"], 0.75 / 7, rtol=1e-6)
    np.testing.assert_allclose(out["sequence_rate_last_20"], 0.375, rtol=1e-6)
    np.testing.assert_allclose(out["sequence_flow_rate_last_5"], 0.75 / 7, rtol=1e-6)
    # One Flow session start (row 0, listened): g_start = 1, u_start = (1 + 4)/(1 + 4) = 1, window 1.
    np.testing.assert_allclose(out["sequence_flow_start_rate_last_5"], 1.0, rtol=1e-6)
    # Current session: 8 plays, 5 skips, (3 + 0.75)/10.
    assert out["sequence_cur_session_skips"] == 5
    np.testing.assert_allclose(out["sequence_cur_session_rate"], 0.375, rtol=1e-6)


def test_flow_start_window_cut_at_5() -> None:
    # Seven sessions of one Flow play each (1000 s apart), listened L L S S S S S: every play is a
    # Flow session start.  g_start = 2/7; u_start = (2 + 4*2/7)/(7 + 4) = 2/7;
    # last 5 starts all skipped: (0 + 2*2/7)/(5 + 2) = 4/49.
    hist = History(_train([_row(0, 1000 * i, int(i < 2), 1) for i in range(7)]), settings=SETTINGS)
    out = sequence_features(hist, _targets([{"user_id": 0, "ts_listen": D + 7000}])).iloc[0]
    np.testing.assert_allclose(out["sequence_flow_start_rate_last_5"], 4 / 49, rtol=1e-6)
    # The last complete session is the single skipped play r6: 1 skip, (0 + 2*2/7)/(1 + 2) = 4/21.
    assert out["sequence_prev_session_skips"] == 1
    np.testing.assert_allclose(out["sequence_prev_session_rate"], 4 / 21, rtol=1e-6)


def test_empty_history() -> None:
    out = sequence_features(History(_train([]), settings=SETTINGS), _targets([{"user_id": 0}]))
    np.testing.assert_allclose(
        out.iloc[0].to_numpy(dtype=np.float64), [NAN, NAN, 0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0, 0.5, 0, 0.5]
    )


def test_contract_order_and_dtype() -> None:
    targets = _targets([c[0] for c in CASES.values()])
    hist = History(_train(HISTORY), settings=SETTINGS)
    out = sequence_features(hist, targets)
    assert isinstance(out.index, pd.RangeIndex) and len(out) == len(targets)
    assert all(c.startswith("sequence_") for c in out.columns)
    assert all(out[c].dtype == np.float32 for c in out.columns)
    assert not np.isinf(out.to_numpy()).any()
    rev = sequence_features(hist, targets.iloc[::-1].reset_index(drop=True))
    np.testing.assert_array_equal(rev.to_numpy(), out.to_numpy()[::-1])


@pytest.mark.parametrize("mutation", MUTATIONS)
def test_past_only(mutation: str) -> None:
    """Deleting, relabelling or moving every history row at or after t leaves the target's features unchanged."""
    df = random_sessions(BASE, D, 0)
    targets = session_targets(BASE, df, 1)
    change = partial(mutate_future, mutation=mutation)
    full, runs = future_changed(sequence_features, df, targets, change, settings=SETTINGS)
    for i, got in runs:
        np.testing.assert_allclose(got.iloc[0].to_numpy(), full.iloc[i].to_numpy(), rtol=1e-6, err_msg=f"target {i}")
