"""Realistic demo data in the exact DSG17 layout: the product's embedded default dataset.

``python -m pipeline.data.demo [--users 2000] [--seed 42] [--out-dir data/raw] [--answers data/demo/answers.csv]
[--replace-demo]`` writes ``train.csv`` and ``test.csv`` (the real files' columns, order
and plain-integer format), the hidden answers of the test rows (``sample_id,p_true,
is_listened``: the true listen probability and the label drawn from it; the pipeline
never reads them, only ``make evaluate`` does) and the marker ``.demo`` beside the CSVs
(the generator's parameters and a fingerprint of each CSV), so every stage can say "demo
data".  Same seed, same bytes.  It never writes over files it did not write itself, and
over earlier demo files only with ``--replace-demo`` (``make demo-data``).  The default
2,000 users give ~0.75M train rows in a few seconds; ``--users 19918``, the real size,
gives ~7.6M rows in about half a minute (peak ~2.3 GB).

The generative story, calibrated to ``docs/dsg17-data.md`` and to the real test file:

* **Users** have heavy-tailed activity (train rows per user: median ~197, mean ~380, a
  soft cap near 6,000), a skip propensity (a fifth are background listeners who almost
  never skip and seldom use Flow; the others spread wide), their own attitude to Flow,
  a taste (three genres with weights, favourite artists, a personal library of tracks
  they replay, favourites first), an age (18-30), a gender and a main device
  (platform_name / platform_family, correlated as in the real test) plus an occasional
  second one.  About 1% are cold starts with 1-5 train rows; ~0.3% appear only in test.
* **Catalogue**: genres -> artists -> albums -> tracks, Zipf-like popularity, new
  releases pushed.  An album has one genre (genre_id 0, unknown, on ~48% of plays), a
  release date (YYYYMMDD; year-only dates as YYYY1231/YYYY0101; placeholders 19000101
  and 30000101; pre-releases playable a few days early) and ids that grow with the date
  it entered the catalogue (media ids consecutive within an album).  Tracks have a
  duration (median ~222 s, ~0.1% 0, rare huge values up to 65,535) and a hidden appeal.
  Cardinalities grow sublinearly with ``--users`` and reach the real ones at 19,918
  (~2,700 genres, ~66k artists, ~147k albums, ~458k tracks, 74 context types).
* **Sessions**: a user's plays fall into sessions between late October and 1 December
  2016 (start hours follow the real daily rhythm in UTC), more than 10 minutes and up
  to days apart.  A session is one context or, rarely, switches: Flow (listen_type 1,
  context_type 1/5/20/23) or one of 70 non-Flow contexts (playlist, album, search,
  radio-like); ~30% of plays are Flow.  Flow mixes library tracks, tracks of the user's
  genres and a popular/new pool; albums play in track order; playlists replay the
  library.  Within a session ts_listen advances by the track's duration when it is
  listened and by 2-30 s when it is skipped.
* **Listening**: is_listened ~ Bernoulli(sigmoid(logit)), the logit adding the user's
  propensity (down-weighted in Flow, where the user's own Flow attitude counts), the
  context (Flow lower: ~0.51 against ~0.75 elsewhere; the first track of a session a
  little higher), user x genre and user x artist affinity (taste plus a hidden per-pair
  term), track and artist appeal, a known (library) track bonus, hour and weekend,
  platform, release age (new releases up), track length, fatigue deep into a session, a
  per-session mood drifting from session to session (AR(1) over the user's sessions, so
  the last sessions' skips predict the next) and a within-session mood (AR(1) over
  plays).  Hour and release age are taken at the session's intended start, before
  sessions are pushed apart so that they never overlap.
* **Quirks** on small shares of train rows: broken clocks (ts 1, 8, 79, 865; whole
  sessions in January 1980 or with the year set back to 2008-2015; ~0.12% in all),
  release-date placeholders (~0.15%), plays before the release date (~0.4%),
  media_duration 0, genre_id 0.
* **Test**, built like the real one: per user exactly one row, the first track of a new
  Flow session (context_type 1 on ~81%, 5 on ~17%, 20/23 on the rest) at a time drawn
  from the real test's day and hour profile (1 Nov - 1 Dec 2016, heaviest at the end;
  active users tend to be the late ones), more than 10 minutes after the end of the
  user's last train play; its label is drawn from the same model (session mood carried
  over from the user's last session), its probability saved as ``p_true``.  sample_id
  0..n-1 in a shuffled user order.  train.csv rows are shuffled too.

Not trivially learnable, on purpose: at full size the oracle AUC of ``p_true`` on the
test rows is ~0.78, a quick LightGBM on history features of the test rows gets ~0.70
and the user's smoothed listen rate alone ~0.65 (the real problem's honest AUC is
~0.65-0.72).
"""

from __future__ import annotations

import argparse
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
from scipy.signal import lfilter
from scipy.special import expit, ndtri
from scipy.stats import rankdata

from core import config
from core.errors import PipelineError, run_cli
from core.io import atomic_path, write_csv, write_json
from core.schema import SAMPLE_ID, TARGET, TEST_COLUMNS, TRAIN_COLUMNS

log = logging.getLogger("demo")

__all__ = ["DemoData", "generate", "summarize", "write_demo", "check_out_dir", "demo_files_intact", "GENERATOR_VERSION"]

#: Bump when the story changes, so a marker tells which generator wrote the files.
GENERATOR_VERSION = 1

FULL_USERS = 19_918  # the real number of users: cardinalities are calibrated at this size
MAX_USERS = 50_000  # ~19M train rows, ~6 GB of memory

_DAY = 86_400
_NOV1 = 1_477_958_400  # 2016-11-01 00:00:00 UTC
_WINDOW_FLOOR = _NOV1 - 4 * _DAY  # no intended session before 28 Oct 2016
_JAN1980 = 315_532_800  # 1980-01-01 00:00:00 UTC
_MIN_GAP = 660  # seconds of silence between sessions: always more than the 10-minute rule

