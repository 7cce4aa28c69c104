"""The test rows, built like the real test: per user one row, the first track of a new Flow session.

context_type 1 on ~81%, 5 on ~17%, 20/23 on the rest, at the user's test time (the real
test's day and hour profile, more than 10 minutes after the user's last train play).
The label is drawn from the listening model, the session mood carried over from the
user's last session; its probability is kept as ``p_true``.  sample_id runs 0..n-1 in a
shuffled user order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import expit

from core.schema import SAMPLE_ID, TARGET, TEST_COLUMNS
from pipeline.data.demo.catalogue import _Catalogue, _respect_release
from pipeline.data.demo.constants import (
    _DAY,
    _FLOW,
    _FLOW_CONTEXT_P,
    _FLOW_CONTEXTS,
    _PLAY_MOOD_SD,
    _SESSION_MOOD_RHO,
    _SESSION_MOOD_SD,
)
from pipeline.data.demo.listening import _logit
from pipeline.data.demo.plays import _Plays
from pipeline.data.demo.tables import _table
from pipeline.data.demo.tracks import _draw_tracks
from pipeline.data.demo.users import _Users


@dataclass(frozen=True)
class _TestPlays:
    """Per user, by user id: the test row's track, device, context, true listen probability and label."""

    media: np.ndarray
    device: np.ndarray
    ctx: np.ndarray
    p_true: np.ndarray
    label: np.ndarray


def _first_flow_plays(
    rng: np.random.Generator, cat: _Catalogue, users: _Users, plays: _Plays, *, salt: int
) -> _TestPlays:
    """Each user's test play: a Flow track at ``users.t_test``, labelled by the listening model."""
    U = len(users.t_test)
    tu = np.arange(U)
    t_kind = np.full(U, _FLOW)
    t_media = _respect_release(
        rng, cat, _draw_tracks(rng, cat, users, tu, t_kind), (users.t_test // _DAY).astype(float)
    )
    has = plays.user_has_sessions
    t_sess_mood = np.where(
        has,
        _SESSION_MOOD_RHO * plays.last_session_mood
        + rng.normal(0, _SESSION_MOOD_SD * np.sqrt(1 - _SESSION_MOOD_RHO**2), U),
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
    return _TestPlays(media=t_media, device=t_device, ctx=t_ctx, p_true=p_true, label=t_label)


def _test_frames(
    rng: np.random.Generator, cat: _Catalogue, users: _Users, first: _TestPlays
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The test rows in the file layout and their hidden answers, both in a shuffled user order."""
    U = len(users.t_test)
    sample_user = rng.permutation(U)
    test = _table(
        cat,
        users,
        TEST_COLUMNS,
        user=sample_user,
        media=first.media[sample_user],
        ts=users.t_test[sample_user],
        ctx=first.ctx[sample_user],
        flow=np.ones(U, dtype=bool),
        device=first.device[sample_user],
        sample_id=np.arange(U),
    )
    answers = pd.DataFrame(
        {SAMPLE_ID: np.arange(U), "p_true": first.p_true[sample_user], TARGET: first.label[sample_user]}
    )
    return test, answers
