"""Headline statistics of a generated set, for the generator's log and the docs."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.stats import rankdata

from core.schema import TARGET
from pipeline.data.demo.arrays import _day_to_yyyymmdd
from pipeline.data.demo.constants import _DAY, _JAN1980
from pipeline.data.demo.tables import DemoData


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    """ROC AUC of scores ``p`` for labels ``y`` (rank formula, ties averaged); nan with a single class."""
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
