"""The listening model: the log-odds that a play lasts more than 30 seconds (is_listened).

is_listened ~ Bernoulli(sigmoid(logit)), the logit adding the user's propensity
(down-weighted in Flow, where the user's own Flow attitude counts), the context, user x
genre and user x artist affinity (taste plus a hidden per-pair term), track and artist
appeal, a known (library) track bonus, hour and weekend, platform, release age, track
length, fatigue deep into a session and the mood the caller passes in; and, when
``users.latent_taste`` is not 0, a rank-8 user x artist taste (hashed user and artist
vectors) that shows in the listens only: the plays do not follow it, so co-listening cannot
see it and a model of the labels must learn it.  The same model labels the train plays and
the test rows.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtri

from pipeline.data.demo.arrays import _member
from pipeline.data.demo.catalogue import _Catalogue
from pipeline.data.demo.constants import (
    _DAY,
    _FAV_ARTIST,
    _FIRST_OF_SESSION,
    _FLOW,
    _FLOW_PROPENSITY_WEIGHT,
    _GENRE_TASTE,
    _INTERCEPT,
    _KIND_EFFECT,
    _KNOWN_TRACK,
    _LATENT_RANK,
    _PAIR_ARTIST_SD,
    _PAIR_GENRE_SD,
    _PLATFORM_FAMILY_EFFECT,
    _PLATFORM_NAME_EFFECT,
)
from pipeline.data.demo.users import _Users


def _logit(
    cat: _Catalogue,
    users: _Users,
    *,
    user: np.ndarray,
    media: np.ndarray,
    kind: np.ndarray,
    first: np.ndarray,
    pos_in_session: np.ndarray,
    t_intended: np.ndarray,
    device: np.ndarray,
    mood: np.ndarray,
    salt: int,
) -> np.ndarray:
    """The listening model: log-odds that a play lasts more than 30 seconds."""
    album = cat.media_album[media]
    genre = cat.album_genre[album]
    artist = cat.media_artist[media]
    n_media, n_artists = len(cat.media_id), len(cat.artist_id)
    u64 = user.astype(np.int64)

    taste = np.zeros(len(user))
    for j in range(3):
        taste += (users.taste_genre[user, j] == genre) * users.taste_w[user, j]
    # In Flow the user's general propensity counts less and their own view of Flow more.
    flow = kind == _FLOW
    prop = users.propensity[user]
    z = _INTERCEPT + np.where(flow, _FLOW_PROPENSITY_WEIGHT * prop + users.flow_attitude[user], prop)
    z += _KIND_EFFECT[kind]
    z += _FIRST_OF_SESSION * first
    z += _GENRE_TASTE * taste + _PAIR_GENRE_SD * _pair_normal(user, genre, salt)
    z += _FAV_ARTIST * _member(users.fav_keys, u64 * n_artists + artist)
    z += _PAIR_ARTIST_SD * _pair_normal(user, artist, salt + 1)
    z += cat.media_appeal[media]
    if users.latent_taste:
        z += users.latent_taste * _latent_taste(user, artist, salt)
    z += _KNOWN_TRACK * _member(users.lib_keys, u64 * n_media + media)

    hour = (t_intended % _DAY) / 3600.0
    weekday = (t_intended // _DAY + 3) % 7  # 0 = Monday
    z += 0.2 * np.cos(2 * np.pi * (hour - 21.0) / 24.0) + 0.1 * (weekday >= 5)
    z += _PLATFORM_NAME_EFFECT[device // 3] + _PLATFORM_FAMILY_EFFECT[device % 3]
    age_days = t_intended / _DAY - cat.album_release_day[album]
    z += np.where(np.isnan(age_days), 0.0, 0.45 * np.exp(-np.clip(np.nan_to_num(age_days), 0, None) / 40.0))
    dur = cat.media_duration[media]
    z -= 0.4 * ((dur > 0) & (dur < 90)) + 0.4 * (dur > 480) + 0.5 * (dur > 1200)
    z -= 0.012 * np.clip(pos_in_session - 20, 0, 60)
    z += -0.02 * (users.age[user] - 24) + 0.05 * users.gender[user]
    return z + mood


def _latent_taste(user: np.ndarray, artist: np.ndarray, salt: int) -> np.ndarray:
    """``<P_user, Q_artist> / sqrt(rank)``, standard-normal entries hashed per (user, dimension) and
    (artist, dimension): unit variance, and low rank, so one user's listens on some artists say
    how they take the others."""
    out = np.zeros(len(user))
    for d in range(_LATENT_RANK):
        dim = np.full(len(user), d)
        out += _pair_normal(user, dim, salt + 101 + d) * _pair_normal(artist, dim, salt + 201 + d)
    return out / np.sqrt(_LATENT_RANK)


def _pair_normal(a: np.ndarray, b: np.ndarray, salt: int) -> np.ndarray:
    """A standard-normal number fixed per (a, b) pair: a hidden interaction without a table."""
    with np.errstate(over="ignore"):
        h = a.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + b.astype(np.uint64) * np.uint64(0xC2B2AE3D27D4EB4F)
        h ^= np.uint64(salt & 0xFFFFFFFFFFFFFFFF)
        h ^= h >> np.uint64(30)
        h *= np.uint64(0xBF58476D1CE4E5B9)
        h ^= h >> np.uint64(27)
        h *= np.uint64(0x94D049BB133111EB)
        h ^= h >> np.uint64(31)
    u = ((h >> np.uint64(11)).astype(np.float64) + 0.5) / 2.0**53
    return ndtri(u)
