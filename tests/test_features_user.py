"""Hand-computed tests of the user feature group."""

from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from core.schema import BROKEN_CLOCK_BEFORE
from core.settings import FeatureSettings
from features.history import History
from features.user import user_features
from tests.featurekit import assert_features, base_row, change_future, future_changed, group_features, logit
from tests.frames import targets_frame, train_frame

T = 1_478_000_000  # 2016-11-01 11:33:20 UTC
DAY = 86_400
TA = T + DAY + 1000  # the main target's time
H3, H14 = 3 * DAY, 14 * DAY  # the half-lives, in seconds
K = 2.0  # PRIOR_STRENGTH in these tests (patched), to keep the arithmetic short
SETTINGS = FeatureSettings(session_gap_minutes=10.0, prior_strength=K)
NAN = np.nan
BASE = base_row(ts_listen=T)
_train = partial(train_frame, BASE)
_targets = partial(targets_frame, BASE)
_features = partial(group_features, user_features, BASE, settings=SETTINGS)


def _w(age: float, h: float) -> float:
    """Decay weight of a play ``age`` seconds old."""
    return 2.0 ** (-age / h)


# Sessions (gap 600 s): user 1 has r0 (broken clock) | r1 r2 r3 | r4; user 2 r5 | r6; user 3 r8.
# Flow session starts (first Flow play of a session): r2, r4, r5.
HISTORY = [
    {"user_id": 1, "ts_listen": 79, "is_listened": 0},  # r0 broken clock
    {"user_id": 1, "ts_listen": T},  # r1
    {
        "user_id": 1,
        "ts_listen": T + 100,
        "listen_type": 1,
        "context_type": 1,
        "platform_name": 1,
        "is_listened": 0,
    },  # r2
    {"user_id": 1, "ts_listen": T + 200, "listen_type": 1, "context_type": 1},  # r3
    {"user_id": 1, "ts_listen": T + DAY, "listen_type": 1, "context_type": 1},  # r4
    {"user_id": 2, "ts_listen": T + 50, "listen_type": 1, "context_type": 1},  # r5
    {"user_id": 2, "ts_listen": TA + 4000, "platform_name": 1, "is_listened": 0},  # r6 future
    {"user_id": 1, "ts_listen": TA, "listen_type": 1, "context_type": 1, "is_listened": 0},  # r7 tie: excluded
    {"user_id": 3, "ts_listen": T + 10, "context_type": 2, "platform_name": 1},  # r8
]
TARGET = {"user_id": 1, "ts_listen": TA, "listen_type": 1, "context_type": 1, "platform_name": 0}

# Global, before TA: r0 r1 r2 r3 r4 r5 r8 -> 7 plays, 5 listened; Flow r2 r3 r4 r5 -> 4, 3 listened;
# Flow starts r2 r4 r5 -> 3, 2 listened.
G_RATE = (5 + 0.5) / (7 + 1)  # 0.6875
G_FLOW = (3 + K * G_RATE) / (4 + K)  # 0.729167
G_NONFLOW = (2 + K * G_RATE) / (3 + K)  # non-Flow r0 r1 r8: 3 plays, 2 listened -> 0.675
G_START = (2 + K * G_FLOW) / (3 + K)  # 0.691667
G_FLOW_SHARE = (4 + 0.5) / (7 + 1)  # 0.5625
CTX1_PRIOR = (3 + K * G_RATE) / (4 + K)  # context 1: r2 r3 r4 r5, 3 listened
PLAT0_PRIOR = (4 + K * G_RATE) / (5 + K)  # platform 0: r0 r1 r3 r4 r5, 4 listened
# User 1, before TA: r0..r4 -> 5 plays, 3 listened; Flow r2 r3 r4 (2 listened); starts r2 r4 (1 listened).
U_RATE = (3 + K * G_RATE) / (5 + K)  # 0.625
U_FLOW = (2 + K * G_FLOW) / (3 + K)  # 0.691667


