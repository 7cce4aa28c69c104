"""Tiny typed frames for feature tests: a base row, overridden column by column.

Each test file keeps its own base row, because its hand-computed expectations depend
on those values; only the way rows become typed frames is shared.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.schema import FEATURE_COLUMNS, TRAIN_COLUMNS


def train_frame(base: dict, rows: list[dict]) -> pd.DataFrame:
    """History rows: ``base`` updated by each row's values, with the train schema's order and dtypes."""
    return pd.DataFrame([{**base, **r} for r in rows], columns=list(TRAIN_COLUMNS)).astype(TRAIN_COLUMNS)


def targets_frame(base: dict, rows: list[dict]) -> pd.DataFrame:
    """Example rows shaped like ``examples_*.parquet`` (ids, round 1, no label)."""
    df = pd.DataFrame([{**base, **r} for r in rows], columns=list(FEATURE_COLUMNS)).astype(FEATURE_COLUMNS)
    df.insert(0, "example_id", np.arange(len(df)))
    df.insert(1, "row_id", -1)
    df.insert(2, "round", 1)
    df["sample_id"] = -1
    return df
