"""The users' hidden traits: activity, skip propensity, Flow attitude, taste and library, age, gender, devices.

Activity is heavy-tailed (train rows per user: median ~197, mean ~380, a soft cap near
6,000); about 1% are cold starts with 1-5 train rows and ~0.3% appear only in test.  A
fifth are background listeners who almost never skip and seldom use Flow.  Each user
also gets the time of their test row (the real test's day and hour profile, active
users late) and the window their train sessions fall in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.data.demo.arrays import _unique
from pipeline.data.demo.catalogue import _Catalogue, _draw_in_genre
from pipeline.data.demo.constants import (
    _AGE_WEIGHTS,
    _DAY,
    _FLOW_ATTITUDE_SD,
    _HOUR_WEIGHTS,
    _NEVER_SKIP_MEAN,
    _NEVER_SKIP_SHARE,
    _NOV1,
    _PROPENSITY_SD,
    _TEST_DAY_WEIGHTS,
    _WINDOW_FLOOR,
)


@dataclass(frozen=True)
class _Users:
    """Per-user traits as arrays indexed by user id; the library is flat, ``lib_off``/``lib_len`` per user."""

    n_rows: np.ndarray
    propensity: np.ndarray
    flow_attitude: np.ndarray
    flow_share: np.ndarray
    session_len: np.ndarray
    age: np.ndarray
    gender: np.ndarray
    platform: np.ndarray  # (n, 2) main and second device code: name * 3 + family
    p_main: np.ndarray
    taste_genre: np.ndarray  # (n, 3)
    taste_w: np.ndarray  # (n, 3)
    t_test: np.ndarray
    win_start: np.ndarray
    lib_off: np.ndarray
    lib_len: np.ndarray
    lib_media: np.ndarray
    lib_keys: np.ndarray  # sorted user * n_media + media
    fav_keys: np.ndarray  # sorted user * n_artists + artist
    #: Weight (per sd) of a rank-8 user x artist taste that shows in the listens only (0: none).
    latent_taste: float = 0.0


def _device(rng: np.random.Generator, n: int) -> np.ndarray:
    """Device codes ``platform_name * 3 + platform_family``, correlated as in the real test."""
    name = rng.choice(3, n, p=[0.63, 0.30, 0.07])
    fam = np.where(name == 2, 1, np.where(rng.random(n) < np.where(name == 0, 0.05, 0.07), 2, 0))
    return name * 3 + fam


def _make_users(rng: np.random.Generator, n_users: int, cat: _Catalogue) -> _Users:
    """Draw ``n_users`` users, their test time and their library of tracks from ``cat``."""
    u = n_users
    x = rng.lognormal(np.log(204.0), 1.3, u)
    n_rows = np.maximum(1, np.round(x / (1.0 + x / 8_000.0))).astype(np.int64)  # soft cap: max ~6,000
    group = rng.random(u)
    n_rows = np.where(group < 0.01, rng.integers(1, 6, u), n_rows)  # cold starts
    n_rows = np.where(group > 0.997, 0, n_rows)  # seen only in test

    never_skip = rng.random(u) < _NEVER_SKIP_SHARE
    propensity = np.where(never_skip, rng.normal(_NEVER_SKIP_MEAN, 0.6, u), rng.normal(0.0, _PROPENSITY_SD, u))

    # Test time: the real test's day and hour profile; heavy users tend to be active late.
    z_act = (np.log1p(n_rows) - np.log1p(n_rows).mean()) / (np.log1p(n_rows).std() + 1e-9)
    z_t = 0.5 * z_act + np.sqrt(0.75) * rng.standard_normal(u)
    days = np.sort(rng.choice(len(_TEST_DAY_WEIGHTS), u, p=_TEST_DAY_WEIGHTS / _TEST_DAY_WEIGHTS.sum()))
    day = np.empty(u, dtype=np.int64)
    day[np.argsort(z_t, kind="stable")] = days
    hour = rng.choice(24, u, p=_HOUR_WEIGHTS / _HOUR_WEIGHTS.sum())
    t_test = _NOV1 + day * _DAY + hour * 3600 + rng.integers(0, 3600, u)
    span = np.clip(rng.lognormal(np.log(16.0), 0.5, u) * (np.maximum(n_rows, 1) / 197.0) ** 0.25, 0.5, 40.0)
    win_start = np.maximum(_WINDOW_FLOOR, t_test - (span * _DAY).astype(np.int64))

    taste_genre = rng.choice(len(cat.genre_p), (u, 3), p=cat.genre_p)
    taste_w = rng.dirichlet([1.0, 1.0, 1.0], u)

    # Library: tracks the user replays, mostly from their genres, favourites first.
    lib_len = np.clip(np.round(3.0 * np.maximum(n_rows, 8) ** 0.7), 5, 1500).astype(np.int64)
    lib_user = np.repeat(np.arange(u), lib_len)
    slot = _taste_slot(rng, taste_w[lib_user])
    g = np.where(
        rng.random(len(lib_user)) < 0.8,
        taste_genre[lib_user, slot],
        rng.choice(len(cat.genre_p), len(lib_user), p=cat.genre_p),
    )
    lib_media = _draw_in_genre(rng, cat, g, library=True)
    lib_off = np.concatenate([[0], np.cumsum(lib_len)[:-1]])
    n_media = len(cat.media_id)
    n_artists = len(cat.artist_id)
    lib_keys = _unique(lib_user.astype(np.int64) * n_media + lib_media)
    fav = (np.arange(len(lib_user)) - lib_off[lib_user]) < 15
    fav_keys = _unique(lib_user[fav].astype(np.int64) * n_artists + cat.media_artist[lib_media[fav]])

    return _Users(
        n_rows=n_rows,
        propensity=propensity,
        flow_attitude=rng.normal(0.0, _FLOW_ATTITUDE_SD, u),
        # Background listeners mostly play their own music, hardly ever Flow.
        flow_share=np.where(never_skip, rng.beta(0.6, 4.0, u), rng.beta(1.4, 2.6, u)),
        session_len=np.clip(rng.lognormal(np.log(12.0), 0.5, u), 2.0, 80.0),
        age=18 + rng.choice(13, u, p=_AGE_WEIGHTS / _AGE_WEIGHTS.sum()),
        gender=(rng.random(u) < 0.433).astype(np.int64),
        platform=np.stack([_device(rng, u), _device(rng, u)], axis=1),
        p_main=np.where(rng.random(u) < 0.4, 1.0, rng.uniform(0.6, 0.95, u)),
        taste_genre=taste_genre,
        taste_w=taste_w,
        t_test=t_test,
        win_start=win_start,
        lib_off=lib_off,
        lib_len=lib_len,
        lib_media=lib_media,
        lib_keys=lib_keys,
        fav_keys=fav_keys,
    )


def _taste_slot(rng: np.random.Generator, w: np.ndarray) -> np.ndarray:
    """Pick one of three taste genres per row with the row's weights."""
    r = rng.random(len(w))
    return (r > w[:, 0]).astype(np.int64) + (r > w[:, 0] + w[:, 1])
