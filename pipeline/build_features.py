"""Compute one feature group for one split and cache it as parquet.

``python -m pipeline.build_features --group user --split train`` reads the validated
train history and the examples of the split, runs the group's function and writes
``data/processed/features/<split>/<group>.parquet`` (one row per example, in example
order, float32 columns plus ``example_id``).

With ``--now-examples``/``--now-out`` (the test split, in the Makefile) the report's sample
users' candidates at "now" (:mod:`pipeline.pool`) ride along: they are appended to the test
examples, the group runs once over both, and each part is written to its own file.  A
group's output for a row depends on that row and the history only, so the test rows'
features are the same bytes with or without them (tests/test_build_features.py), and the
sample recommendations cost no extra pass over the history.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from core import config
from core.io import write_parquet
from core.settings import FeatureSettings, load
from features import FEATURE_GROUPS, get_group
from features.history import History

log = logging.getLogger("features")

__all__ = ["compute_group", "compute_with_riders", "feature_path"]

_TARGET_COLUMNS_HIDDEN = ("is_listened",)


def feature_path(group: str, split: str) -> Path:
    return config.FEATURES_DIR / split / f"{group}.parquet"


def compute_group(group: str, history: History, examples: pd.DataFrame) -> pd.DataFrame:
    """Run group ``group`` on ``examples`` and check its output shape and names."""
    fn = get_group(group)
    # The label of the row being predicted is never shown to a feature function.
    targets = examples.drop(columns=[c for c in _TARGET_COLUMNS_HIDDEN if c in examples.columns])
    out = fn(history, targets.reset_index(drop=True))
    if len(out) != len(examples):
        raise RuntimeError(f"feature group {group!r} returned {len(out)} rows for {len(examples)} examples")
    bad = [c for c in out.columns if not str(c).startswith(f"{group}_")]
    if bad:
        raise RuntimeError(f"feature group {group!r}: columns must start with '{group}_': {bad}")
    out = out.reset_index(drop=True).astype(np.float32)
    arr = out.to_numpy()
    if np.isinf(arr).any():
        cols = [c for c in out.columns if np.isinf(out[c].to_numpy()).any()]
        raise RuntimeError(f"feature group {group!r} produced infinite values in {cols}")
    out.insert(0, "example_id", examples["example_id"].to_numpy())
    return out


def compute_with_riders(
    group: str, history: History, examples: pd.DataFrame, riders: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`compute_group` over ``examples`` and ``riders`` in one pass; the two outputs apart."""
    cols = list(examples.columns)
    missing = [c for c in cols if c not in riders.columns]
    if missing:
        raise RuntimeError(f"rider examples lack the columns {missing}")
    riders = riders[cols]
    if not riders.dtypes.equals(examples.dtypes):
        raise RuntimeError(f"rider examples' dtypes differ from the examples': {dict(riders.dtypes)}")
    out = compute_group(group, history, pd.concat([examples, riders], ignore_index=True))
    n = len(examples)
    return out.iloc[:n].reset_index(drop=True), out.iloc[n:].reset_index(drop=True)


def main() -> None:
    ap = argparse.ArgumentParser(description="Compute one feature group for one split.")
    ap.add_argument("--group", required=True, choices=list(FEATURE_GROUPS))
    ap.add_argument("--split", required=True, choices=["train", "test"])
    ap.add_argument("--history", default=config.TRAIN_PARQUET)
    ap.add_argument("--examples", default=None)
    ap.add_argument("--out", default=None)
    ap.add_argument(
        "--cache", default=config.HISTORY_CACHE, help="memo store shared by the builds (index orders, fits)"
    )
    ap.add_argument("--now-examples", type=Path, default=None, help="rows computed in the same pass (test split)")
    ap.add_argument("--now-out", type=Path, default=None, help="where their features go")
    args = ap.parse_args()
    if (args.now_examples is None) != (args.now_out is None):
        ap.error("--now-examples and --now-out go together")
    settings = load(FeatureSettings)
    examples_path = args.examples or (config.EXAMPLES_TRAIN if args.split == "train" else config.EXAMPLES_TEST)
    t0 = time.perf_counter()
    history = History(pd.read_parquet(args.history), settings=settings, store=args.cache)
    examples = pd.read_parquet(examples_path)
    if args.now_examples is not None:
        out, now = compute_with_riders(args.group, history, examples, pd.read_parquet(args.now_examples))
        write_parquet(now, args.now_out)
    else:
        out = compute_group(args.group, history, examples)
    write_parquet(out, args.out or feature_path(args.group, args.split))
    log.info(
        "%s/%s: %d features for %d examples in %.1fs",
        args.split,
        args.group,
        out.shape[1] - 1,
        len(out),
        time.perf_counter() - t0,
    )


if __name__ == "__main__":
    from core.errors import run_cli

    run_cli(main)