def _expit(z: float) -> float:
    return 1.0 / (1.0 + np.exp(-z))


# The hierarchical chain: the user's Flow rate (r2 r3 r4: 2 listened of 3) toward the user's own rate
# moved by the global Flow gap in log-odds; their Flow starts (r2 r4: 1 of 2) toward that, moved by
# the global start-vs-Flow gap.
U_FLOW_OWN = (2 + K * _expit(logit(U_RATE) + logit(G_FLOW) - logit(G_RATE))) / (3 + K)
U_START_OWN = (1 + K * _expit(logit(U_FLOW_OWN) + logit(G_START) - logit(G_FLOW))) / (2 + K)
# Ages at TA of r1..r4 (r0 has a broken clock: weight 0).
A1, A2, A3, A4 = TA - T, TA - T - 100, TA - T - 200, TA - T - DAY


def _decayed(h: float, rows: tuple[int, ...], listened: tuple[int, ...]) -> tuple[float, float]:
    ages = {1: A1, 2: A2, 3: A3, 4: A4}
    return sum(_w(ages[r], h) for r in rows), sum(_w(ages[r], h) for r in listened)


D3, D3Y = _decayed(H3, (1, 2, 3, 4), (1, 3, 4))
D14, D14Y = _decayed(H14, (1, 2, 3, 4), (1, 3, 4))
D14F, D14FY = _decayed(H14, (2, 3, 4), (3, 4))

EXPECTED = {
    "user_log_plays": np.log(6),  # log1p(5 plays r0..r4)
    "user_log_flow_plays": np.log(4),  # 3 Flow plays
    "user_rate": U_RATE,
    "user_flow_rate": U_FLOW,
    "user_nonflow_rate": (1 + K * G_NONFLOW) / (2 + K),  # r0 r1: 1 listened -> 0.5875
    "user_flow_lift": U_FLOW - U_RATE,
    "user_flow_start_rate": (1 + K * G_START) / (2 + K),  # 0.595833
    "user_flow_share": (3 + K * G_FLOW_SHARE) / (5 + K),  # 0.589286
    "user_ctx_rate": (2 + K * CTX1_PRIOR) / (3 + K),  # user 1 in context 1: r2 r3 r4, 2 listened
    "user_log_ctx_plays": np.log(4),
    "user_platform_rate": (3 + K * PLAT0_PRIOR) / (4 + K),  # user 1 on platform 0: r0 r1 r3 r4, 3 listened
    "user_platform_share": 4 / 5,
    "user_rate_hl3d": (D3Y + K * U_RATE) / (D3 + K),
    "user_rate_hl14d": (D14Y + K * U_RATE) / (D14 + K),
    "user_flow_rate_hl14d": (D14FY + K * U_FLOW) / (D14F + K),
    "user_log_recent_plays_hl3d": np.log1p(D3),
    "user_active_days": 2,  # r1 r2 r3 on one UTC day, r4 the next; r0 (broken clock) not counted
    "user_days_since_first": (TA - T) / DAY,  # first valid play r1
    "user_flow_rate_own": U_FLOW_OWN,  # 0.668: below user_flow_rate (0.692), as the user skips more than most
    "user_flow_start_rate_own": U_START_OWN,
    "user_flow_gap_logit": logit(U_FLOW_OWN) - logit(U_RATE),
    "user_flow_start_gap_logit": logit(U_START_OWN) - logit(U_RATE),
}


def test_every_feature_hand_computed():
    assert_features(_features(HISTORY, [TARGET]), EXPECTED)


