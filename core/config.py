"""Paths: the one place stage code and the Makefile get file locations from.

Settings (seeds, budgets) are not here: they are typed, validated and passed as arguments
(:mod:`core.settings`).  ``python -m core.config --make`` prints the paths as Make
variables, so the Makefile does not spell them a second time.  Standard library only.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

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
#: The report's sample users' candidates at "now" (pipeline.pool); featured in the test pass.
EXAMPLES_NOW = PROCESSED / "examples_now.parquet"
FEATURES_DIR = PROCESSED / "features"
#: Values computed once per train history and shared by processes (index orders, snapshot fits).
HISTORY_CACHE = PROCESSED / "cache"
#: The recommender's state at now (pipeline/recommend_state.py), written by make features.
RECOMMEND_STATE = PROCESSED / "recommend"
DEMO_ANSWERS = DEMO / "answers.csv"
DEMO_MARKER = RAW / ".demo"  # written by the demo generator, so every stage can say "demo data"

#: Settings stamps (one file per settings kind, named by the hash of its values).
STAMPS = PROCESSED / "settings"

MODELS_DIR = ROOT / "models" / "artifacts"
SELECTION = MODELS_DIR / "selection.json"
TUNED = MODELS_DIR / "tuned.json"
WINNER = MODELS_DIR / "winner.json"  # written last by a training run: "training finished"
SUBMISSIONS = ROOT / "submissions"
LATEST = SUBMISSIONS / "latest.csv"
REPORTS = ROOT / "reports"
ABLATION = REPORTS / "ablation.json"
REPORT = REPORTS / "model_ranking.html"
RECOMMENDATIONS = REPORTS / "recommendations.json"  # three sample users, for the report
RECOMMEND_EVAL = REPORTS / "recommend_eval.json"  # hit rate and NDCG on the validation round
RUNS = ROOT / "runs"

_FINGERPRINT_BYTES = 1 << 20


def file_fingerprint(path: Path) -> dict[str, Any]:
    """Size and a hash of the first and last MiB: cheap, and enough to notice a replaced file."""
    size = path.stat().st_size
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        h.update(fh.read(_FINGERPRINT_BYTES))
        fh.seek(max(0, size - _FINGERPRINT_BYTES))
        h.update(fh.read(_FINGERPRINT_BYTES))
    return {"bytes": size, "sha256_head_tail": h.hexdigest()}


def is_demo_data(raw_dir: Path | None = None) -> bool:
    """True when ``raw_dir`` (data/raw) holds the generated demo set, untouched.

    The demo generator leaves a marker with fingerprints of the files it wrote; a user who
    copies their own train.csv over the demo one leaves the marker behind, and the
    fingerprints tell the two apart.  A marker without fingerprints is a generator run that
    was interrupted while writing: its files are demo files.
    """
    raw_dir = Path(raw_dir) if raw_dir is not None else RAW
    marker = raw_dir / DEMO_MARKER.name
    try:
        files = json.loads(marker.read_text(encoding="utf-8")).get("files", {})
    except (OSError, ValueError, AttributeError):
        return False
    for name in ("train.csv", "test.csv"):
        path = raw_dir / name
        if path.exists() and name in files and file_fingerprint(path) != files[name]:
            return False
    return True
