"""Features at "now" from the saved state equal a full pass of the groups, for every default group.

The recommender scores candidates from :mod:`features.now` (the user's rows plus a state
written once) instead of passing the groups over the history; these tests hold it to the
full pass's numbers, exactly, on a demo history of 80 users: a heavy, a median, a light and
an unknown user, with and without the tracks they heard.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from core import config
from features import FEATURE_GROUPS, OPTIONAL_GROUPS
from features.now import NOW_GROUPS, UserHistory, now_features
from pipeline.build_features import compute_group
from pipeline.data.demo.generator import generate
from pipeline.pool import Scene
from pipeline.recommend import similar
from pipeline.recommend_state import NowScene, build, load_state


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    d = tmp_path_factory.mktemp("now")
    data = generate(80, seed=5)
    train, test = d / "train.parquet", d / "test.parquet"
    data.train.to_parquet(train, index=False)
    data.test.to_parquet(test, index=False)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(config, "HISTORY_CACHE", d / "cache")
        state = build(train, test, d / "state")
        full = Scene(history_path=train, test_path=test)
        yield full, NowScene(state, d / "state" / "plays_by_user.parquet"), state, (train, test, d / "state")


def _users(full: Scene) -> dict[str, int]:
    counts = full.history.df["user_id"].value_counts().sort_index().sort_values(kind="stable")
    return {
        "light": int(counts.index[0]),
        "median": int(counts.index[len(counts) // 2]),
        "heavy": int(counts.index[-1]),
        "unknown": full.new_user,
    }


def test_every_default_group_has_a_now_path() -> None:
    assert sorted(NOW_GROUPS) == sorted(g for g in FEATURE_GROUPS if g not in OPTIONAL_GROUPS)


@pytest.mark.parametrize("who", ["light", "median", "heavy", "unknown"])
@pytest.mark.parametrize("include_heard", [False, True])
def test_now_features_equal_a_full_pass(world, who: str, include_heard: bool) -> None:
    full, fast, state, _ = world
    user = _users(full)[who]
    pool = full.pool(user, include_heard=include_heard)
    pd.testing.assert_frame_equal(fast.pool(user, include_heard=include_heard), pool)
    assert len(pool) > 20
    targets = full.targets(user, pool, age=None, gender=None)
    pd.testing.assert_frame_equal(fast.targets(user, pool, age=None, gender=None), targets)
    pd.testing.assert_frame_equal(
        fast.user_rows(user).reset_index(drop=True), full.user_rows(user).reset_index(drop=True)
    )
    got = now_features(state.features, fast.user_rows(user), targets, list(NOW_GROUPS))
    for group, frame in zip(NOW_GROUPS, got, strict=True):
        want = compute_group(group, full.history, targets)
        pd.testing.assert_frame_equal(frame, want, check_exact=True, obj=f"{group} ({who})")
        # Not vacuous: a known user has every group's features (an unknown one has no content profile).
        if who != "unknown":
            assert frame.drop(columns="example_id").notna().any().any(), group


def test_a_new_user_of_a_given_age_and_gender_gets_the_full_pass_numbers(world) -> None:
    full, fast, state, _ = world
    user = full.new_user
    pool = full.pool(user)
    targets = full.targets(user, pool, age=31, gender=1)
    got = now_features(state.features, fast.user_rows(user), targets, ["demographics", "media", "user"])
    for group, frame in zip(["demographics", "media", "user"], got, strict=True):
        pd.testing.assert_frame_equal(frame, compute_group(group, full.history, targets), check_exact=True)


def test_user_history_refuses_a_time_before_the_end_of_the_history(world) -> None:
    full, fast, state, _ = world
    user = _users(full)["median"]
    uh = UserHistory(fast.user_rows(user), state.features)
    with pytest.raises(ValueError, match="after the history"):
        uh.global_asof(np.array([state.features.after - 1]), {"y": np.zeros(len(uh))})
    with pytest.raises(KeyError, match="not in the now state"):
        uh.global_asof(np.array([state.features.now]), {"something_else": np.zeros(len(uh))})
    pool = full.pool(user)
    past = full.targets(user, pool, age=None, gender=None).assign(ts_listen=state.features.after - 10)
    with pytest.raises(ValueError, match="need a full pass"):
        now_features(state.features, fast.user_rows(user), past, ["user"])
    with pytest.raises(ValueError, match="no now state"):
        now_features(state.features, fast.user_rows(user), past, ["rbm"])
    now = full.targets(user, pool, age=None, gender=None)
    without = dataclasses.replace(state.features, fm=None)  # a state built without the opt-in group
    with pytest.raises(ValueError, match="built without the fm group"):
        now_features(without, fast.user_rows(user), now, ["fm"])
    # What the recommender asks before taking the fast path: the groups a state cannot answer.
    assert state.features.missing(["user", "fm", "rbm"]) == ["rbm"]
    assert without.missing(["user", "fm", "rbm"]) == ["fm", "rbm"]


def test_state_is_refused_once_its_inputs_change(world, tmp_path) -> None:
    _, _, _, (train, test, state_dir) = world
    state, why = load_state(state_dir, history_path=train, test_path=test)
    assert state is not None and why == ""
    moved = tmp_path / "train.parquet"
    df = pd.read_parquet(train)
    df.iloc[:-1].to_parquet(moved, index=False)  # one play fewer: other data
    state, why = load_state(state_dir, history_path=moved, test_path=test)
    assert state is None and "other data" in why
    state, why = load_state(tmp_path / "nothing", history_path=train, test_path=test)
    assert state is None and "missing" in why


def test_similar_reads_the_states_taste_space_and_lists_what_the_history_gives(world, tmp_path) -> None:
    full, _, _, (train, test, state_dir) = world
    media = int(full.history.df["media_id"].value_counts().sort_index().idxmax())
    fast = similar(media, n=8, history_path=train, test_path=test, state_dir=state_dir)
    slow = similar(media, n=8, history_path=train, test_path=test, state_dir=tmp_path / "no-state")
    pd.testing.assert_frame_equal(fast, slow)
    assert len(fast) == 8 and media not in fast["media_id"].tolist()
    assert fast["similarity"].is_monotonic_decreasing