def test_rows_come_back_in_target_order():
    later = {**TARGET, "ts_listen": TA + 10_000}  # now r6 (user 2) and r7 (user 1, not listened) are in the past
    out = _features(HISTORY, [later, TARGET, later])
    assert_allclose(out["user_rate"].to_numpy()[[1]], [U_RATE], rtol=1e-6)
    assert out["user_rate"].iloc[0] == out["user_rate"].iloc[2] != out["user_rate"].iloc[1]
    # later: 9 plays, 5 listened; user 1 has r0..r4 and r7: 6 plays, 3 listened
    assert_allclose(out["user_rate"].iloc[0], (3 + K * (5.5 / 10)) / (6 + K), rtol=1e-6)


@pytest.mark.parametrize(
    ("case", "history", "target", "expected"),
    [
        (
            "unseen user: counts 0, every rate is its prior",
            HISTORY,
            {**TARGET, "user_id": 9},
            {
                "user_log_plays": 0,
                "user_log_flow_plays": 0,
                "user_rate": G_RATE,
                "user_flow_rate": G_FLOW,
                "user_nonflow_rate": G_NONFLOW,
                "user_flow_lift": G_FLOW - G_RATE,
                "user_flow_start_rate": G_START,
                "user_flow_share": G_FLOW_SHARE,
                "user_ctx_rate": CTX1_PRIOR,
                "user_log_ctx_plays": 0,
                "user_platform_rate": PLAT0_PRIOR,
                "user_platform_share": NAN,
                "user_rate_hl3d": G_RATE,
                "user_rate_hl14d": G_RATE,
                "user_flow_rate_hl14d": G_FLOW,
                "user_log_recent_plays_hl3d": 0,
                "user_active_days": 0,
                "user_days_since_first": NAN,
                # Without plays the chain falls through to the global rates.
                "user_flow_rate_own": G_FLOW,
                "user_flow_start_rate_own": G_START,
                "user_flow_gap_logit": logit(G_FLOW) - logit(G_RATE),
                "user_flow_start_gap_logit": logit(G_START) - logit(G_RATE),
            },
        ),
        (
            "empty history: the global prior is 0.5 (one pseudo-play at 0.5)",
            [],
            TARGET,
            {
                "user_log_plays": 0,
                "user_rate": 0.5,
                "user_flow_rate": 0.5,
                "user_ctx_rate": 0.5,
                "user_rate_hl3d": 0.5,
                "user_platform_share": NAN,
                "user_active_days": 0,
                "user_days_since_first": NAN,
            },
        ),
        (
            "unseen context and platform: their priors fall back to the global rate",
            HISTORY,
            {**TARGET, "context_type": 42, "platform_name": 2},
            {"user_ctx_rate": G_RATE, "user_log_ctx_plays": 0, "user_platform_rate": G_RATE, "user_platform_share": 0},
        ),
        (
            # before ts 100 only r0 (ts 79, not listened): global 0.5 / 2; user 1 has 1 play, 0 listened.
            # No valid-clock play before the target: decayed counts 0, no active day, no seniority.
            "broken-clock target",
            HISTORY,
            {**TARGET, "ts_listen": 100},
            {
                "user_log_plays": np.log(2),
                "user_rate": (0 + K * 0.25) / (1 + K),
                "user_rate_hl3d": (0 + K * 0.25) / (1 + K),
                "user_log_recent_plays_hl3d": 0,
                "user_active_days": 0,
                "user_days_since_first": NAN,
            },
        ),
        (
            # at T + 200: r3 (same time) is excluded; user 1 has r0 r1 r2 (1 listened), global also r5 r8.
            "a row at exactly the target's time is excluded",
            HISTORY,
            {**TARGET, "ts_listen": T + 200},
            {
                "user_log_plays": np.log(4),
                "user_rate": (1 + K * (3.5 / 6)) / (3 + K),
                "user_active_days": 1,
                "user_days_since_first": 200 / DAY,
            },
        ),
    ],
)
def test_edge_cases(case, history, target, expected):
    out = _features(history, [target])
    for col, want in expected.items():
        assert_allclose(out[col].iloc[0], want, rtol=1e-6, err_msg=f"{case}: {col}")


