"""Sessions and plays: the train rows, from the session schedule to labels and timestamps.

A user's plays fall into sessions between late October and 1 December 2016 (start hours
follow the real daily rhythm in UTC), more than 10 minutes and up to days apart.  A
session is one context or, rarely, switches: Flow (listen_type 1, context_type 1/5/20/23)
or one of 70 non-Flow contexts (playlist, album, search, radio-like); ~30% of plays are
Flow.  Flow mixes library tracks, tracks of the user's genres and a popular/new pool;
albums play in track order; playlists replay the library.  Within a session ts_listen
advances by the track's duration when it is listened and by 2-30 s when it is skipped.
The mood is an AR(1) over the user's sessions plus one over the plays of a session.

``_make_plays`` runs the steps in order.  They share one random generator, so the order
of the steps and of the draws inside them is part of the output: reordering any of them
changes every byte written after it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from pipeline.data.demo.arrays import _ar1, _firsts, _innovations
from pipeline.data.demo.catalogue import _Catalogue, _respect_release
from pipeline.data.demo.constants import (
    _ALBUM,
    _DAY,
    _FLOW,
    _FLOW_CONTEXT_P,
    _FLOW_CONTEXTS,
    _HOUR_WEIGHTS,
    _MIN_GAP,
    _NON_FLOW_CONTEXTS,
    _NON_FLOW_KIND,
    _NON_FLOW_P,
    _NOV1,
    _PLAY_MOOD_RHO,
    _PLAY_MOOD_SD,
    _PLAYLIST,
    _SESSION_MOOD_RHO,
    _SESSION_MOOD_SD,
)
from pipeline.data.demo.listening import _logit
from pipeline.data.demo.quirks import _break_clocks
from pipeline.data.demo.tracks import _draw_tracks
from pipeline.data.demo.users import _Users

_BASE = _NOV1 - 200 * _DAY  # origin of the per-user packed times: before every session


@dataclass(frozen=True)
class _Plays:
    """The train plays row by row (user after user, sessions in order), and what the test rows carry over."""

    row_user: np.ndarray
    media: np.ndarray
    ts: np.ndarray
    ctx: np.ndarray
    flow: np.ndarray  # listen_type: a Flow play
    device: np.ndarray
    listened: np.ndarray
    user_has_sessions: np.ndarray  # per user
    last_session_mood: np.ndarray  # per user: the mood of their last train session (0 without one)


@dataclass(frozen=True)
class _Sessions:
    """Per session, sorted by user then time: first row, user, intended start, device and mood."""

    first_row: np.ndarray
    user: np.ndarray
    user_first: np.ndarray  # per user: index of their first session
    n_per_user: np.ndarray  # per user
    t_intended: np.ndarray  # before sessions are pushed apart: hour and release age are taken here
    device: np.ndarray
    mood: np.ndarray

    @property
    def user_has(self) -> np.ndarray:
        """Per user: has at least one train session."""
        return self.n_per_user > 0

    @property
    def user_last(self) -> np.ndarray:
        """Per user: index of their last session (meaningful where ``user_has``)."""
        return self.user_first + self.n_per_user - 1


def _make_plays(rng: np.random.Generator, cat: _Catalogue, users: _Users, *, salt: int) -> _Plays:
    """Every train play of ``users``: context, track, label and timestamp, with the broken clocks."""
    row_user, sess_of_row, sess_first, pos_s = _split_sessions(rng, users)
    seg_of_row, seg_first, pos_g = _split_segments(rng, pos_s)
    seg_user = row_user[seg_first]
    seg_ctx, seg_kind = _segment_contexts(rng, users, seg_user)
    kind = seg_kind[seg_of_row]
    ctx = seg_ctx[seg_of_row]
    switch = np.flatnonzero((pos_g == 0) & (pos_s > 0))  # a new context inside a session

    sessions = _schedule_sessions(rng, users, row_user, sess_first)
    t_row = sessions.t_intended[sess_of_row]
    media = _choose_tracks(
        rng,
        cat,
        users,
        row_user=row_user,
        kind=kind,
        seg_user=seg_user,
        seg_of_row=seg_of_row,
        pos_g=pos_g,
        play_day=(t_row // _DAY).astype(float),
    )
    del pos_g, seg_of_row  # row-sized: free them before the label and time steps (full size is ~7.6M rows)
    device = sessions.device[sess_of_row]
    listened = _draw_listens(
        rng,
        cat,
        users,
        sessions,
        row_user=row_user,
        sess_of_row=sess_of_row,
        pos_s=pos_s,
        media=media,
        kind=kind,
        t_row=t_row,
        device=device,
        salt=salt,
    )
    del t_row
    ts, start = _timestamps(
        rng, cat, users, sessions, sess_of_row=sess_of_row, media=media, listened=listened, switch=switch
    )
    ts = _break_clocks(rng, ts, sess_of_row, start, len(sess_first))

    has = sessions.user_has
    last_mood = np.zeros(len(has))
    last_mood[has] = sessions.mood[sessions.user_last[has]]
    return _Plays(
        row_user=row_user,
        media=media,
        ts=ts,
        ctx=ctx,
        flow=kind == _FLOW,
        device=device,
        listened=listened,
        user_has_sessions=has,
        last_session_mood=last_mood,
    )


def _split_sessions(rng: np.random.Generator, users: _Users) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Lay the train rows out user after user and cut them into sessions (mean length: the user's).

    Returns each row's user and session, each session's first row, and each row's position in its session.
    """
    n = users.n_rows
    N = int(n.sum())
    row_user = np.repeat(np.arange(len(n), dtype=np.int64), n)
    user_first = np.concatenate([[0], np.cumsum(n)[:-1]])
    new_sess = (np.arange(N) == user_first[row_user]) | (rng.random(N) < 1.0 / users.session_len[row_user])
    sess_of_row = np.cumsum(new_sess) - 1
    sess_first = np.flatnonzero(new_sess)
    pos_s = np.arange(N) - sess_first[sess_of_row]
    return row_user, sess_of_row, sess_first, pos_s


