"""Tune LightGBM with Optuna on the inner holdout of the training rounds (`make tune`, on request).

The trials fit rounds >= 3 and the extra rows before each user's round-2 example and score
round 2 (:mod:`models.tuning`):
round 1, the validation round the bake-off ranks on, is never seen.  The study lives in
``models/artifacts/optuna.sqlite3`` and is tuned in a copy that replaces it only when
the stage has finished, so an interrupted run leaves it as it was.

Tuning is never implied by `make train`: ten trials cost ~50 s at 0.75M rows and ~110 s at
full size, and on our generators the tuned LightGBM's validation AUC was within noise of the
fixed defaults' (README, Benchmark).  Two ways in:

* ``python -m pipeline.tune --add`` (`make tune`): adds ``OPTUNA_MAX_TRIALS`` trials on the
  current data and features (their *key*); `make train` then fits ``lightgbm_tuned`` and
  the stack's LightGBM with the study's best;
* ``python -m pipeline.tune``: tops the study up to ``OPTUNA_MAX_TRIALS`` finished trials on
  the current key (adds none when it already holds that many).

Writes ``models/artifacts/tuned.json`` (the best LightGBM parameters, the study's summary
and its key) and ``models/artifacts/optuna_trials.csv``; `make train` reads both.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import optuna

from core import config
from core.errors import run_cli
from core.io import read_json, write_csv, write_json
from core.settings import TuneSettings, load
from models.tuning import TuningResult, count_trials, tune_lightgbm
from pipeline.data.dataset import Matrix, Split, load_matrix, load_selection
from pipeline.runstore import data_fingerprint

log = logging.getLogger("tune")

__all__ = ["tuning_key", "tune", "run", "read_tuned"]


def tuning_key(matrix: Matrix, features: list[str]) -> str:
    """Which data and features a trial was scored on: AUCs of other keys are not comparable."""
    return hashlib.sha256((data_fingerprint(matrix) + "|" + ",".join(features)).encode()).hexdigest()[:16]


def tune(
    split: Split, *, storage_path: Path, run_id: str, key: str, settings: TuneSettings, trials: int | None
) -> TuningResult:
    """Run ``trials`` Optuna trials (None: until the clock) on the inner holdout: fit rounds >= 3 and earlier extras, score round 2."""
    r, y = split.r_train, split.y_train
    # Extras after their user's round-2 example are coded LATER_EXTRA (Split.r_train): not fit on.
    fit, hold = (r >= 3) | (r < 0), r == 2
    usable = hold.any() and fit.any() and len(np.unique(y[hold])) == 2 and len(np.unique(y[fit])) == 2
    kw: dict[str, Any] = {"storage_path": storage_path, "run_id": run_id, "key": key, "settings": settings}
    if not usable:
        log.warning("no usable inner holdout (round 2 vs rounds >= 3): Optuna adds no trial this run")
        empty = split.X_train.iloc[:0]
        return tune_lightgbm(empty, y[:0], empty, y[:0], max_trials=0, **kw)
    budget = f"{settings.optuna_seconds:g}s" if settings.optuna_seconds > 0 else "no time limit"
    log.info(
        "optuna: fit on %d rows (rounds >= 3 and the extras before round 2), score round 2 (%d rows); budget %s, at most %s trials",
        int(fit.sum()),
        int(hold.sum()),
        budget,
        trials,
    )
    return tune_lightgbm(split.X_train.loc[fit], y[fit], split.X_train.loc[hold], y[hold], max_trials=trials, **kw)


def run(
    *,
    settings: TuneSettings,
    add: bool = False,
    matrix: Matrix | None = None,
    models_dir: Path | None = None,
    run_id: str | None = None,
) -> dict[str, Any]:
    """Tune (top up, or ``add`` more trials), write tuned.json and optuna_trials.csv; return tuned.json's content."""
    models_dir = Path(models_dir or config.MODELS_DIR)
    # Recorded with each trial, so the trials table tells which session ran it.
    run_id = run_id or "tune-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    matrix = matrix if matrix is not None else load_matrix("train")
    selection = load_selection(models_dir / "selection.json", matrix)
    split = Split.of(matrix, list(selection["selected"]))
    key = tuning_key(matrix, split.features)
    study_db = models_dir / "optuna.sqlite3"
    work_db = models_dir / f".tmp-optuna-{os.getpid()}.sqlite3"
    if study_db.exists():
        shutil.copy2(study_db, work_db)
    try:
        cap = settings.optuna_max_trials
        if add or cap is None:
            trials = cap
        else:
            trials = max(0, cap - count_trials(work_db, settings.optuna_study_name, key))
            if trials == 0:
                log.info("optuna: the study already holds %d finished trials on these features: none added", cap)
        tuning = tune(split, storage_path=work_db, run_id=run_id, key=key, settings=settings, trials=trials)
        if work_db.exists():
            os.replace(work_db, study_db)
    finally:
        work_db.unlink(missing_ok=True)
    out = {"key": key, "lightgbm_params": tuning.lightgbm_params, "optuna": tuning.to_json()}
    write_csv(tuning.trials, models_dir / "optuna_trials.csv")
    write_json(out, models_dir / "tuned.json")
    best = f"{tuning.best_value:.5f}" if tuning.best_value is not None else "-"
    log.info(
        "optuna: %d trial(s) this run, %d in the study; best inner AUC %s (%.0fs)",
        tuning.n_trials_this_run,
        tuning.n_trials_total,
        best,
        tuning.seconds,
    )
    return out


def read_tuned(models_dir: Path) -> dict[str, Any] | None:
    """tuned.json's content, or None when `make tune` never ran."""
    path = Path(models_dir) / "tuned.json"
    return read_json(path) if path.exists() else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--add", action="store_true", help="add OPTUNA_MAX_TRIALS trials (default: top up to that many)")
    args = ap.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    run(settings=load(TuneSettings), add=args.add)


if __name__ == "__main__":
    run_cli(main)
