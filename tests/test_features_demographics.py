"""Tests of the demographics group: as-of listen rates of (age band | gender) x play kind x genre cells."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest

from core.settings import FeatureSettings
from features import demographics
from features.demographics import age_band, demographics_features
from features.history import History
from tests.featurekit import base_row, future_changed, redraw_future, sampled_targets, targets_from_train
from tests.frames import train_frame

COLS = [
    "demographics_age_genre_rate",
    "demographics_age_genre_lift",
    "demographics_age_genre_n",
    "demographics_gender_genre_rate",
    "demographics_gender_genre_lift",
    "demographics_gender_genre_n",
    "demographics_age_flow_rate",
]


#: Every row names its time; plausible constants elsewhere.
BASE = base_row(genre_id=5, context_type=1, release_date=20100101, listen_type=1, user_age=20)
_frame = partial(train_frame, BASE)
_targets = partial(targets_from_train, BASE)


U1 = {"user_id": 1, "user_age": 20, "user_gender": 0}  # band 0
U2 = {"user_id": 2, "user_age": 24, "user_gender": 1}  # band 1
U3 = {"user_id": 3, "user_age": 19, "user_gender": 1}  # band 0
HISTORY = _frame(
    [
        {**U1, "ts_listen": 10, "is_listened": 1},
        {**U1, "ts_listen": 20, "is_listened": 0},
        {**U1, "ts_listen": 30, "is_listened": 1, "listen_type": 0},
        {**U2, "ts_listen": 15, "is_listened": 1},
        {**U2, "ts_listen": 25, "is_listened": 0, "genre_id": 6},
        {**U3, "ts_listen": 12, "is_listened": 1},
        {**U3, "ts_listen": 100, "is_listened": 0},  # at the target's time: excluded
    ]
)
# A new user of band 0 (age 21), gender 1, on a Flow play of genre 5 at ts 100.
#: A prior strength of 2 keeps the hand arithmetic short.
SETTINGS = FeatureSettings(session_gap_minutes=10.0, prior_strength=2.0)
CAND = {"user_id": 4, "user_age": 21, "user_gender": 1, "ts_listen": 100, "genre_id": 5, "listen_type": 1}


@pytest.fixture(autouse=True)
def _simple_priors(monkeypatch):
    monkeypatch.setattr(demographics, "DEFAULT_RATE", 0.5)


@pytest.mark.parametrize(("age", "band"), [(16, 0), (18, 0), (21, 0), (22, 1), (25, 1), (26, 2), (30, 2), (45, 2)])
def test_age_bands(age, band):
    assert age_band(np.array([age]))[0] == band


def test_hand_computed_rates():
    out = demographics_features(History(HISTORY, settings=SETTINGS), _targets([CAND]))
    assert list(out.columns) == COLS
    r = out.iloc[0]
    # Flow plays before 100: ts 10 (1), 20 (0), 15 (1), 25 (0), 12 (1) -> 3 / 5;
    # mode rate = (3 + 2 * 0.5) / (5 + 2) = 4/7.
    # Flow plays of genre 5: ts 10 (1), 20 (0), 15 (1), 12 (1) -> 3 / 4;
    # genre rate = (3 + 2 * 4/7) / (4 + 2) = 29/42.
    genre = 29 / 42
    # Band 0 x Flow x genre 5: users 1 and 3, ts 10 (1), 20 (0), 12 (1) -> 2 / 3;
    # rate = (2 + 2 * 29/42) / (3 + 2) = 142/210.
    assert r["demographics_age_genre_rate"] == pytest.approx(142 / 210, rel=1e-6)
    assert r["demographics_age_genre_lift"] == pytest.approx(142 / 210 - genre, abs=1e-6)  # -3/210
    assert r["demographics_age_genre_n"] == 3
    # Gender 1 x Flow x genre 5: users 2 and 3, ts 15 (1), 12 (1) -> 2 / 2;
    # rate = (2 + 2 * 29/42) / (2 + 2) = 142/168.
    assert r["demographics_gender_genre_rate"] == pytest.approx(142 / 168, rel=1e-6)
    assert r["demographics_gender_genre_lift"] == pytest.approx(142 / 168 - genre, abs=1e-6)  # 26/168
    assert r["demographics_gender_genre_n"] == 2
    # Band 0 x Flow, any genre: ts 10 (1), 20 (0), 12 (1) -> (2 + 2 * 4/7) / (3 + 2) = 22/35.
    assert r["demographics_age_flow_rate"] == pytest.approx(22 / 35, rel=1e-6)


def test_non_flow_target_uses_non_flow_cells():
    out = demographics_features(History(HISTORY, settings=SETTINGS), _targets([{**CAND, "listen_type": 0}]))
    r = out.iloc[0]
    # Non-Flow plays before 100: only ts 30 (1, user 1, band 0, gender 0, genre 5).
    mode = (1 + 2 * 0.5) / (1 + 2)  # 2/3
    genre = (1 + 2 * mode) / (1 + 2)  # 7/9
    assert r["demographics_age_genre_rate"] == pytest.approx((1 + 2 * genre) / (1 + 2), rel=1e-6)  # 23/27
    assert r["demographics_age_genre_n"] == 1
    # Gender 1 has no non-Flow play: the genre's rate, lift 0.
    assert r["demographics_gender_genre_rate"] == pytest.approx(genre, rel=1e-6)
    assert r["demographics_gender_genre_lift"] == 0 and r["demographics_gender_genre_n"] == 0
    assert r["demographics_age_flow_rate"] == pytest.approx((1 + 2 * mode) / (1 + 2), rel=1e-6)


@pytest.mark.parametrize(
    ("cand", "expected_rate"),
    [
        # Unseen genre: every cell falls back to the Flow rate 4/7.
        ({"genre_id": 99}, 4 / 7),
        # Before any history (broken clock): everything is DEFAULT_RATE.
        ({"ts_listen": 1}, 0.5),
        # Tie: at ts 10 the row at 10 is excluded, nothing is before -> DEFAULT_RATE.
        ({"ts_listen": 10}, 0.5),
    ],
)
def test_fallbacks_to_priors(cand, expected_rate):
    out = demographics_features(History(HISTORY, settings=SETTINGS), _targets([{**CAND, **cand}]))
    r = out.iloc[0]
    assert r["demographics_age_genre_rate"] == pytest.approx(expected_rate, rel=1e-6)
    assert r["demographics_gender_genre_rate"] == pytest.approx(expected_rate, rel=1e-6)
    assert r["demographics_age_genre_lift"] == 0 and r["demographics_age_genre_n"] == 0


def test_empty_history_and_no_targets():
    out = demographics_features(History(HISTORY[:0], settings=SETTINGS), _targets([CAND]))
    assert list(out.columns) == COLS
    assert out.loc[0, "demographics_age_genre_rate"] == pytest.approx(0.5)
    assert out.loc[0, "demographics_age_flow_rate"] == pytest.approx(0.5)
    out = demographics_features(History(HISTORY, settings=SETTINGS), _targets([]))
    assert list(out.columns) == COLS and len(out) == 0


def test_changing_the_future_moves_nothing():
    rng = np.random.default_rng(7)
    n = 500
    df = _frame(
        [
            {
                "user_id": int(u),
                "user_age": int(18 + u % 13),
                "user_gender": int(u % 2),
                "ts_listen": int(t),
                "genre_id": int(rng.integers(0, 4)),
                "listen_type": int(rng.random() < 0.4),
                "is_listened": int(rng.random() < 0.6),
            }
            for u, t in zip(rng.integers(0, 20, n), rng.integers(0, 5000, n), strict=True)
        ]
    )
    tg = sampled_targets(BASE, df, 20, 3)
    change = partial(redraw_future, rng=rng, draws={"genre_id": (0, 4), "user_age": (18, 31)}, drop_every=3)
    base, runs = future_changed(demographics_features, df, tg, change, settings=SETTINGS)
    for i, got in runs:
        np.testing.assert_allclose(got.to_numpy(), base.iloc[[i]].to_numpy(), rtol=1e-6, err_msg=f"target {i}")