def _split_segments(rng: np.random.Generator, pos_s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cut sessions into context segments: a session switches context rarely (1.5% per play).

    Returns each row's segment, each segment's first row, and each row's position in its segment.
    """
    N = len(pos_s)
    new_seg = (pos_s == 0) | (rng.random(N) < 0.015)
    seg_of_row = np.cumsum(new_seg) - 1
    seg_first = np.flatnonzero(new_seg)
    pos_g = np.arange(N) - seg_first[seg_of_row]
    return seg_of_row, seg_first, pos_g


def _segment_contexts(rng: np.random.Generator, users: _Users, seg_user: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A context_type and a kind per segment: Flow with the user's Flow share, else one of the 70 others."""
    G = len(seg_user)
    seg_flow = rng.random(G) < users.flow_share[seg_user]
    nf = rng.choice(70, G, p=_NON_FLOW_P)
    seg_ctx = np.where(seg_flow, rng.choice(_FLOW_CONTEXTS, G, p=_FLOW_CONTEXT_P), _NON_FLOW_CONTEXTS[nf])
    seg_kind = np.where(seg_flow, _FLOW, _NON_FLOW_KIND[nf])
    return seg_ctx, seg_kind


def _schedule_sessions(
    rng: np.random.Generator, users: _Users, row_user: np.ndarray, sess_first: np.ndarray
) -> _Sessions:
    """Intended start times (the daily rhythm, inside the user's window, sorted per user), device and mood."""
    U = len(users.n_rows)
    S = len(sess_first)
    sess_user = row_user[sess_first]
    sess_user_first = _firsts(sess_user, U)
    a = users.win_start[sess_user]
    b = users.t_test[sess_user] - _MIN_GAP
    t = a + rng.random(S) * (b - a)
    tod = rng.choice(24, S, p=_HOUR_WEIGHTS / _HOUR_WEIGHTS.sum()) * 3600 + rng.integers(0, 3600, S)
    t = np.clip((t // _DAY) * _DAY + tod, a, b).astype(np.int64)
    t_int = np.sort(sess_user * 2**32 + (t - _BASE)) - sess_user * 2**32 + _BASE
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
    return _Sessions(
        first_row=sess_first,
        user=sess_user,
        user_first=sess_user_first,
        n_per_user=np.bincount(sess_user, minlength=U),
        t_intended=t_int,
        device=sess_device,
        mood=sess_mood,
    )


def _choose_tracks(
    rng: np.random.Generator,
    cat: _Catalogue,
    users: _Users,
    *,
    row_user: np.ndarray,
    kind: np.ndarray,
    seg_user: np.ndarray,
    seg_of_row: np.ndarray,
    pos_g: np.ndarray,
    play_day: np.ndarray,
) -> np.ndarray:
    """A track per row: album segments play one album in order from a start track, the rest draw per play."""
    G = len(seg_user)
    media = _draw_tracks(rng, cat, users, row_user, kind)
    seg_album_m = _draw_tracks(rng, cat, users, seg_user, np.full(G, _PLAYLIST))
    seg_album = cat.media_album[seg_album_m]
    seg_start = np.where(rng.random(G) < 0.6, 0, cat.media_track[seg_album_m])
    alb_rows = np.flatnonzero(kind == _ALBUM)
    sg = seg_of_row[alb_rows]
    al = seg_album[sg]
    media[alb_rows] = cat.album_first[al] + (seg_start[sg] + pos_g[alb_rows]) % cat.album_ntracks[al]
    return _respect_release(rng, cat, media, play_day)


def _draw_listens(
    rng: np.random.Generator,
    cat: _Catalogue,
    users: _Users,
    sessions: _Sessions,
    *,
    row_user: np.ndarray,
    sess_of_row: np.ndarray,
    pos_s: np.ndarray,
    media: np.ndarray,
    kind: np.ndarray,
    t_row: np.ndarray,
    device: np.ndarray,
    salt: int,
) -> np.ndarray:
    """is_listened per row from the listening model, the mood being the session's plus a within-session AR(1)."""
    play_mood = _ar1(
        _innovations(rng, pos_s == 0, _PLAY_MOOD_SD, _PLAY_MOOD_RHO),
        _PLAY_MOOD_RHO,
        sessions.first_row[sess_of_row],
        pos_s,
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
        device=device,
        mood=sessions.mood[sess_of_row] + play_mood,
        salt=salt,
    )
    del play_mood
    return rng.random(len(z)) < expit(z)


def _timestamps(
    rng: np.random.Generator,
    cat: _Catalogue,
    users: _Users,
    sessions: _Sessions,
    *,
    sess_of_row: np.ndarray,
    media: np.ndarray,
    listened: np.ndarray,
    switch: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """ts_listen per row (and each session's start): plays follow each other within a session."""
    dt = _play_seconds(rng, cat, media=media, listened=listened, switch=switch)
    excl = np.cumsum(dt) - dt
    offset = excl - excl[sessions.first_row[sess_of_row]]
    del excl
    sess_len = np.add.reduceat(dt, sessions.first_row) if len(sessions.user) else np.zeros(0, dtype=np.int64)
    del dt
    start = _session_starts(rng, users, sessions, sess_len)
    return start[sess_of_row] + offset, start


def _play_seconds(
    rng: np.random.Generator, cat: _Catalogue, *, media: np.ndarray, listened: np.ndarray, switch: np.ndarray
) -> np.ndarray:
    """Seconds until the next play: a listened track its duration (bounded), a skip 2-30 s, browsing at a switch."""
    N = len(media)
    dur = cat.media_duration[media]
    dt = np.where(
        listened,
        np.where(
            dur == 0, rng.integers(120, 400, N), np.where(dur > 3600, rng.integers(600, 3600, N), np.maximum(dur, 31))
        ),
        rng.integers(2, 31, N),
    )
    dt[switch - 1] += rng.integers(5, 120, len(switch))  # browsing before the new context starts
    return dt


def _session_starts(rng: np.random.Generator, users: _Users, sessions: _Sessions, sess_len: np.ndarray) -> np.ndarray:
    """Session start times: no overlap (a gap of more than 10 minutes), the whole history before the test row.

    Each session starts at its intended time or, if the previous one has not ended, after
    it; a user whose last session would end too close to the test time is moved earlier.
    """
    U = len(users.t_test)
    sess_user = sessions.user
    L = sess_len + _MIN_GAP + rng.integers(0, 900, len(sess_len))
    csl = np.cumsum(L)
    C = (csl - L) - (csl - L)[sessions.user_first[sess_user]]
    y = sessions.t_intended - C - _BASE
    start = np.maximum.accumulate(sess_user * 2**33 + y) - sess_user * 2**33 + _BASE + C
    last_sess = sessions.user_last
    has = sessions.user_has
    last_end = np.full(U, np.iinfo(np.int64).min)
    last_end[has] = start[last_sess[has]] + sess_len[last_sess[has]]
    excess = last_end + _MIN_GAP - users.t_test
    shift = np.where(excess > 0, excess + rng.integers(0, 3600, U), 0)
    start -= shift[sess_user]
    return start
