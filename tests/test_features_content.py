"""Tests of the content group: the user's as-of genre/artist/era/duration profile vs the candidate."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest

from features import content
from features.content import content_features
from features.history import History
from tests.featurekit import base_row, future_changed, redraw_future, sampled_targets, targets_from_train
from tests.frames import train_frame

COLS = [
    "content_genre_cos",
    "content_artist_cos",
    "content_artist_share",
    "content_year_diff",
    "content_year_z",
    "content_duration_z",
]


#: Every row names its time; plausible constants elsewhere.
BASE = base_row(context_type=1, release_date=20100101, listen_type=1)
_frame = partial(train_frame, BASE)
_targets = partial(targets_from_train, BASE)


def _q(d: int) -> int:
    """The quantized log duration the group sums: rint(log1p(d) * 256)."""
    return int(np.rint(np.log1p(d) * 256))


# User 1's history (ts, genre, artist, listened, release, duration); user 2's rows must not count.
HISTORY = _frame(
    [
        {
            "ts_listen": 100,
            "genre_id": 5,
            "artist_id": 50,
            "is_listened": 1,
            "release_date": 20000101,
            "media_duration": 200,
        },
        {
            "ts_listen": 200,
            "genre_id": 5,
            "artist_id": 51,
            "is_listened": 1,
            "release_date": 20100101,
            "media_duration": 300,
        },
        {
            "ts_listen": 300,
            "genre_id": 7,
            "artist_id": 50,
            "is_listened": 0,
            "release_date": 19900101,
            "media_duration": 100,
        },
        {
            "ts_listen": 400,
            "genre_id": 7,
            "artist_id": 52,
            "is_listened": 1,
            "release_date": 20040101,
            "media_duration": 250,
        },
        # At exactly the target's time: excluded (a tie is never in the past).
        {
            "ts_listen": 500,
            "genre_id": 5,
            "artist_id": 50,
            "is_listened": 1,
            "release_date": 20150101,
            "media_duration": 240,
        },
        {"user_id": 2, "ts_listen": 150, "genre_id": 5, "artist_id": 50, "is_listened": 1, "release_date": 19700101},
    ]
)
CAND = {"ts_listen": 500, "genre_id": 5, "artist_id": 50, "release_date": 20120101, "media_duration": 240}


def test_hand_computed_profile():
    out = content_features(History(HISTORY, gap_seconds=600), _targets([CAND]))
    assert list(out.columns) == COLS
    r = out.iloc[0]
    # Genre listens before 500: g5 = 2 (ts 100, 200), g7 = 1 (ts 400): cos = 2 / sqrt(2^2 + 1^2).
    assert r["content_genre_cos"] == pytest.approx(2 / np.sqrt(5), rel=1e-6)
    # Artist listens: a50 = 1 (ts 100; ts 300 was a skip), a51 = 1, a52 = 1: cos = 1 / sqrt(3).
    assert r["content_artist_cos"] == pytest.approx(1 / np.sqrt(3), rel=1e-6)
    # Listens of a50 over all plays: 1 / 4.
    assert r["content_artist_share"] == pytest.approx(0.25, rel=1e-6)
    # Listened years 2000, 2010, 2004: mean 6014/3, population variance
    # ((2000-m)^2 + (2010-m)^2 + (2004-m)^2) / 3 = 152/9.  Candidate 2012.
    mean, var = 6014 / 3, 152 / 9
    assert r["content_year_diff"] == pytest.approx(2012 - mean, rel=1e-6)
    assert r["content_year_z"] == pytest.approx((2012 - mean) / np.sqrt(var + 1.0), rel=1e-5)
    # Log durations in 1/256 steps: ln(201) * 256 = 1357.6 -> 1358, ln(301) -> 1461,
    # ln(251) * 256 = 1414.5 -> 1415; candidate ln(241) * 256 = 1404.1 -> 1404.
    assert [_q(200), _q(300), _q(250), _q(240)] == [1358, 1461, 1415, 1404]
    qs = np.array([1358, 1461, 1415])
    q_mean, q_var = qs.mean(), qs.var()  # 4234/3 and 15974/9 (population)
    assert q_var == pytest.approx(15974 / 9)
    z = ((1404 - q_mean) / 256) / np.sqrt(q_var / 256**2 + 0.1**2)
    assert r["content_duration_z"] == pytest.approx(z, rel=1e-5)


@pytest.mark.parametrize(
    ("cand", "nan_cols"),
    [
        ({"user_id": 3}, COLS),  # unseen user: no profile at all
        ({"ts_listen": 100}, COLS),  # before the user's first play (tie at 100 excluded)
        ({"release_date": 19000101}, ["content_year_diff", "content_year_z"]),  # placeholder date
        ({"release_date": 30000101}, ["content_year_diff", "content_year_z"]),
        ({"media_duration": 0}, ["content_duration_z"]),
        # After 2 listens only (ts 100, 200): too few for a year/duration profile.
        ({"ts_listen": 201}, ["content_year_diff", "content_year_z", "content_duration_z"]),
    ],
)
def test_undefined_values_are_nan(cand, nan_cols):
    out = content_features(History(HISTORY, gap_seconds=600), _targets([{**CAND, **cand}]))
    r = out.iloc[0]
    assert r[nan_cols].isna().all()
    assert r.drop(nan_cols).notna().all()


def test_unknown_genre_and_artist_score_zero():
    out = content_features(History(HISTORY, gap_seconds=600), _targets([{**CAND, "genre_id": 9, "artist_id": 99}]))
    r = out.iloc[0]
    assert r["content_genre_cos"] == 0
    assert r["content_artist_cos"] == 0 and r["content_artist_share"] == 0


def test_user_who_never_listened():
    hist = _frame([{"ts_listen": 10, "is_listened": 0}, {"ts_listen": 20, "is_listened": 0}])
    out = content_features(History(hist, gap_seconds=600), _targets([{"ts_listen": 30}]))
    r = out.iloc[0]
    # Zero listen profile: cosines undefined; the share is defined (0 listens of 2 plays).
    assert np.isnan(r["content_genre_cos"]) and np.isnan(r["content_artist_cos"])
    assert r["content_artist_share"] == 0.0


def test_broken_clock_target_sees_only_older_broken_rows():
    hist = _frame(
        [
            {"ts_listen": 1, "genre_id": 5},
            {"ts_listen": 1980, "genre_id": 7},
            {"ts_listen": 1479000000, "genre_id": 7},
        ]
    )
    out = content_features(History(hist, gap_seconds=600), _targets([{"ts_listen": 79, "genre_id": 5}]))
    # Only the row at ts 1 is before 79: one genre-5 listen (cos 1) of artist 1 (share 1/1).
    assert out.loc[0, "content_genre_cos"] == 1.0 and out.loc[0, "content_artist_share"] == 1.0


def test_std_floor_keeps_single_era_users_finite(monkeypatch):
    hist = _frame([{"ts_listen": t, "release_date": 20000101} for t in (1, 2, 3)])
    out = content_features(History(hist, gap_seconds=600), _targets([{"ts_listen": 9, "release_date": 20030101}]))
    # Variance 0: z = 3 / sqrt(0 + 1^2).
    assert out.loc[0, "content_year_z"] == pytest.approx(3.0)
    monkeypatch.setattr(content, "YEAR_STD_FLOOR", 2.0)
    out = content_features(History(hist, gap_seconds=600), _targets([{"ts_listen": 9, "release_date": 20030101}]))
    assert out.loc[0, "content_year_z"] == pytest.approx(1.5)


def test_empty_history_and_no_targets():
    out = content_features(History(HISTORY[:0], gap_seconds=600), _targets([CAND]))
    assert list(out.columns) == COLS and out.isna().all().all()
    out = content_features(History(HISTORY, gap_seconds=600), _targets([]))
    assert list(out.columns) == COLS and len(out) == 0


def test_changing_the_future_moves_nothing():
    rng = np.random.default_rng(5)
    n = 400
    df = _frame(
        [
            {
                "user_id": int(rng.integers(0, 8)),
                "ts_listen": int(t),
                "genre_id": int(rng.integers(0, 4)),
                "artist_id": int(rng.integers(0, 10)),
                "is_listened": int(rng.random() < 0.6),
                "release_date": int(rng.choice([19000101, 19950101, 20050101, 20160101])),
                "media_duration": int(rng.integers(0, 400)),
            }
            for t in rng.integers(0, 5000, n)
        ]
    )
    tg = sampled_targets(BASE, df, 20, 2)
    draws = {"genre_id": (0, 4), "media_duration": (0, 900)}
    change = partial(redraw_future, rng=rng, draws=draws, drop_every=3)
    base, runs = future_changed(content_features, df, tg, change, gap_seconds=600)
    assert base["content_year_z"].notna().sum() > 5
    for i, got in runs:
        np.testing.assert_allclose(got.to_numpy(), base.iloc[[i]].to_numpy(), rtol=1e-6, err_msg=f"target {i}")
