"""Hand-computed tests of the quality feature group (item quality net of who plays it)."""

from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from core.settings import FeatureSettings
from features import quality
from features.history import History
from features.quality import player_rate_per_row, quality_features
from tests.featurekit import base_row, history, logit
from tests.frames import targets_frame, train_frame

T = 1_478_000_000
K = 2.0  # prior strength of the player's rate in these tests, to keep the arithmetic short
KQ = 4.0  # pseudo-plays of the item means (QUALITY_PRIOR_STRENGTH, patched)
SETTINGS = FeatureSettings(session_gap_minutes=10.0, prior_strength=K)
COLS = ["quality_artist", "quality_album", "quality_media", "quality_genre"]
BASE = base_row(ts_listen=T, media_id=10, album_id=100, artist_id=1000)
_history = partial(history, BASE, settings=SETTINGS)

# Four plays of artist 1000; r2 and r3 are Flow.  Tracks 10 and 11 are album 100, track 12 album 101.
HISTORY = [
    {"user_id": 1, "ts_listen": T, "media_id": 10, "is_listened": 1},  # r1
    {"user_id": 2, "ts_listen": T + 10, "media_id": 10, "listen_type": 1, "is_listened": 0},  # r2
    {"user_id": 1, "ts_listen": T + 20, "media_id": 11, "listen_type": 1, "is_listened": 0},  # r3
    {"user_id": 2, "ts_listen": T + 30, "media_id": 12, "album_id": 101, "is_listened": 1},  # r4
    {"user_id": 2, "ts_listen": T + 40, "media_id": 10, "is_listened": 0},  # r5: at the target's time
]
TARGET = {"user_id": 3, "ts_listen": T + 40, "media_id": 10, "listen_type": 1}

# Global as-of rate before each row, (listens + 0.5) / (plays + 1): r1 0.5, r2 1.5/2, r3 1.5/3, r4 1.5/4.
# The player's overall rate (k = 2 toward it): r1 0.5 (no past), r2 0.75, r3 (1 + 2 * 0.5) / 3 = 2/3,
# r4 (0 + 2 * 0.375) / 3 = 0.25.
OVERALL = [0.5, 0.75, 2 / 3, 0.25]
# By kind: no player has an earlier row of the same kind, so p is the prior: the overall rate moved
# by the global kind-vs-all gap in logit.  r1, r2: no earlier row of the kind, gap 0.  r3 (Flow):
# global Flow rate (0 + 2 * 0.5) / (1 + 2) = 1/3 against 0.5: logit(2/3) - ln 2 = 0 -> 0.5.
# r4 (non-Flow): global non-Flow (1 + 2 * 0.375) / 3 = 7/12 against 3/8:
# -ln 3 + ln(7/5) - ln(3/5) = ln(7/9) -> 7/16.
BY_KIND = [0.5, 0.75, 0.5, 7 / 16]
# Residuals y - p: 1/2, -3/4, -1/2, 9/16.
ARTIST = (0.5 - 0.75 - 0.5 + 9 / 16) / (4 + KQ)  # -3/16 over 4 plays, toward 0: -3/128
ALBUM = (0.5 - 0.75 - 0.5 + KQ * ARTIST) / (3 + KQ)  # r1 r2 r3, toward the artist: -27/224
MEDIA = (0.5 - 0.75 + KQ * ALBUM) / (2 + KQ)  # r1 r2, toward the album: -41/336


@pytest.fixture(autouse=True)
def _item_strength(monkeypatch):
    monkeypatch.setattr(quality, "QUALITY_PRIOR_STRENGTH", KQ)


def test_player_rate_per_row_by_hand():
    h = _history(HISTORY[:4])
    assert_allclose(player_rate_per_row(h), OVERALL, rtol=1e-12)
    assert_allclose(player_rate_per_row(h, by_kind=True), BY_KIND, rtol=1e-12)


def test_player_rate_excludes_rows_at_the_same_time():
    # Two plays at T, then one at T + 5: the second play at T sees neither the first nor itself.
    rows = [{"ts_listen": T, "is_listened": 1}, {"ts_listen": T, "is_listened": 1}, {"ts_listen": T + 5}]
    # r3: global before T + 5 is (2 + 0.5) / 3 = 5/6; the user's 2 listens of 2 -> (2 + 2 * 5/6) / 4.
    assert_allclose(player_rate_per_row(_history(rows)), [0.5, 0.5, (2 + K * 5 / 6) / 4], rtol=1e-12)