def test_decay_survives_a_clock_span_of_years():
    # A valid 2010 play and one a day before the target in 2016: 2**((2016 - 2010) / 3 days) would
    # overflow without the per-user anchor; the 2010 play's weight is ~0 and the rate is finite.
    old = BROKEN_CLOCK_BEFORE + 10
    rows = [{"ts_listen": old, "is_listened": 0}, {"ts_listen": TA - DAY}]
    out = _features(rows, [TARGET])
    d = _w(DAY, H3) + _w(TA - old, H3)  # the second term is 0 in float64
    u_rate = (1 + K * (1.5 / 3)) / (2 + K)
    assert_allclose(out["user_rate_hl3d"].iloc[0], (_w(DAY, H3) + K * u_rate) / (d + K), rtol=1e-6)
    assert_allclose(out["user_days_since_first"].iloc[0], (TA - old) / DAY, rtol=1e-6)
    assert np.isfinite(out.to_numpy(dtype=np.float64)[:, :-1]).all()


def test_decayed_rate_matches_a_direct_sum_on_random_data():
    hist, targets = _random(seed=3)
    out = user_features(History(hist, settings=SETTINGS), targets)
    h = 3 * DAY
    for i in range(0, len(targets), 7):
        tg = targets.iloc[i]
        past = hist[(hist["user_id"] == tg["user_id"]) & (hist["ts_listen"] < tg["ts_listen"])]
        y = past["is_listened"].to_numpy()
        ts = past["ts_listen"].to_numpy().astype(np.int64)
        g = hist[hist["ts_listen"] < tg["ts_listen"]]["is_listened"]
        u_rate = (y.sum() + K * (g.sum() + 0.5) / (len(g) + 1)) / (len(y) + K)
        w = np.where(ts >= BROKEN_CLOCK_BEFORE, 2.0 ** (-(tg["ts_listen"] - ts) / h), 0.0)
        want = ((w * y).sum() + K * u_rate) / (w.sum() + K)
        assert_allclose(out["user_rate_hl3d"].iloc[i], want, rtol=1e-5)


def _random(seed: int, n: int = 400) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    steps = np.where(rng.random(n) < 0.2, rng.integers(1000, 3 * DAY, n), rng.integers(0, 300, n))
    ts = T + np.cumsum(steps)
    ts[rng.random(n) < 0.03] = rng.choice([1, 79, 316_000_000, 1_300_000_000])
    rows = [
        {
            "user_id": int(rng.integers(0, 6)),
            "ts_listen": int(ts[i]),
            "listen_type": int(rng.random() < 0.4),
            "context_type": int(rng.choice([0, 1, 5])),
            "platform_name": int(rng.integers(0, 3)),
            "is_listened": int(rng.random() < 0.65),
        }
        for i in range(n)
    ]
    hist = _train(rows)
    picks = rng.choice(n, 40, replace=False)
    targets = _targets(
        [{**rows[i], "listen_type": 1} for i in picks] + [{**rows[0], "user_id": 77, "ts_listen": T + DAY}]
    )
    return hist, targets


#: Flip label and Flow of every future row, shuffle context and platform, move it up to 5000 s, reverse the extras' users.
FUTURE = {
    "flip": ("is_listened", "listen_type"),
    "permute": ("context_type", "platform_name"),
    "shift_ts": 5000,
    "reverse_extra_users": True,
}


@pytest.mark.parametrize("seed", [0, 1])
def test_past_only_changing_the_future_moves_nothing(seed):
    hist, targets = _random(seed)
    change = partial(change_future, seed=seed, **FUTURE)
    before, runs = future_changed(user_features, hist, targets, change, settings=SETTINGS)
    for i, after in runs:
        assert_allclose(after.iloc[0].to_numpy(), before.iloc[i].to_numpy(), rtol=1e-6, err_msg=f"target {i}")
