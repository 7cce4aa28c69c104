"""Build the rows the model learns from and is judged on, shaped like the hidden test.

The DSG17 test row is, for each user, the first Flow track of a new session at the end
of their history.  Locally we mirror it by *peeling rounds*: round 1 is each user's
last Flow session start in train (the validation round), round 2 the one before, and
so on up to ``ROUNDS``.  A *Flow session start* is the first Flow play (``listen_type
== 1``) of a session, a session being a run of plays with no silence longer than
``SESSION_GAP_MINUTES``.  Every feature of an example is computed from history rows
strictly before its timestamp, so the label of a round never reaches its own features.

Output: ``examples_train.parquet`` (rounds >= 1, and round -1 for optional extra Flow
rows) and ``examples_test.parquet`` (round 0, one per test row, in the test's order).
"""

from __future__ import annotations

import argparse
import logging

import numpy as np
import pandas as pd

from core import config
from core.errors import run_cli
from core.io import write_parquet
from core.schema import FEATURE_COLUMNS, SAMPLE_ID, TARGET
from core.settings import FeatureSettings, load
from features.history import session_starts

log = logging.getLogger("examples")

__all__ = ["flow_session_starts", "build_train_examples", "build_test_examples"]


def flow_session_starts(train: pd.DataFrame, *, gap_seconds: float) -> pd.DataFrame:
    """Return, per train row, its session number and whether it is a Flow session start.

    Columns: ``row_id`` (position in ``train``), ``user_id``, ``ts_listen``,
    ``is_start`` (first Flow play of its session) and ``start_rank`` (1 for the user's
    last Flow session start, 2 for the one before, ...; 0 for other rows).
    """
    order = np.lexsort((np.arange(len(train)), train["ts_listen"].to_numpy(), train["user_id"].to_numpy()))
    user = train["user_id"].to_numpy()[order]
    ts = train["ts_listen"].to_numpy().astype(np.int64)[order]
    flow = train["listen_type"].to_numpy()[order] == 1
    new_sess = session_starts(user, ts, gap_seconds)
    sess_id = np.cumsum(new_sess)
    # First Flow play of each session: a Flow row with no earlier Flow row in its session.
    flow_before = pd.Series(flow.astype(np.int32)).groupby(sess_id).cumsum().to_numpy() - flow
    is_start = flow & (flow_before == 0)
    starts_per_user = pd.Series(is_start.astype(np.int32)).groupby(user).transform("sum").to_numpy()
    seen = pd.Series(is_start.astype(np.int32)).groupby(user).cumsum().to_numpy()
    rank = np.where(is_start, starts_per_user - seen + 1, 0)
    return pd.DataFrame(
        {"row_id": order, "user_id": user, "ts_listen": ts, "is_start": is_start, "start_rank": rank.astype(np.int32)}
    )


