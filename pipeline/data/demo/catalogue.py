"""The catalogue: genres -> artists -> albums -> tracks, with the ids, dates and durations the files show.

Popularity is Zipf-like and new releases are pushed; an album has one genre (shown as 0,
unknown, on ~48% of plays), a release date with year-only dates, placeholders and
pre-releases, and ids that grow with the date it entered the catalogue.  Cardinalities
grow sublinearly with the number of users and reach the real ones at ``FULL_USERS``.
Also here: drawing tracks from the catalogue (per genre, from the popular/new pool) and
keeping plays after the release.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.data.demo.arrays import _day_to_yyyymmdd, _search, _unique
from pipeline.data.demo.constants import (
    _ARTIST_POP_SD,
    _ARTIST_QUALITY_SD,
    _DAY,
    _NOV1,
    _TRACK_APPEAL_SD,
    FULL_USERS,
)


@dataclass(frozen=True)
class _Catalogue:
    """The catalogue as parallel arrays (genres, artists, albums and tracks by index) plus sampling tables."""

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
    """Draw a catalogue sized for ``n_users`` (the real cardinalities at ``FULL_USERS``)."""
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


def _sorted_unique_ids(rng: np.random.Generator, n: int, high: int, *, log_uniform: bool = False) -> np.ndarray:
    """``n`` distinct sorted ids in ``[1, high]``."""
    ids = np.empty(0, dtype=np.int64)
    while len(ids) < n:
        m = 2 * n + 16
        draw = np.exp(rng.uniform(0, np.log(high), m)) if log_uniform else rng.uniform(1, high, m)
        ids = _unique(np.concatenate([ids, np.clip(draw.astype(np.int64), 1, high)]))
    return np.sort(rng.choice(ids, n, replace=False))


def _draw_in_genre(rng: np.random.Generator, cat: _Catalogue, genre: np.ndarray, *, library: bool) -> np.ndarray:
    """One track per row from its ``genre``, by popularity (tempered for ``library`` tracks)."""
    lo, hi, cw = (
        (cat.genre_lo_lib, cat.genre_hi_lib, cat.cw_genre_lib)
        if library
        else (cat.genre_lo, cat.genre_hi, cat.cw_genre)
    )
    target = lo[genre] + rng.random(len(genre)) * (hi[genre] - lo[genre])
    idx = np.minimum(_search(cw, target, side="right"), len(cw) - 1)
    return cat.by_genre[idx]


def _draw_popular(rng: np.random.Generator, cat: _Catalogue, n: int) -> np.ndarray:
    """``n`` tracks from the popular/new pool (what Flow and the charts push)."""
    target = rng.random(n) * cat.cw_pop[-1]
    return cat.pop_media[np.minimum(_search(cat.cw_pop, target, side="right"), len(cat.cw_pop) - 1)]


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