# Real test profile: rows per day from 1 Nov to 1 Dec 2016, and share per UTC hour.
_TEST_DAY_WEIGHTS = np.array(
    [452, 510, 475, 486, 611, 510, 449, 420, 418, 499, 490, 553, 500, 416, 418, 424]
    + [438, 541, 607, 487, 413, 495, 536, 588, 715, 786, 807, 802, 954, 1351, 2758],
    dtype=float,
)
_HOUR_WEIGHTS = np.array(
    [13, 8, 6, 5, 5, 12, 34, 40, 42, 45, 50, 53, 56, 54, 55, 63, 76, 87, 79, 62, 54, 44, 33, 23], dtype=float
)
_AGE_WEIGHTS = np.array([101, 83, 81, 75, 63, 67, 66, 83, 77, 72, 75, 72, 84], dtype=float)  # ages 18..30

# Contexts.  Kinds drive track choice and listening: 0 Flow, 1 playlist, 2 album, 3 search, 4 radio-like.
_FLOW, _PLAYLIST, _ALBUM, _SEARCH, _RADIO = range(5)
_FLOW_CONTEXTS = np.array([1, 5, 20, 23])
_FLOW_CONTEXT_P = np.array([0.811, 0.167, 0.012, 0.010])
_NON_FLOW_CONTEXTS = np.array([c for c in range(80) if c not in set(_FLOW_CONTEXTS.tolist())][:70])
_NON_FLOW_P = (np.arange(70) + 1.0) ** -1.35
_NON_FLOW_P /= _NON_FLOW_P.sum()
_NON_FLOW_KIND = np.array(([_PLAYLIST, _ALBUM, _SEARCH, _PLAYLIST, _RADIO, _ALBUM, _SEARCH] * 10)[:70])
# Where a play's track comes from, per kind: library, user's genres, popular/new.
_SOURCE_P = {
    _FLOW: (0.18, 0.37, 0.45),
    _PLAYLIST: (0.75, 0.20, 0.05),
    _SEARCH: (0.35, 0.30, 0.35),
    _RADIO: (0.30, 0.50, 0.20),
}

# The listening model (logit scale).  Calibrated so that the train listen rate is ~0.68
# (Flow ~0.52, non-Flow ~0.75) and the oracle AUC of the test rows is ~0.77.
_INTERCEPT = -0.44
_NEVER_SKIP_SHARE, _NEVER_SKIP_MEAN, _PROPENSITY_SD = 0.21, 4.5, 1.9
_FLOW_PROPENSITY_WEIGHT, _FLOW_ATTITUDE_SD = 0.25, 0.55
_KIND_EFFECT = np.array([-0.47, 0.30, 0.40, 0.55, -0.15])  # Flow, playlist, album, search, radio
_FIRST_OF_SESSION = 0.15
_KNOWN_TRACK = 0.7
_FAV_ARTIST = 0.45
_GENRE_TASTE = 0.9
_PAIR_GENRE_SD, _PAIR_ARTIST_SD = 0.25, 0.2
_TRACK_APPEAL_SD, _ARTIST_QUALITY_SD = 0.3, 0.25
_ARTIST_POP_SD = 1.8
_PLATFORM_NAME_EFFECT = np.array([0.0, 0.12, -0.20])
_PLATFORM_FAMILY_EFFECT = np.array([0.0, 0.0, -0.25])
_SESSION_MOOD_RHO, _SESSION_MOOD_SD = 0.6, 0.4
_PLAY_MOOD_RHO, _PLAY_MOOD_SD = 0.85, 0.25


@dataclass(frozen=True)
class DemoData:
    """The generated files' contents: ``train`` and ``test`` in schema order, ``answers`` per test row."""

    train: pd.DataFrame
    test: pd.DataFrame
    answers: pd.DataFrame
    params: dict[str, Any]


# --------------------------------------------------------------------------- helpers