def build_train_examples(
    train: pd.DataFrame,
    *,
    rounds: int,
    gap_seconds: float,
    extra_flow_per_user: int = 0,
    extra_flow_max_rows: int | None = None,
    extra_flow_topup_per_user: int = 0,
    seed: int = 0,
) -> pd.DataFrame:
    """Peel ``rounds`` Flow session starts per user (plus optional extra Flow rows) into examples.

    Extra rows: each user's past Flow plays before their round 1 that are not rounds, in a
    seeded random order; the first ``extra_flow_per_user`` of each user, subsampled to
    ``extra_flow_max_rows`` when they are more.  When they are fewer, each user's next ones up
    to ``extra_flow_topup_per_user`` in all are added (a uniform subsample of those next ones if
    they would pass the cap): a small data set gets more rows, while one where the first tier
    fills the cap (the competition's size) draws exactly the rows it drew without the top-up.
    """
    starts = flow_session_starts(train, gap_seconds=gap_seconds)
    chosen = starts[(starts["start_rank"] >= 1) & (starts["start_rank"] <= rounds)]
    parts = [pd.DataFrame({"row_id": chosen["row_id"].to_numpy(), "round": chosen["start_rank"].to_numpy()})]
    if extra_flow_per_user > 0:
        val_ts = chosen.loc[chosen["start_rank"] == 1].set_index("user_id")["ts_listen"]
        cand = starts[(starts["start_rank"] == 0) | (starts["start_rank"] > rounds)]
        cand = cand[train["listen_type"].to_numpy()[cand["row_id"].to_numpy()] == 1]
        limit = val_ts.reindex(cand["user_id"].to_numpy()).to_numpy()
        cand = cand[cand["ts_listen"].to_numpy() < np.nan_to_num(limit, nan=-1)]
        rng = np.random.default_rng(seed)
        shuffled = cand.assign(_r=rng.random(len(cand))).sort_values(["user_id", "_r"], kind="stable")
        # Each row's place in its user's seeded order: the first tier is places 0..per_user-1, the top-up the next.
        rank = shuffled.groupby("user_id", sort=False).cumcount().to_numpy()
        extra = shuffled[rank < extra_flow_per_user]
        if extra_flow_max_rows is not None and len(extra) > extra_flow_max_rows:
            keep = np.sort(rng.choice(len(extra), size=extra_flow_max_rows, replace=False))
            extra = extra.iloc[keep]
        elif extra_flow_topup_per_user > extra_flow_per_user:
            more = shuffled[(rank >= extra_flow_per_user) & (rank < extra_flow_topup_per_user)]
            room = None if extra_flow_max_rows is None else extra_flow_max_rows - len(extra)
            if room is not None and len(more) > room:
                more = more.iloc[np.sort(rng.choice(len(more), size=room, replace=False))]
            extra = pd.concat([extra, more])
        parts.append(pd.DataFrame({"row_id": extra["row_id"].to_numpy(), "round": -1}))
    picked = pd.concat(parts, ignore_index=True)
    rows = train.iloc[picked["row_id"].to_numpy()].reset_index(drop=True)
    out = pd.DataFrame(
        {"row_id": picked["row_id"].to_numpy().astype(np.int64), "round": picked["round"].to_numpy().astype(np.int16)}
    )
    for c in FEATURE_COLUMNS:
        out[c] = rows[c].to_numpy()
    out[TARGET] = rows[TARGET].to_numpy()
    out["sample_id"] = np.int32(-1)
    # Deterministic order: by round (validation first), then user, then time.
    out = out.sort_values(["round", "user_id", "ts_listen", "row_id"], kind="stable").reset_index(drop=True)
    out.insert(0, "example_id", np.arange(len(out), dtype=np.int64))
    return out


def build_test_examples(test: pd.DataFrame) -> pd.DataFrame:
    """One example per test row, in the test file's order (round 0, no label)."""
    out = pd.DataFrame({"row_id": np.full(len(test), -1, dtype=np.int64), "round": np.zeros(len(test), dtype=np.int16)})
    for c in FEATURE_COLUMNS:
        out[c] = test[c].to_numpy()
    out["sample_id"] = test[SAMPLE_ID].to_numpy()
    out.insert(0, "example_id", np.arange(len(out), dtype=np.int64))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", choices=["train", "test"], required=True)
    ap.add_argument("--train", default=config.TRAIN_PARQUET)
    ap.add_argument("--test", default=config.TEST_PARQUET)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    settings = load(FeatureSettings)
    if args.split == "train":
        train = pd.read_parquet(args.train)
        ex = build_train_examples(
            train,
            rounds=settings.rounds,
            gap_seconds=settings.gap_seconds,
            extra_flow_per_user=settings.extra_flow_per_user,
            extra_flow_max_rows=settings.extra_flow_max_rows,
            extra_flow_topup_per_user=settings.extra_flow_topup_per_user,
            seed=settings.seed,
        )
        counts = ex["round"].value_counts().sort_index()
        log.info("train examples: %d (%s)", len(ex), ", ".join(f"round {r}: {n}" for r, n in counts.items()))
        write_parquet(ex, args.out or config.EXAMPLES_TRAIN)
    else:
        ex = build_test_examples(pd.read_parquet(args.test))
        log.info("test examples: %d", len(ex))
        write_parquet(ex, args.out or config.EXAMPLES_TEST)


if __name__ == "__main__":
    run_cli(main)