def test_every_feature_hand_computed():
    out = quality_features(_history(HISTORY), targets_frame(BASE, [TARGET]))
    assert list(out.columns) == COLS
    assert all(out[c].dtype == np.float32 for c in COLS)
    assert ARTIST == pytest.approx(-3 / 128) and ALBUM == pytest.approx(-27 / 224) and MEDIA == pytest.approx(-41 / 336)
    want = {"quality_artist": ARTIST, "quality_album": ALBUM, "quality_media": MEDIA, "quality_genre": ARTIST}
    for col, v in want.items():
        assert_allclose(out[col].iloc[0], v, rtol=1e-6, err_msg=col)


def test_unseen_items_and_empty_history_give_zero():
    unseen = {**TARGET, "media_id": 99, "album_id": 999, "artist_id": 9999, "genre_id": 7}
    out = quality_features(_history(HISTORY), targets_frame(BASE, [unseen, {**TARGET, "ts_listen": T}]))
    assert (out.to_numpy() == 0).all()  # unseen items, and a target before every row
    out = quality_features(_history([]), targets_frame(BASE, [TARGET]))
    assert list(out.columns) == COLS and (out.to_numpy() == 0).all()


def test_a_new_track_backs_off_to_its_album():
    out = quality_features(_history(HISTORY), targets_frame(BASE, [{**TARGET, "media_id": 98}]))
    assert_allclose(out["quality_media"].iloc[0], ALBUM, rtol=1e-6)


def _random(seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    n = 300
    media = rng.integers(0, 12, n)
    rows = [
        {
            "user_id": int(u),
            "ts_listen": T + int(t),
            "media_id": int(m),
            "album_id": int(m // 3),
            "artist_id": int(m // 6),
            "genre_id": int(m % 2),
            "listen_type": int(f),
            "is_listened": int(y),
        }
        for u, t, m, f, y in zip(
            rng.integers(0, 8, n),
            rng.integers(0, 2000, n),
            media,
            rng.random(n) < 0.4,
            rng.random(n) < 0.6,
            strict=True,
        )
    ]
    hist = train_frame(BASE, rows)
    targets = targets_frame(BASE, rows[::15])
    return hist, targets


def test_matches_a_direct_computation_on_random_data():
    hist, targets = _random(seed=1)
    out = quality_features(History(hist, settings=SETTINGS), targets)
    ts, user, y, flow = (hist[c].to_numpy() for c in ("ts_listen", "user_id", "is_listened", "listen_type"))

    def rate(mask: np.ndarray, prior: float) -> float:
        return (y[mask].sum() + K * prior) / (mask.sum() + K)

    resid = np.empty(len(hist))
    for i in range(len(hist)):
        before = ts < ts[i]
        g = (y[before].sum() + 0.5) / (before.sum() + 1)
        g_kind = rate(before & (flow == flow[i]), g)
        overall = rate(before & (user == user[i]), g)
        prior = 1 / (1 + np.exp(-(logit(overall) + logit(g_kind) - logit(g))))
        resid[i] = y[i] - rate(before & (user == user[i]) & (flow == flow[i]), prior)
    for j in range(len(targets)):
        tg = targets.iloc[j]
        before = ts < tg["ts_listen"]
        parent = 0.0
        for key in ("artist", "album", "media"):
            m = before & (hist[f"{key}_id"].to_numpy() == tg[f"{key}_id"])
            parent = (resid[m].sum() + KQ * parent) / (m.sum() + KQ)
            assert_allclose(out[f"quality_{key}"].iloc[j], parent, rtol=1e-5, atol=1e-7, err_msg=f"{key} {j}")
        m = before & (hist["genre_id"].to_numpy() == tg["genre_id"])
        assert_allclose(out["quality_genre"].iloc[j], resid[m].sum() / (m.sum() + KQ), rtol=1e-5, atol=1e-7)


def test_the_residuals_are_shared_through_a_store(tmp_path):
    # The per-row residuals depend on the history alone: a second build reads them from the store.
    targets = targets_frame(BASE, [TARGET])
    first = quality_features(History(train_frame(BASE, HISTORY), settings=SETTINGS, store=tmp_path), targets)
    assert len(list(tmp_path.glob("quality-residual-*"))) == 1
    second = quality_features(History(train_frame(BASE, HISTORY), settings=SETTINGS, store=tmp_path), targets)
    pd.testing.assert_frame_equal(first, second)
    assert_allclose(first["quality_media"].iloc[0], MEDIA, rtol=1e-6)
