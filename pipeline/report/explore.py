"""The rows the exploration section draws from: data/interim/train.parquet, re-read (sampled by user above 3M rows).

Kept apart from the drawing (``sections/exploration.py``) so the read can later be cached on its own:
it is the one step of the report that scales with the data rather than with the run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

__all__ = ["EXPLORE_MAX_ROWS", "EXPLORE_COLUMNS", "load_explore"]

#: Rows of train.parquet above which the exploration section samples users (seeded).
EXPLORE_MAX_ROWS = 3_000_000

EXPLORE_COLUMNS = (
    "user_id",
    "media_id",
    "genre_id",
    "ts_listen",
    "context_type",
    "release_date",
    "platform_name",
    "media_duration",
    "listen_type",
    "is_listened",
)


def load_explore(path: Path | None, *, seed: int) -> pd.DataFrame | None:
    """The columns the exploration needs, with ``prior_plays`` of the same user and track added.

    Above EXPLORE_MAX_ROWS a seeded sample of *users* is kept with all their rows, so
    per-user history (repeat plays) stays exact.
    """
    if path is None:
        return None
    available = set(pq.read_schema(path).names)
    cols = [c for c in EXPLORE_COLUMNS if c in available]
    if "is_listened" not in cols:
        return None
    df = pd.read_parquet(path, columns=cols)
    full: dict[str, Any] = {"rows": len(df), "is_listened": float(df["is_listened"].mean()) if len(df) else None}
    if "listen_type" in df.columns:
        full["flow"] = float((df["listen_type"] == 1).mean()) if len(df) else None
    if "user_id" in df.columns:
        users = df["user_id"].to_numpy()
        uniq = np.unique(users)
        full["users"] = len(uniq)
        if len(df) > EXPLORE_MAX_ROWS:
            rng = np.random.default_rng(seed)
            keep_users = uniq[rng.random(len(uniq)) < EXPLORE_MAX_ROWS / len(df)]
            df = df[np.isin(users, keep_users)].reset_index(drop=True)
    if {"user_id", "media_id", "ts_listen"} <= set(df.columns) and len(df):
        u, m, t = df["user_id"].to_numpy(), df["media_id"].to_numpy(), df["ts_listen"].to_numpy()
        order = np.lexsort((t, m, u))
        us, ms = u[order], m[order]
        new = np.ones(len(order), dtype=bool)
        new[1:] = (us[1:] != us[:-1]) | (ms[1:] != ms[:-1])
        idx = np.arange(len(order))
        start = np.maximum.accumulate(np.where(new, idx, 0))
        prior = np.empty(len(order), dtype=np.int32)
        prior[order] = idx - start
        df["prior_plays"] = prior
    df.attrs["full_stats"] = full
    df.attrs["sampled"] = len(df) < full["rows"]
    return df
