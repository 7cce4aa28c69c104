"""Odd but valid data always gives a valid submission (property-based).

Hypothesis builds tiny DSG17 sets mixing ordinary users with odd ones (a single play,
never skipping, always skipping), ids at the int32 limit, every timestamp quirk of the
real data, placeholder release dates, zero durations, unknown genres, test users and
tracks never seen in train, and sometimes a one-row test.  The whole chain runs in
process (contract, examples, every feature group, selection, training, submission)
and the written file must be a valid submission for exactly the test's sample_ids.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.schema import TEST_COLUMNS, TRAIN_COLUMNS
from core.settings import ModelSettings, SelectSettings, TuneSettings
from features import FEATURE_GROUPS
from features.history import History
from pipeline import select, submit, train, tune
from pipeline.build_features import compute_group
from pipeline.data import contract
from pipeline.data.dataset import Matrix
from pipeline.data.examples import build_test_examples, build_train_examples

T0 = 1_478_000_000  # Nov 2016
INT32_MAX = 2**31 - 1
QUIRK_TS = [1, 8, 79, 865, 316_000_000, 1_350_000_000]  # broken clocks, 1980, 2012


#: Tiny budgets: two Optuna trials without a clock, few trees and resamples.
TUNE = TuneSettings(
    seed=0, optuna_seconds=0.0, optuna_max_trials=2, optuna_max_rounds=30, optuna_early_stopping=10,
    optuna_report_every=10,
)  # fmt: skip
SELECT = SelectSettings(seed=0, select_trees=10, permutation_repeats=1)
MODEL = ModelSettings(seed=0, bootstrap_rounds=20, models=("logistic_regression", "lightgbm", "lightgbm_tuned"))


@st.composite
def odd_dataset(draw) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    big = draw(st.booleans())  # ids near the int32 limit
    base = INT32_MAX - 10_000 if big else 0
    rows = []

    def play(user, ts, media, y, flow=1):
        rows.append(
            {
                "genre_id": int(draw(st.sampled_from([0, 0, 7, 11]))),
                "ts_listen": int(ts),
                "media_id": base + media,
                "album_id": base + media // 2,
                "context_type": 1 if flow else 23,
                "release_date": int(draw(st.sampled_from([20160901, 19000101, 30000101, 20161125]))),
                "platform_name": user % 3,
                "platform_family": user % 2,
                "media_duration": int(draw(st.sampled_from([0, 215, 65_535]))),
                "listen_type": flow,
                "user_gender": user % 2,
                "user_id": base + user,
                "artist_id": base + media // 3,
                "user_age": 18 + user % 13,
                "is_listened": int(y),
            }
        )

    # Ordinary users: three Flow sessions each; session-start labels alternate across users.
    n_normal = draw(st.integers(4, 7))
    for u in range(n_normal):
        t = T0 + u * 5_000
        for s in range(3):
            for k in range(4):
                play(u, t + k * 200, int(rng.integers(0, 30)), (u + s + k) % 2 if k == 0 else rng.random() < 0.6)
            t += 40_000
    # Odd users.
    u = n_normal
    for kind in draw(st.lists(st.sampled_from(["one_play", "never_skips", "always_skips"]), max_size=3)):
        n = 1 if kind == "one_play" else 12
        for k in range(n):
            y = {"one_play": 1, "never_skips": 1, "always_skips": 0}[kind]
            play(u, T0 + 100_000 + k * 900, int(rng.integers(0, 30)), y, flow=k % 2)
        u += 1
    # Every timestamp quirk, on ordinary users' rows.
    for q in draw(st.lists(st.sampled_from(QUIRK_TS), min_size=1, max_size=4)):
        play(int(rng.integers(0, n_normal)), q, int(rng.integers(0, 30)), rng.random() < 0.5)
    train_df = pd.DataFrame(rows)[list(TRAIN_COLUMNS)]

    # Test: one row per user after their history, plus an unseen user on an unseen track; or a single row.
    last = train_df.groupby("user_id")["ts_listen"].max()
    test = train_df.sort_values("ts_listen").groupby("user_id").tail(1).drop(columns="is_listened").copy()
    test["ts_listen"] = test["user_id"].map(last) + 3_600
    unseen = test.iloc[[0]].copy()
    unseen["user_id"], unseen["media_id"], unseen["artist_id"] = base + 9_000, base + 9_999, base + 9_998
    test = pd.concat([test, unseen], ignore_index=True)
    if draw(st.booleans()):
        test = test.iloc[[int(rng.integers(0, len(test)))]]
    test = test.sample(frac=1.0, random_state=1).reset_index(drop=True)
    test.insert(0, "sample_id", rng.permutation(len(test)) + (INT32_MAX - len(test) if big else 0))
    return train_df, test[list(TEST_COLUMNS)]


def _matrix(history: History, examples: pd.DataFrame) -> Matrix:
    frames, groups = [], {}
    for g in FEATURE_GROUPS:
        f = compute_group(g, history, examples).drop(columns="example_id")
        groups.update(dict.fromkeys(f.columns, g))
        frames.append(f)
    return Matrix(examples=examples, X=pd.concat(frames, axis=1), groups=groups)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=odd_dataset())
def test_odd_but_valid_data_gives_a_valid_submission(data, tmp_path_factory):
    train_df, test_df = data
    tmp = tmp_path_factory.mktemp("odd")
    train_df.to_csv(tmp / "train.csv", index=False)
    test_df.to_csv(tmp / "test.csv", index=False)
    tr = contract.read_train(tmp / "train.csv")  # the loader takes every quirk
    te = contract.read_test(tmp / "test.csv")
    history = History(tr)
    train_m = _matrix(history, build_train_examples(tr, rounds=3, gap_seconds=600, extra_flow_per_user=3, seed=0))
    test_m = _matrix(history, build_test_examples(te))
    select.run(matrix=train_m, out_dir=tmp / "models", settings=SELECT)
    tune.run(settings=TUNE, matrix=train_m, models_dir=tmp / "models")
    train.run(
        matrix=train_m,
        settings=MODEL,
        models_dir=tmp / "models",
        runs_dir=tmp / "runs",
        reports_dir=tmp / "reports",
        write_report=False,
    )
    path = submit.run(
        train=train_m,
        test=test_m,
        expected_ids=te["sample_id"].to_numpy(),
        models_dir=tmp / "models",
        runs_dir=tmp / "runs",
        out_dir=tmp / "subs",
        settings=MODEL,
    )
    sub = pd.read_csv(path)
    assert list(sub.columns) == ["sample_id", "is_listened"]
    assert sub["sample_id"].tolist() == te["sample_id"].tolist()
    p = sub["is_listened"].to_numpy()
    assert np.isfinite(p).all() and ((p >= 0) & (p <= 1)).all()