def _ar1(e: np.ndarray, rho: float, group_first: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """AR(1) ``x_t = rho x_{t-1} + e_t`` restarted at every group (rows sorted by group).

    One linear filter over the whole array, then the carry-over from the previous group
    (exactly ``rho**(pos+1)`` times the previous group's last value) is subtracted.
    """
    x = lfilter([1.0], [1.0, -rho], e)
    prev = np.where(group_first > 0, x[group_first - 1], 0.0)
    return x - np.power(rho, pos + 1.0) * prev


def _innovations(rng: np.random.Generator, first: np.ndarray, sd: float, rho: float) -> np.ndarray:
    """Shocks of a stationary AR(1) with standard deviation ``sd``: full-size at each group's first element."""
    return rng.standard_normal(len(first)) * np.where(first, sd, sd * np.sqrt(1.0 - rho**2))


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


def _search(a: np.ndarray, v: np.ndarray, side: str = "left") -> np.ndarray:
    """``np.searchsorted`` for many random queries: sorted queries keep the search in cache (several times faster)."""
    order = np.argsort(v, kind="stable")
    out = np.empty(len(v), dtype=np.int64)
    out[order] = np.searchsorted(a, v[order], side=side)
    return out


def _member(keys_sorted: np.ndarray, query: np.ndarray) -> np.ndarray:
    """``query`` values present in the sorted array ``keys_sorted``."""
    if len(keys_sorted) == 0:
        return np.zeros(len(query), dtype=bool)
    idx = _search(keys_sorted, query)
    return keys_sorted[np.minimum(idx, len(keys_sorted) - 1)] == query


def _unique(x: np.ndarray) -> np.ndarray:
    """Sorted distinct values (a plain sort: faster than ``np.unique`` on big integer arrays)."""
    x = np.sort(x)
    return x[np.concatenate([[True], x[1:] != x[:-1]])] if len(x) else x


def _firsts(sorted_group: np.ndarray, n_groups: int) -> np.ndarray:
    """Index of the first element of each group in a sorted group array."""
    return np.searchsorted(sorted_group, np.arange(n_groups))


def _day_to_yyyymmdd(day: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 -> YYYYMMDD integers."""
    d = day.astype("datetime64[D]")
    y = d.astype("datetime64[Y]").astype(np.int64) + 1970
    m = d.astype("datetime64[M]").astype(np.int64) % 12 + 1
    dd = (d - d.astype("datetime64[M]")).astype(np.int64) + 1
    return (y * 10000 + m * 100 + dd).astype(np.int64)


def _sorted_unique_ids(rng: np.random.Generator, n: int, high: int, *, log_uniform: bool = False) -> np.ndarray:
    """``n`` distinct sorted ids in ``[1, high]``."""
    ids = np.empty(0, dtype=np.int64)
    while len(ids) < n:
        m = 2 * n + 16
        draw = np.exp(rng.uniform(0, np.log(high), m)) if log_uniform else rng.uniform(1, high, m)
        ids = _unique(np.concatenate([ids, np.clip(draw.astype(np.int64), 1, high)]))
    return np.sort(rng.choice(ids, n, replace=False))


# --------------------------------------------------------------------------- catalogue


@dataclass(frozen=True)
class _Catalogue:
    genre_public: np.ndarray  # per true genre: its genre_id
    artist_id: np.ndarray
    artist_genre: np.ndarray
    album_id: np.ndarray
    album_genre: np.ndarray  # true genre
    album_genre_shown: np.ndarray  # genre_id written to the file (0 = unknown)
    album_release: np.ndarray  # YYYYMMDD
    album_avail_day: np.ndarray  # first day it can be played (-inf when the date is a placeholder)
    album_release_day: np.ndarray  # for release age (nan when unknown)
    album_first: np.ndarray
    album_ntracks: np.ndarray
    media_id: np.ndarray
    media_album: np.ndarray
    media_artist: np.ndarray
    media_track: np.ndarray
    media_duration: np.ndarray
    media_appeal: np.ndarray
    # sampling structures
    by_genre: np.ndarray  # media indices sorted by true genre
    cw_genre: np.ndarray  # cumulative popularity in that order
    cw_genre_lib: np.ndarray  # cumulative tempered popularity (libraries are less mainstream)
    genre_lo: np.ndarray
    genre_hi: np.ndarray
    genre_lo_lib: np.ndarray
    genre_hi_lib: np.ndarray
    genre_p: np.ndarray  # share of plays per true genre
    pop_media: np.ndarray  # the popular/new pool (what Flow and charts push)
    cw_pop: np.ndarray  # its cumulative weights


def _make_catalogue(rng: np.random.Generator, n_users: int) -> _Catalogue:
    scale = n_users / FULL_USERS
    n_genres = max(40, round(7400 * scale**0.55))
    n_artists = max(300, round(74_000 * scale**0.72))

    genre_base = (np.arange(n_genres) + 1.0) ** -1.25
    genre_base /= genre_base.sum()

    # Artists: heavy-tailed popularity and quality, a main genre, 1..n albums.
    artist_pop = rng.lognormal(0.0, _ARTIST_POP_SD, n_artists)
    artist_quality = rng.normal(0.0, _ARTIST_QUALITY_SD, n_artists)
    artist_genre = rng.choice(n_genres, n_artists, p=genre_base)
    n_alb = 1 + rng.poisson(1.0 + 0.4 * np.log1p(artist_pop))
    album_artist = np.repeat(np.arange(n_artists), n_alb)
    n_albums = len(album_artist)
    album_genre = np.where(
        rng.random(n_albums) < 0.85, artist_genre[album_artist], rng.choice(n_genres, n_albums, p=genre_base)
    )

    # Release dates (days since 1970): recent-heavy, year-only dates, placeholders.
    nov30 = (_NOV1 + 29 * _DAY) // _DAY
    y2016 = (pd.Timestamp("2016-01-01").value // 10**9) // _DAY
    y2015 = (pd.Timestamp("2015-01-01").value // 10**9) // _DAY
    r = rng.random(n_albums)
    old_year = np.clip(2014 - np.floor(rng.exponential(7.0, n_albums)), 1950, 2014).astype(np.int64)
    old_day = (old_year - 1970) * 365.25 + rng.uniform(0, 365, n_albums)
    yearonly = rng.random(n_albums)
    old_day = np.where(yearonly < 0.08, (old_year - 1970) * 365.25 + 364.5, old_day)  # YYYY1231
    old_day = np.where(yearonly > 0.95, (old_year - 1970) * 365.25 + 0.5, old_day)  # YYYY0101
    release_day = np.where(
        r < 0.13,
        rng.uniform(y2016, nov30 + 1, n_albums),
        np.where(r < 0.25, rng.uniform(y2015, y2016, n_albums), old_day),
    )
    release_day = np.floor(release_day).astype(np.int64)
    album_release = _day_to_yyyymmdd(release_day)
    placeholder = rng.random(n_albums)
    ph_1900 = placeholder < 0.001
    ph_3000 = placeholder > 0.9995
    album_release[ph_1900] = 19000101
    album_release[ph_3000] = 30000101
    album_release_day = np.where(ph_1900 | ph_3000, np.nan, release_day.astype(float))
    # A few recent albums are out a little before their official date (pre-releases).
    lead = np.where((release_day > nov30 - 60) & (rng.random(n_albums) < 0.5), rng.integers(1, 12, n_albums), 0)
    album_avail_day = np.where(ph_1900 | ph_3000, -np.inf, release_day - lead).astype(float)
    age_days = np.clip(_NOV1 // _DAY + 15 - release_day, 0, None)
    novelty = 1.0 + 1.5 * np.exp(-age_days / 60.0) + 0.8 * np.exp(-age_days / 700.0)
    album_pop = rng.lognormal(0.0, 0.9, n_albums) * novelty

    # Tracks: singles or full albums; the first tracks of an album are played most.
    single = rng.random(n_albums) < 0.5
    ntracks = np.where(single, 1 + (rng.random(n_albums) < 0.3), 3 + rng.poisson(4.0, n_albums)).astype(np.int64)
    media_album = np.repeat(np.arange(n_albums), ntracks)
    n_media = len(media_album)
    album_first = np.concatenate([[0], np.cumsum(ntracks)[:-1]])
    media_track = np.arange(n_media) - album_first[media_album]
    track_rel = rng.lognormal(0.0, 0.6, n_media) / (1.0 + media_track) ** 1.2
    compilation = (~single) & (rng.random(n_albums) < 0.03)
    media_artist = album_artist[media_album]
    comp = compilation[media_album]
    media_artist[comp] = rng.choice(n_artists, int(comp.sum()), p=artist_pop / artist_pop.sum())
    weight = artist_pop[album_artist][media_album] * album_pop[media_album] * track_rel
    logw = np.log(weight)
    appeal = (
        rng.normal(0.0, _TRACK_APPEAL_SD, n_media)
        + artist_quality[media_artist]
        + 0.15 * (logw - logw.mean()) / (logw.std() + 1e-9)
    )

    # Durations: lognormal around 222 s, long mixes, a few unknown (0) and absurd values.
    dur = rng.lognormal(np.log(222.0), 0.22, n_media)
    longmix = rng.random(n_media) < 0.015
    dur[longmix] = rng.lognormal(np.log(420.0), 0.7, int(longmix.sum()))
    dur = np.clip(np.round(dur), 20, 20_000).astype(np.int64)
    q = rng.random(n_media)
    dur[q < 0.0012] = 0
    dur[q > 0.99995] = rng.choice([65_535, 36_000, 12_000, 8_000], int((q > 0.99995).sum()))

    # Ids grow with the date an album entered the catalogue (digitised 2007+ or released later).
    digit = rng.uniform((pd.Timestamp("2007-01-01").value // 10**9) // _DAY, nov30, n_albums)
    entry = np.maximum(np.nan_to_num(album_release_day, nan=digit), digit) + rng.normal(0, 200, n_albums)
    album_rank = np.argsort(np.argsort(entry, kind="stable"), kind="stable")
    album_id = _sorted_unique_ids(rng, n_albums, 14_700_000)[album_rank]
    media_order = np.lexsort((media_track, album_rank[media_album]))
    media_gap = np.where(media_track[media_order] == 0, 0, 1 + (rng.random(n_media) < 0.1))
    n_within = int(media_gap.sum())
    big = rng.integers(1, max(2, 2 * (136_900_000 - n_within) // max(n_albums, 1)), n_albums)
    media_gap[media_track[media_order] == 0] = big
    media_id = np.empty(n_media, dtype=np.int64)
    media_id[media_order] = np.cumsum(media_gap)
    artist_entry = np.full(n_artists, np.inf)
    np.minimum.at(artist_entry, album_artist, entry)
    artist_rank = np.argsort(np.argsort(artist_entry + rng.normal(0, 900, n_artists), kind="stable"), kind="stable")
    artist_id = _sorted_unique_ids(rng, n_artists, 12_000_000)[artist_rank]

    # Genres: popular genres get small ids; about half of the albums have no genre (0).
    genre_w = np.bincount(album_genre[media_album], weights=weight, minlength=n_genres)
    genre_rank = np.argsort(np.argsort(-np.log(genre_w + 1e-12) + rng.normal(0, 1.0, n_genres), kind="stable"))
    genre_public = _sorted_unique_ids(rng, n_genres, 260_000, log_uniform=True)[genre_rank]
    # Unknown genre on ~48% of albums, stratified by popularity so the share of plays stays ~48% too.
    album_w = np.bincount(media_album, weights=weight, minlength=n_albums)
    pair = np.argsort(np.argsort(-album_w, kind="stable"), kind="stable") // 2
    first_of_pair = np.zeros(n_albums, dtype=bool)
    first_of_pair[np.lexsort((rng.random(n_albums), pair))[::2]] = True  # one album of each pair of neighbours
    album_genre_shown = np.where(first_of_pair & (rng.random(n_albums) < 0.97), 0, genre_public[album_genre])

    media_genre = album_genre[media_album]
    by_genre = np.argsort(media_genre, kind="stable")
    g_sorted = media_genre[by_genre]
    cw_genre = np.cumsum(weight[by_genre])
    cw_genre_lib = np.cumsum(weight[by_genre] ** 0.6)
    starts = np.searchsorted(g_sorted, np.arange(n_genres))
    ends = np.searchsorted(g_sorted, np.arange(n_genres), side="right")

    def _bounds(cw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        c0 = np.concatenate([[0.0], cw])
        return c0[starts], c0[ends]

    lo, hi = _bounds(cw_genre)
    lo_lib, hi_lib = _bounds(cw_genre_lib)
    media_novelty = novelty[media_album]
    # The pool: the most popular tracks (~4%) and every new release, flattened (sqrt) so a few hits do not take it all.
    pop_media = np.flatnonzero((weight >= np.quantile(weight, 0.96)) | (novelty[media_album] > 2.0))
    return _Catalogue(
        genre_public=genre_public,
        artist_id=artist_id,
        artist_genre=artist_genre,
        album_id=album_id,
        album_genre=album_genre,
        album_genre_shown=album_genre_shown,
        album_release=album_release,
        album_avail_day=album_avail_day,
        album_release_day=album_release_day,
        album_first=album_first,
        album_ntracks=ntracks,
        media_id=media_id,
        media_album=media_album,
        media_artist=media_artist,
        media_track=media_track,
        media_duration=dur,
        media_appeal=appeal,
        by_genre=by_genre,
        cw_genre=cw_genre,
        cw_genre_lib=cw_genre_lib,
        genre_lo=lo,
        genre_hi=hi,
        genre_lo_lib=lo_lib,
        genre_hi_lib=hi_lib,
        genre_p=genre_w / genre_w.sum(),
        pop_media=pop_media,
        cw_pop=np.cumsum(np.sqrt(weight[pop_media]) * media_novelty[pop_media]),
    )


def _draw_in_genre(rng: np.random.Generator, cat: _Catalogue, genre: np.ndarray, *, library: bool) -> np.ndarray:
    lo, hi, cw = (
        (cat.genre_lo_lib, cat.genre_hi_lib, cat.cw_genre_lib)
        if library
        else (cat.genre_lo, cat.genre_hi, cat.cw_genre)
    )
    target = lo[genre] + rng.random(len(genre)) * (hi[genre] - lo[genre])
    idx = np.minimum(_search(cw, target, side="right"), len(cw) - 1)
    return cat.by_genre[idx]


def _draw_popular(rng: np.random.Generator, cat: _Catalogue, n: int) -> np.ndarray:
    target = rng.random(n) * cat.cw_pop[-1]
    return cat.pop_media[np.minimum(_search(cat.cw_pop, target, side="right"), len(cat.cw_pop) - 1)]


# --------------------------------------------------------------------------- users


@dataclass(frozen=True)
class _Users:
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


def _device(rng: np.random.Generator, n: int) -> np.ndarray:
    name = rng.choice(3, n, p=[0.63, 0.30, 0.07])
    fam = np.where(name == 2, 1, np.where(rng.random(n) < np.where(name == 0, 0.05, 0.07), 2, 0))
    return name * 3 + fam


def _make_users(rng: np.random.Generator, n_users: int, cat: _Catalogue) -> _Users:
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


# --------------------------------------------------------------------------- plays


def _draw_tracks(
    rng: np.random.Generator, cat: _Catalogue, users: _Users, user: np.ndarray, kind: np.ndarray
) -> np.ndarray:
    """Pick a track per play from the user's library, the user's genres or the popular/new pool."""
    n = len(user)
    p_lib = np.zeros(n)
    p_genre = np.zeros(n)
    for k, (a, b, _c) in _SOURCE_P.items():
        m = kind == k
        p_lib[m] = a
        p_genre[m] = b
    r = rng.random(n)
    src = np.where(r < p_lib, 0, np.where(r < p_lib + p_genre, 1, 2))
    media = np.empty(n, dtype=np.int64)
    m = src == 0
    pos = np.floor(users.lib_len[user[m]] * rng.random(int(m.sum())) ** 2.2).astype(np.int64)
    media[m] = users.lib_media[users.lib_off[user[m]] + pos]
    m = src == 1
    um = user[m]
    slot = _taste_slot(rng, users.taste_w[um])
    g = np.where(
        rng.random(len(um)) < 0.85, users.taste_genre[um, slot], rng.choice(len(cat.genre_p), len(um), p=cat.genre_p)
    )
    media[m] = _draw_in_genre(rng, cat, g, library=False)
    m = src == 2
    media[m] = _draw_popular(rng, cat, int(m.sum()))
    return media


def _respect_release(
    rng: np.random.Generator, cat: _Catalogue, media: np.ndarray, play_day: np.ndarray, *, passes: int = 4
) -> np.ndarray:
    """Redraw (from the popular pool) tracks that are not out yet on the day they are played."""
    media = media.copy()
    for _ in range(passes):
        bad = np.flatnonzero(cat.album_avail_day[cat.media_album[media]] > play_day)
        if len(bad) == 0:
            break
        media[bad] = _draw_popular(rng, cat, len(bad))
    return media


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


def generate(n_users: int = 2000, *, seed: int = 42) -> DemoData:
    """Build the demo train, test and answers tables (pure: no files)."""
    if not 1 <= n_users <= MAX_USERS:
        raise PipelineError(f"--users must be between 1 and {MAX_USERS:,}, got {n_users:,}")
    rng = np.random.default_rng(seed)
    salt = int(rng.integers(0, 2**62))
    cat = _make_catalogue(rng, n_users)
    users = _make_users(rng, n_users, cat)
    U = n_users

    # Rows, sessions and segments, all laid out user after user.
    n = users.n_rows
    N = int(n.sum())
    row_user = np.repeat(np.arange(U, dtype=np.int64), n)
    user_first = np.concatenate([[0], np.cumsum(n)[:-1]])
    new_sess = (np.arange(N) == user_first[row_user]) | (rng.random(N) < 1.0 / users.session_len[row_user])
    sess_of_row = np.cumsum(new_sess) - 1
    sess_first = np.flatnonzero(new_sess)
    del new_sess
    S = len(sess_first)
    pos_s = np.arange(N) - sess_first[sess_of_row]
    new_seg = (pos_s == 0) | (rng.random(N) < 0.015)
    seg_of_row = np.cumsum(new_seg) - 1
    seg_first = np.flatnonzero(new_seg)
    del new_seg
    G = len(seg_first)
    pos_g = np.arange(N) - seg_first[seg_of_row]
    seg_user = row_user[seg_first]
    seg_flow = rng.random(G) < users.flow_share[seg_user]
    nf = rng.choice(70, G, p=_NON_FLOW_P)
    seg_ctx = np.where(seg_flow, rng.choice(_FLOW_CONTEXTS, G, p=_FLOW_CONTEXT_P), _NON_FLOW_CONTEXTS[nf])
    seg_kind = np.where(seg_flow, _FLOW, _NON_FLOW_KIND[nf])
    kind = seg_kind[seg_of_row]
    ctx_row = seg_ctx[seg_of_row]
    switch = np.flatnonzero((pos_g == 0) & (pos_s > 0))  # a new context inside a session

    # Sessions: intended start times with the daily rhythm, sorted per user.
    sess_user = row_user[sess_first]
    sess_user_first = _firsts(sess_user, U)
    n_sess_u = np.bincount(sess_user, minlength=U)
    a = users.win_start[sess_user]
    b = users.t_test[sess_user] - _MIN_GAP
    t = a + rng.random(S) * (b - a)
    tod = rng.choice(24, S, p=_HOUR_WEIGHTS / _HOUR_WEIGHTS.sum()) * 3600 + rng.integers(0, 3600, S)
    t = np.clip((t // _DAY) * _DAY + tod, a, b).astype(np.int64)
    base = _NOV1 - 200 * _DAY
    t_int = np.sort(sess_user * 2**32 + (t - base)) - sess_user * 2**32 + base
    sess_device = np.where(
        rng.random(S) < users.p_main[sess_user], users.platform[sess_user, 0], users.platform[sess_user, 1]
    )
    sess_pos_u = np.arange(S) - sess_user_first[sess_user]
    sess_mood = _ar1(
        _innovations(rng, sess_pos_u == 0, _SESSION_MOOD_SD, _SESSION_MOOD_RHO),
        _SESSION_MOOD_RHO,
        sess_user_first[sess_user],
        sess_pos_u,
    )

    # Tracks: album segments play one album in order; the rest draw per play.
    t_row = t_int[sess_of_row]
    play_day = (t_row // _DAY).astype(float)
    media = _draw_tracks(rng, cat, users, row_user, kind)
    seg_album_m = _draw_tracks(rng, cat, users, seg_user, np.full(G, _PLAYLIST))
    seg_album = cat.media_album[seg_album_m]
    seg_start = np.where(rng.random(G) < 0.6, 0, cat.media_track[seg_album_m])
    alb_rows = np.flatnonzero(kind == _ALBUM)
    sg = seg_of_row[alb_rows]
    al = seg_album[sg]
    media[alb_rows] = cat.album_first[al] + (seg_start[sg] + pos_g[alb_rows]) % cat.album_ntracks[al]
    media = _respect_release(rng, cat, media, play_day)
    del pos_g, seg_of_row

    play_mood = _ar1(
        _innovations(rng, pos_s == 0, _PLAY_MOOD_SD, _PLAY_MOOD_RHO), _PLAY_MOOD_RHO, sess_first[sess_of_row], pos_s
    )
    z = _logit(
        cat,
        users,
        user=row_user,
        media=media,
        kind=kind,
        first=pos_s == 0,
        pos_in_session=pos_s,
        t_intended=t_row,
        device=sess_device[sess_of_row],
        mood=sess_mood[sess_of_row] + play_mood,
        salt=salt,
    )
    del play_mood
    listened = rng.random(N) < expit(z)
    del z

    # Time: a listened track lasts its duration, a skip 2-30 s; sessions never overlap.
    dur = cat.media_duration[media]
    dt = np.where(
        listened,
        np.where(
            dur == 0, rng.integers(120, 400, N), np.where(dur > 3600, rng.integers(600, 3600, N), np.maximum(dur, 31))
        ),
        rng.integers(2, 31, N),
    )
    dt[switch - 1] += rng.integers(5, 120, len(switch))  # browsing before the new context starts
    cs = np.cumsum(dt)
    excl = cs - dt
    offset = excl - excl[sess_first[sess_of_row]]
    sess_len_s = np.add.reduceat(dt, sess_first) if S else np.zeros(0, dtype=np.int64)
    L = sess_len_s + _MIN_GAP + rng.integers(0, 900, S)
    csl = np.cumsum(L)
    C = (csl - L) - (csl - L)[sess_user_first[sess_user]]
    y = t_int - C - base
    start = np.maximum.accumulate(sess_user * 2**33 + y) - sess_user * 2**33 + base + C
    last_sess = sess_user_first + n_sess_u - 1
    has = n_sess_u > 0
    last_end = np.full(U, np.iinfo(np.int64).min)
    last_end[has] = start[last_sess[has]] + sess_len_s[last_sess[has]]
    excess = last_end + _MIN_GAP - users.t_test
    shift = np.where(excess > 0, excess + rng.integers(0, 3600, U), 0)
    start -= shift[sess_user]
    ts = start[sess_of_row] + offset
    del offset, excl, cs, dt

    ts = _break_clocks(rng, ts, sess_of_row, start, S)

    # Test: the first track of a new Flow session at the user's test time.
    tu = np.arange(U)
    t_kind = np.full(U, _FLOW)
    t_media = _respect_release(
        rng, cat, _draw_tracks(rng, cat, users, tu, t_kind), (users.t_test // _DAY).astype(float)
    )
    last_mood = np.zeros(U)
    last_mood[has] = sess_mood[last_sess[has]]
    t_sess_mood = np.where(
        has,
        _SESSION_MOOD_RHO * last_mood + rng.normal(0, _SESSION_MOOD_SD * np.sqrt(1 - _SESSION_MOOD_RHO**2), U),
        rng.normal(0, _SESSION_MOOD_SD, U),
    )
    t_device = np.where(rng.random(U) < users.p_main, users.platform[:, 0], users.platform[:, 1])
    t_z = _logit(
        cat,
        users,
        user=tu,
        media=t_media,
        kind=t_kind,
        first=np.ones(U, dtype=bool),
        pos_in_session=np.zeros(U, dtype=np.int64),
        t_intended=users.t_test,
        device=t_device,
        mood=t_sess_mood + rng.normal(0, _PLAY_MOOD_SD, U),
        salt=salt,
    )
    p_true = expit(t_z)
    t_label = (rng.random(U) < p_true).astype(np.int8)
    t_ctx = rng.choice(_FLOW_CONTEXTS, U, p=_FLOW_CONTEXT_P)

    train = _table(
        cat,
        users,
        TRAIN_COLUMNS,
        user=row_user,
        media=media,
        ts=ts,
        ctx=ctx_row,
        flow=kind == _FLOW,
        device=sess_device[sess_of_row],
        listened=listened,
        order=rng.permutation(N),  # the real file is not sorted: nothing downstream may rely on an order
    )

    sample_user = rng.permutation(U)
    test = _table(
        cat,
        users,
        TEST_COLUMNS,
        user=sample_user,
        media=t_media[sample_user],
        ts=users.t_test[sample_user],
        ctx=t_ctx[sample_user],
        flow=np.ones(U, dtype=bool),
        device=t_device[sample_user],
        sample_id=np.arange(U),
    )
    answers = pd.DataFrame({SAMPLE_ID: np.arange(U), "p_true": p_true[sample_user], TARGET: t_label[sample_user]})
    params = {
        "generator": "pipeline.data.demo",
        "version": GENERATOR_VERSION,
        "users": n_users,
        "seed": seed,
        "train_rows": N,
        "test_rows": U,
    }
    return DemoData(train=train, test=test, answers=answers, params=params)


def _break_clocks(
    rng: np.random.Generator, ts: np.ndarray, sess_of_row: np.ndarray, start: np.ndarray, n_sessions: int
) -> np.ndarray:
    """Broken device clocks on a few plays: whole sessions in Jan 1980 or years back, a few tiny values."""
    n = len(ts)
    if n < 1000 or n_sessions < 10:
        return ts
    k = max(2, round(n_sessions * 6e-4))
    picked = rng.choice(n_sessions, 2 * k, replace=False)
    shift = np.zeros(n_sessions, dtype=np.int64)
    shift[picked[:k]] = _JAN1980 + rng.integers(0, 20 * _DAY, k) - start[picked[:k]]
    shift[picked[k:]] = -np.round(rng.integers(1, 9, k) * 365.25 * _DAY).astype(np.int64)
    ts = ts + shift[sess_of_row]
    tiny = rng.choice(n, max(1, round(n * 2e-5)), replace=False)
    ts[tiny] = rng.choice([1, 8, 79, 865], len(tiny))
    return ts


def _table(
    cat: _Catalogue,
    users: _Users,
    columns: dict[str, np.dtype],
    *,
    user: np.ndarray,
    media: np.ndarray,
    ts: np.ndarray,
    ctx: np.ndarray,
    flow: np.ndarray,
    device: np.ndarray,
    listened: np.ndarray | None = None,
    sample_id: np.ndarray | None = None,
    order: np.ndarray | None = None,
) -> pd.DataFrame:
    """The rows in the file layout ``columns`` (narrow dtypes, checked to fit), optionally reordered."""
    album = cat.media_album[media]
    cols: dict[str, np.ndarray] = {
        "genre_id": cat.album_genre_shown[album],
        "ts_listen": ts,
        "media_id": cat.media_id[media],
        "album_id": cat.album_id[album],
        "context_type": ctx,
        "release_date": cat.album_release[album],
        "platform_name": device // 3,
        "platform_family": device % 3,
        "media_duration": cat.media_duration[media],
        "listen_type": flow.astype(np.int64),
        "user_gender": users.gender[user],
        "user_id": user,
        "artist_id": cat.artist_id[cat.media_artist[media]],
        "user_age": users.age[user],
    }
    if listened is not None:
        cols[TARGET] = listened
    if sample_id is not None:
        cols[SAMPLE_ID] = sample_id
    out = {}
    for name, dtype in columns.items():
        arr = np.asarray(cols[name])
        info = np.iinfo(dtype)
        if len(arr) and (arr.min() < info.min or arr.max() > info.max):
            raise AssertionError(f"demo column {name} does not fit {dtype}")
        arr = arr.astype(dtype)
        out[name] = arr if order is None else arr[order]
    return pd.DataFrame(out, copy=False)


# --------------------------------------------------------------------------- summary and files


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    y = np.asarray(y).astype(bool)
    n1, n0 = int(y.sum()), int((~y).sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    r = rankdata(p)
    return float((r[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def summarize(data: DemoData) -> dict[str, Any]:
    """Headline statistics of a generated set (for the log and the docs)."""
    tr, te, ans = data.train, data.test, data.answers
    y = tr[TARGET].to_numpy()
    flow = tr["listen_type"].to_numpy() == 1
    per_user = tr.groupby("user_id")[TARGET].mean()
    rows_per_user = tr["user_id"].value_counts()
    ts = tr["ts_listen"].to_numpy()
    rd = tr["release_date"].to_numpy()
    broken = ts < 1_262_304_000  # before 2010: a broken clock
    # As the contract counts it: a real clock, a real date, played on an earlier day (YYYYMMDD sorts like dates).
    before = ~broken & ~np.isin(rd, [19000101, 30000101]) & (_day_to_yyyymmdd(ts.astype(np.int64) // _DAY) < rd)
    return {
        "train_rows": len(tr),
        "test_rows": len(te),
        "users_in_train": int(tr["user_id"].nunique()),
        "rows_per_user": {
            "median": float(rows_per_user.median()),
            "mean": float(rows_per_user.mean()),
            "max": int(rows_per_user.max()),
        },
        "listen_rate": float(y.mean()),
        "listen_rate_flow": float(y[flow].mean()) if flow.any() else float("nan"),
        "listen_rate_non_flow": float(y[~flow].mean()) if (~flow).any() else float("nan"),
        "flow_share": float(flow.mean()),
        "per_user_rate_mean": float(per_user.mean()),
        "per_user_rate_sd": float(per_user.std()),
        "per_user_rate_above_0.95": float((per_user > 0.95).mean()),
        "distinct": {
            c: int(tr[c].nunique()) for c in ("genre_id", "artist_id", "album_id", "media_id", "context_type")
        },
        "genre_0_share": float((tr["genre_id"] == 0).mean()),
        "duration_0_share": float((tr["media_duration"] == 0).mean()),
        "media_duration_median": float(tr["media_duration"].median()),
        "release_19000101_share": float((rd == 19000101).mean()),
        "release_30000101_share": float((rd == 30000101).mean()),
        "played_before_release_share": float(before.mean()),
        "broken_clock_share": float(broken.mean()),
        "broken_clock_tiny_rows": int((ts < 1000).sum()),
        "broken_clock_1980_rows": int(((ts >= _JAN1980) & (ts < _JAN1980 + 366 * _DAY)).sum()),
        "broken_clock_2008_2015_rows": int(((ts >= 1_199_145_600) & (ts < 1_451_606_400)).sum()),
        "test_listen_rate": float(ans[TARGET].mean()),
        "test_p_true_mean": float(ans["p_true"].mean()),
        "oracle_auc_test": _auc(ans[TARGET].to_numpy(), ans["p_true"].to_numpy()),
    }


def _write_ints(df: pd.DataFrame, path: Path) -> None:
    """Plain-integer CSV with a bare header and ``\\n`` endings, fast and byte-stable."""
    table = pa.Table.from_pandas(df, preserve_index=False)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write((",".join(df.columns) + "\n").encode())
        pacsv.write_csv(
            table, fh, write_options=pacsv.WriteOptions(include_header=False, quoting_style="none", batch_size=1 << 16)
        )


_DATA_FILES = ("train.csv", "test.csv")
_fingerprint = config.file_fingerprint  # one implementation, shared with config.is_demo_data
demo_files_intact = config.is_demo_data


def check_out_dir(out_dir: Path, *, replace_demo: bool) -> None:
    """Refuse to write where the user's own data is, or over demo data unless asked to."""
    out_dir = Path(out_dir)
    present = [name for name in _DATA_FILES if (out_dir / name).exists()]
    if not present:
        return
    marker = out_dir / config.DEMO_MARKER.name
    names = " and ".join(present)
    if not marker.exists():
        raise PipelineError(
            f"{out_dir} already holds {names}, not written by the demo generator (no {marker.name} marker): "
            "refusing to touch what looks like your own data. Move it away to use demo data, or pick another --out-dir."
        )
    if not demo_files_intact(out_dir):
        raise PipelineError(
            f"{out_dir} has the demo marker, but {names} changed since the generator wrote them (your own files?): "
            f"refusing to overwrite them. If they are yours, delete {marker} so every stage treats them as real data."
        )
    if not replace_demo:
        raise PipelineError(
            f"{out_dir} already holds demo data. Rebuild it with `make demo-data` (or --replace-demo), "
            "or remove the files first."
        )


def write_demo(data: DemoData, out_dir: Path, answers_path: Path, *, replace_demo: bool = False) -> None:
    """Write the marker, train.csv, test.csv and the answers, each atomically.

    The marker is written first (without fingerprints) so that a run stopped half-way still
    leaves a folder every stage knows as demo data; it is rewritten with the files'
    fingerprints at the end.
    """
    out_dir = Path(out_dir)
    check_out_dir(out_dir, replace_demo=replace_demo)
    marker = out_dir / config.DEMO_MARKER.name
    write_json({**data.params, "files": {}}, marker)
    for name, df in zip(_DATA_FILES, (data.train, data.test), strict=True):
        _write_ints(df, out_dir / name)
    write_csv(data.answers, answers_path, float_format="%.6f")
    write_json({**data.params, "files": {name: _fingerprint(out_dir / name) for name in _DATA_FILES}}, marker)


def main() -> None:
    ap = argparse.ArgumentParser(description="Generate the realistic DSG17-shaped demo data set.")
    ap.add_argument("--users", type=int, default=2000, help="number of users (19918 = the real size, ~7.5M rows)")
    ap.add_argument("--seed", type=int, default=config.SEED)
    ap.add_argument("--out-dir", type=Path, default=config.RAW, help="where train.csv, test.csv and .demo go")
    ap.add_argument("--answers", type=Path, default=config.DEMO_ANSWERS, help="hidden answers of the test rows")
    ap.add_argument(
        "--replace-demo", action="store_true", help="rebuild over earlier demo files (never over your own data)"
    )
    args = ap.parse_args()
    check_out_dir(args.out_dir, replace_demo=args.replace_demo)  # before the work, not after
    t0 = time.perf_counter()
    data = generate(args.users, seed=args.seed)
    log.info(
        "generated %s train rows, %s test rows in %.1fs",
        f"{len(data.train):,}",
        f"{len(data.test):,}",
        time.perf_counter() - t0,
    )
    write_demo(data, args.out_dir, args.answers, replace_demo=args.replace_demo)
    s = summarize(data)
    log.info(
        "demo data in %s (%d users, seed %d): listen rate %.3f (Flow %.3f, non-Flow %.3f), Flow share %.2f, "
        "oracle test AUC %.3f; %.1fs",
        args.out_dir,
        args.users,
        args.seed,
        s["listen_rate"],
        s["listen_rate_flow"],
        s["listen_rate_non_flow"],
        s["flow_share"],
        s["oracle_auc_test"],
        time.perf_counter() - t0,
    )


if __name__ == "__main__":
    run_cli(main)
