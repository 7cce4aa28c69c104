"""Rounds of Flow session starts: the local stand-in for the hidden test rows."""

import numpy as np
import pandas as pd

from core.schema import FEATURE_COLUMNS, TRAIN_COLUMNS
from pipeline.data.examples import build_test_examples, build_train_examples, flow_session_starts


def _train(rows: list[tuple[int, int, int, int]]) -> pd.DataFrame:
    """rows of (user_id, ts_listen, listen_type, is_listened); other columns constant."""
    df = pd.DataFrame(rows, columns=["user_id", "ts_listen", "listen_type", "is_listened"])
    for col, dtype in TRAIN_COLUMNS.items():
        if col not in df:
            df[col] = 1
        df[col] = df[col].astype(dtype)
    return df[list(TRAIN_COLUMNS)]


GAP = 600  # 10 minutes

# user 1: session A (0, 100 flow; 200 flow) | gap | session B (2000 non-flow, 2100 flow) | gap | session C (9000 flow)
# user 2: one session with only non-flow plays, then a flow session
TRAIN = _train(
    [
        (1, 2100, 1, 0),
        (1, 0, 0, 1),
        (1, 100, 1, 1),
        (1, 200, 1, 0),
        (1, 2000, 0, 1),
        (1, 9000, 1, 1),
        (2, 50, 0, 1),
        (2, 5000, 1, 0),
    ]
)


def test_flow_session_starts_are_first_flow_play_of_each_session():
    s = flow_session_starts(TRAIN, gap_seconds=GAP)
    starts = s[s["is_start"]].sort_values(["user_id", "ts_listen"])
    # user 1: 100 (session A's first Flow), 2100 (B's first Flow), 9000 (C); user 2: 5000
    assert starts[["user_id", "ts_listen"]].to_numpy().tolist() == [[1, 100], [1, 2100], [1, 9000], [2, 5000]]
    assert starts["start_rank"].tolist() == [3, 2, 1, 1]


def test_rounds_peel_from_the_end_and_round_one_is_validation():
    ex = build_train_examples(TRAIN, rounds=2, gap_seconds=GAP)
    got = ex[["round", "user_id", "ts_listen", "is_listened"]].to_numpy().tolist()
    assert got == [[1, 1, 9000, 1], [1, 2, 5000, 0], [2, 1, 2100, 0]]
    assert ex["example_id"].tolist() == [0, 1, 2]
    # row_id points back at the train row
    assert (TRAIN.iloc[ex["row_id"]]["ts_listen"].to_numpy() == ex["ts_listen"].to_numpy()).all()


def test_extra_flow_rows_are_before_the_validation_target_and_not_rounds():
    ex = build_train_examples(TRAIN, rounds=1, gap_seconds=GAP, extra_flow_per_user=5, seed=0)
    extra = ex[ex["round"] == -1]
    # user 1's Flow plays before 9000 that are not round 1: 100, 200, 2100; user 2 has none before 5000
    assert sorted(extra["ts_listen"].tolist()) == [100, 200, 2100]
    assert (extra["user_id"] == 1).all()


def test_examples_are_deterministic_and_ordered():
    a = build_train_examples(TRAIN, rounds=3, gap_seconds=GAP, extra_flow_per_user=1, seed=3)
    b = build_train_examples(
        TRAIN.sample(frac=1.0, random_state=1).reset_index(drop=True),
        rounds=3,
        gap_seconds=GAP,
        extra_flow_per_user=1,
        seed=3,
    )
    cols = ["round", "user_id", "ts_listen", "is_listened"]
    pd.testing.assert_frame_equal(a[cols], b[cols])


def test_test_examples_keep_the_test_order():
    test = TRAIN.drop(columns="is_listened").iloc[[3, 0, 5]].reset_index(drop=True)
    test.insert(0, "sample_id", np.array([2, 0, 1], dtype=np.int32))
    ex = build_test_examples(test)
    assert ex["sample_id"].tolist() == [2, 0, 1]
    assert (ex["round"] == 0).all()
    assert list(ex.columns[:3]) == ["example_id", "row_id", "round"]
    assert set(FEATURE_COLUMNS) <= set(ex.columns)


def test_extra_rows_respect_the_global_cap():
    ex = build_train_examples(TRAIN, rounds=1, gap_seconds=GAP, extra_flow_per_user=5, extra_flow_max_rows=2, seed=0)
    extra = ex[ex["round"] == -1]
    assert len(extra) == 2
    assert set(extra["ts_listen"]) <= {100, 200, 2100}


# Users 1-3 with 10, 4 and 1 past Flow plays (one session each), then a last Flow session (round 1).
MANY = _train(
    [(1, 10 * i, 1, i % 2) for i in range(10)]
    + [(2, 10 * i, 1, 1) for i in range(4)]
    + [(3, 0, 1, 0)]
    + [(u, 10_000, 1, 1) for u in (1, 2, 3)]
)


def _extra(**kw) -> pd.DataFrame:
    ex = build_train_examples(MANY, rounds=1, gap_seconds=GAP, seed=7, **kw)
    return ex[ex["round"] == -1]


def test_the_top_up_adds_each_users_next_rows_when_the_first_tier_is_under_the_cap():
    first = _extra(extra_flow_per_user=2, extra_flow_max_rows=100)
    assert first["user_id"].value_counts().sort_index().tolist() == [2, 2, 1]
    topped = _extra(extra_flow_per_user=2, extra_flow_max_rows=100, extra_flow_topup_per_user=6)
    assert topped["user_id"].value_counts().sort_index().tolist() == [6, 4, 1]
    # The same seeded order as a first tier of 6: the top-up is each user's next rows of that order.
    pd.testing.assert_frame_equal(topped, _extra(extra_flow_per_user=6, extra_flow_max_rows=100))
    assert set(first["row_id"]) <= set(topped["row_id"])


def test_the_top_up_keeps_the_cap_and_every_first_tier_row():
    first = _extra(extra_flow_per_user=1)
    topped = _extra(extra_flow_per_user=1, extra_flow_max_rows=5, extra_flow_topup_per_user=10)
    assert len(first) == 3 and len(topped) == 5 and set(first["row_id"]) < set(topped["row_id"])


def test_when_the_first_tier_fills_the_cap_the_top_up_changes_nothing():
    # 7 first-tier rows (3 + 3 + 1) over a cap of 4: subsampled as without a top-up, row for row.
    plain = build_train_examples(MANY, rounds=1, gap_seconds=GAP, extra_flow_per_user=3, extra_flow_max_rows=4, seed=7)
    topped = build_train_examples(
        MANY, rounds=1, gap_seconds=GAP, extra_flow_per_user=3, extra_flow_max_rows=4, extra_flow_topup_per_user=50,
        seed=7,
    )  # fmt: skip
    assert (plain["round"] == -1).sum() == 4
    pd.testing.assert_frame_equal(plain, topped)
