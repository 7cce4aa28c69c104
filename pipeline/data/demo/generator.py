"""``generate``: the story's steps in order, all drawn from one seeded random generator."""

from __future__ import annotations

import dataclasses

import numpy as np

from core.errors import PipelineError
from core.schema import TRAIN_COLUMNS
from pipeline.data.demo.catalogue import _make_catalogue
from pipeline.data.demo.constants import GENERATOR_VERSION, MAX_USERS
from pipeline.data.demo.plays import _make_plays
from pipeline.data.demo.tables import DemoData, _table
from pipeline.data.demo.testset import _first_flow_plays, _test_frames
from pipeline.data.demo.users import _make_users


def generate(n_users: int = 2000, *, seed: int = 42, latent_taste: float = 0.0) -> DemoData:
    """Build the demo train, test and answers tables (pure: no files).

    ``latent_taste`` (per sd; default 0, the demo as it always was) adds a user x artist taste
    that shows in the listens and skips only (:mod:`pipeline.data.demo.listening`): a world
    like the taste issue's hidden sets, where a model of the labels beats co-listening.
    """
    if not 1 <= n_users <= MAX_USERS:
        raise PipelineError(f"--users must be between 1 and {MAX_USERS:,}, got {n_users:,}")
    if not (np.isfinite(latent_taste) and latent_taste >= 0):
        raise PipelineError(f"--latent-taste must be a finite number >= 0, got {latent_taste!r}")
    # Same seed, same bytes: every step draws from this one generator, so the order of the
    # steps below is part of the output (the train row order, say, is drawn between the
    # test plays and the test's sample order).
    rng = np.random.default_rng(seed)
    salt = int(rng.integers(0, 2**62))
    cat = _make_catalogue(rng, n_users)
    users = dataclasses.replace(_make_users(rng, n_users, cat), latent_taste=float(latent_taste))
    plays = _make_plays(rng, cat, users, salt=salt)
    first = _first_flow_plays(rng, cat, users, plays, salt=salt)

    N = len(plays.row_user)
    train = _table(
        cat,
        users,
        TRAIN_COLUMNS,
        user=plays.row_user,
        media=plays.media,
        ts=plays.ts,
        ctx=plays.ctx,
        flow=plays.flow,
        device=plays.device,
        listened=plays.listened,
        order=rng.permutation(N),  # the real file is not sorted: nothing downstream may rely on an order
    )
    test, answers = _test_frames(rng, cat, users, first)
    params = {
        "generator": "pipeline.data.demo",
        "version": GENERATOR_VERSION,
        "users": n_users,
        "seed": seed,
        "train_rows": N,
        "test_rows": n_users,
    }
    if latent_taste:
        params["latent_taste"] = float(latent_taste)
    return DemoData(train=train, test=test, answers=answers, params=params)
