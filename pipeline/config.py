"""Paths and the global seed: the one place stage code gets file locations from.

Feature settings live in ``features/params.py`` and model settings in
``models/params.py`` so that Make's timestamps can tell them apart: changing a
model budget must not rebuild the feature files (issue 5).
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

DATA = Path(os.environ.get("DSG_DATA", ROOT / "data"))
RAW = DATA / "raw"
INTERIM = DATA / "interim"
PROCESSED = DATA / "processed"
DEMO = DATA / "demo"

RAW_TRAIN = RAW / "train.csv"
RAW_TEST = RAW / "test.csv"
TRAIN_PARQUET = INTERIM / "train.parquet"
TEST_PARQUET = INTERIM / "test.parquet"
DATA_SUMMARY = INTERIM / "data_summary.json"
EXAMPLES_TRAIN = PROCESSED / "examples_train.parquet"
EXAMPLES_TEST = PROCESSED / "examples_test.parquet"
FEATURES_DIR = PROCESSED / "features"
DEMO_ANSWERS = DEMO / "answers.csv"
DEMO_MARKER = RAW / ".demo"  # written by the demo generator, so every stage can say "demo data"

MODELS_DIR = ROOT / "models" / "artifacts"
SUBMISSIONS = ROOT / "submissions"
REPORTS = ROOT / "reports"
RUNS = ROOT / "runs"

SEED = int(os.environ.get("SEED", "42"))


def is_demo_data() -> bool:
    """True when data/raw holds the generated demo set rather than the user's own files."""
    return DEMO_MARKER.exists()
