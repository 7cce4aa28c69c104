"""Optuna tuning of LightGBM, scored on an inner holdout of the training rounds.

Design
------
* **Honest objective.**  Trials fit on rounds >= 3 plus the extra rows that come before
  their user's round-2 example, and are scored (ROC AUC) on round 2.  Round 1, the validation round the bake-off ranks models on,
  is never seen, so ``lightgbm_tuned``'s validation AUC is as honest as the others'.
* **Early stopping and pruning.**  Each trial boosts up to ``OPTUNA_MAX_ROUNDS`` rounds
  with early stopping on the holdout AUC; every ``OPTUNA_REPORT_EVERY`` rounds the AUC
  is reported to Optuna and a ``MedianPruner`` stops trials that trail the median of
  earlier trials at the same round.  The best round count becomes ``n_estimators``.
* **Persistent, continuable study.**  The study lives in SQLite
  (``models/artifacts/optuna.sqlite3``, fixed name ``OPTUNA_STUDY_NAME``); each
  ``make tune`` loads it and adds trials.  The TPE sampler is seeded with
  ``seed + number of trials already in the study``, so a continued study is
  reproducible yet does not replay the first run's points.  Each trial records the
  ``run_id`` that ran it and a ``key`` (hash of the data fingerprint and the feature
  list): the best parameters are taken among trials with the current key when there
  are any, because AUCs measured on other data are not comparable.
* **Budget and reproducibility.**  ``OPTUNA_SECONDS`` bounds the wall-clock time of one
  run and ``OPTUNA_MAX_TRIALS`` its number of trials.  A time budget makes the trial
  count (hence the result) machine-dependent; ``OPTUNA_SECONDS=0`` means "no time
  limit", and then the study stops after exactly ``OPTUNA_MAX_TRIALS`` trials: every
  trial is deterministic (seeded TPE, deterministic LightGBM), so the run is
  byte-reproducible.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import optuna
import pandas as pd
from optuna.trial import TrialState

from core.errors import PipelineError
from core.settings import TuneSettings

log = logging.getLogger("tuning")

__all__ = [
    "count_trials",
    "TuningResult",
    "search_space",
    "tune_lightgbm",
    "best_lightgbm_params",
    "trials_frame",
    "storage_url",
]


@dataclass(frozen=True)
class TuningResult:
    """What one tuning run leaves behind (metrics.json's "optuna" entry, plus the trials table)."""

    study_name: str
    n_trials_total: int
    n_trials_this_run: int
    best_value: float | None
    best_params: dict[str, Any]
    best_trial: int | None
    lightgbm_params: dict[str, Any] | None
    seconds: float
    trials: pd.DataFrame = field(repr=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "study_name": self.study_name,
            "n_trials_total": self.n_trials_total,
            "n_trials_this_run": self.n_trials_this_run,
            "best_value": self.best_value,
            "best_params": self.best_params,
            "best_trial": self.best_trial,
            "lightgbm_params": self.lightgbm_params,
            "seconds": round(self.seconds, 3),
            "objective": "ROC AUC on round 2 of a LightGBM fit on rounds >= 3 and the extra rows before each user's round 2",
        }


def storage_url(path: Path) -> str:
    return f"sqlite:///{Path(path).resolve()}"


def search_space(trial: optuna.Trial) -> dict[str, Any]:
    """LightGBM parameters (scikit-learn names, so they feed ``LGBMClassifier`` unchanged)."""
    return {
        "learning_rate": trial.suggest_float("learning_rate", 0.02, 0.3, log=True),
        "num_leaves": trial.suggest_int("num_leaves", 8, 256, log=True),
        "min_child_samples": trial.suggest_int("min_child_samples", 10, 500, log=True),
        "colsample_bytree": trial.suggest_float("colsample_bytree", 0.3, 1.0),
        "subsample": trial.suggest_float("subsample", 0.5, 1.0),
        "reg_lambda": trial.suggest_float("reg_lambda", 1e-3, 50.0, log=True),
        "reg_alpha": trial.suggest_float("reg_alpha", 1e-3, 10.0, log=True),
    }


def _booster_params(suggested: dict[str, Any], seed: int, n_jobs: int) -> dict[str, Any]:
    return {
        "objective": "binary",
        "metric": "auc",
        "subsample_freq": 1,
        "seed": seed,
        "deterministic": True,
        "force_col_wise": True,
        "num_threads": n_jobs,
        "verbosity": -1,
        **suggested,
    }


def _report_callback(trial: optuna.Trial, every: int, deadline: float | None) -> Any:
    """LightGBM callback: report the holdout AUC to Optuna and let the pruner stop the trial.

    When the run's time budget runs out mid-trial, boosting stops at the best round so
    far and the trial still completes (it is flagged ``stopped_by_time_budget``).
    """
    best = {"auc": -np.inf, "iteration": 0, "results": None}

    def _callback(env: lgb.callback.CallbackEnv) -> None:
        auc = next(v for name, metric, v, _ in env.evaluation_result_list if name == "holdout" and metric == "auc")
        if auc > best["auc"]:
            best.update(auc=auc, iteration=env.iteration, results=env.evaluation_result_list)
        step = env.iteration + 1
        if step % every:
            return
        trial.report(float(auc), step=step)
        if trial.should_prune():
            raise optuna.TrialPruned(f"pruned at round {step} (holdout AUC {auc:.5f})")
        if deadline is not None and time.monotonic() > deadline:
            trial.set_user_attr("stopped_by_time_budget", True)
            raise lgb.callback.EarlyStopException(best["iteration"], best["results"])

    _callback.order = 20  # before LightGBM's early stopping (30)
    return _callback


def _fail_stale_trials(storage: optuna.storages.RDBStorage, study_name: str) -> int:
    """Mark RUNNING trials left by a killed run as FAIL (runs never overlap), returning how many."""
    try:
        study_id = storage.get_study_id_from_name(study_name)
    except KeyError:
        return 0
    stale = [t for t in storage.get_all_trials(study_id, deepcopy=False) if t.state == TrialState.RUNNING]
    for t in stale:
        storage.set_trial_state_values(
            storage.get_trial_id_from_study_id_trial_number(study_id, t.number), TrialState.FAIL
        )
    return len(stale)


def _n_existing(storage: optuna.storages.RDBStorage, study_name: str) -> int:
    try:
        return storage.get_n_trials(storage.get_study_id_from_name(study_name))
    except KeyError:
        return 0


def count_trials(storage_path: Path, study_name: str, key: str) -> int:
    """Finished trials of the study scored on ``key`` (its data and features); 0 when there is no study."""
    if not Path(storage_path).exists():
        return 0
    storage = optuna.storages.RDBStorage(storage_url(storage_path))
    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        return 0
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return sum(1 for t in done if t.user_attrs.get("key") == key)


def best_lightgbm_params(study: optuna.Study, key: str | None = None) -> tuple[optuna.trial.FrozenTrial | None, bool]:
    """Best COMPLETE trial, preferring trials with ``key`` (same data and features); and whether the key matched."""
    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.value is not None]
    same = [t for t in done if key is not None and t.user_attrs.get("key") == key]
    pool = same or done
    if not pool:
        return None, False
    return max(pool, key=lambda t: (t.value, -t.number)), bool(same)


def trials_frame(study: optuna.Study) -> pd.DataFrame:
    """Every trial of the study: number, value, state, datetime_start, duration_seconds, run_id, params_<name>."""
    names = [
        "learning_rate",
        "num_leaves",
        "min_child_samples",
        "colsample_bytree",
        "subsample",
        "reg_lambda",
        "reg_alpha",
    ]
    rows = []
    for t in study.get_trials(deepcopy=False):
        row = {
            "number": t.number,
            "value": t.value,
            "state": t.state.name,
            "datetime_start": t.datetime_start.isoformat(timespec="seconds") if t.datetime_start else None,
            "duration_seconds": t.duration.total_seconds() if t.duration else None,
            "run_id": t.user_attrs.get("run_id"),
            "best_iteration": t.user_attrs.get("best_iteration"),
            "last_reported_round": max(t.intermediate_values) if t.intermediate_values else None,
        }
        row.update({f"params_{n}": t.params.get(n) for n in names})
        rows.append(row)
    cols = [
        "number",
        "value",
        "state",
        "datetime_start",
        "duration_seconds",
        "run_id",
        "best_iteration",
        "last_reported_round",
        *[f"params_{n}" for n in names],
    ]
    frame = pd.DataFrame(rows, columns=cols)
    return frame.astype({"best_iteration": "Int64", "last_reported_round": "Int64"})


def tune_lightgbm(
    X_fit: pd.DataFrame,
    y_fit: np.ndarray,
    X_hold: pd.DataFrame,
    y_hold: np.ndarray,
    *,
    storage_path: Path,
    run_id: str,
    key: str,
    settings: TuneSettings,
    max_trials: int | None = -1,
) -> TuningResult:
    """Continue (or start) the persisted study on the inner holdout and return its best LightGBM parameters.

    ``max_trials`` overrides ``settings.optuna_max_trials`` (0: only read the study's best).
    """
    seed = settings.seed
    study_name = settings.optuna_study_name
    seconds = settings.optuna_seconds
    max_trials = settings.optuna_max_trials if max_trials == -1 else max_trials
    if seconds <= 0 and max_trials is None:
        raise PipelineError("OPTUNA_SECONDS=0 (no time limit) needs a finite OPTUNA_MAX_TRIALS")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    Path(storage_path).parent.mkdir(parents=True, exist_ok=True)
    storage = optuna.storages.RDBStorage(storage_url(storage_path))
    stale = _fail_stale_trials(storage, study_name)
    if stale:
        log.warning("marked %d unfinished trial(s) of an interrupted run as FAIL", stale)
    n_before = _n_existing(storage, study_name)
    sampler = optuna.samplers.TPESampler(seed=seed + n_before, n_startup_trials=5)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=100)
    study = optuna.create_study(
        storage=storage,
        study_name=study_name,
        direction="maximize",
        sampler=sampler,
        pruner=pruner,
        load_if_exists=True,
    )

    t0 = time.monotonic()
    deadline = t0 + seconds if seconds > 0 else None
    n_trials = 0 if len(y_fit) == 0 else max_trials  # no inner holdout: only read the study's best

    def objective(trial: optuna.Trial) -> float:
        trial.set_user_attr("run_id", run_id)
        trial.set_user_attr("key", key)
        booster = lgb.train(
            _booster_params(search_space(trial), seed, settings.n_jobs),
            fit_set,
            num_boost_round=settings.optuna_max_rounds,
            valid_sets=[hold_set],
            valid_names=["holdout"],
            callbacks=[
                _report_callback(trial, settings.optuna_report_every, deadline),
                lgb.early_stopping(settings.optuna_early_stopping, first_metric_only=True, verbose=False),
            ],
        )
        trial.set_user_attr("best_iteration", int(booster.best_iteration or booster.current_iteration()))
        return float(booster.best_score["holdout"]["auc"])

    def _log_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        done = [t.value for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
        best = f"{max(done):.5f}" if done else "-"
        state = "" if trial.state == TrialState.COMPLETE else f" {trial.state.name.lower()}"
        value = f"{trial.value:.5f}" if trial.value is not None else "-"
        seconds = trial.duration.total_seconds() if trial.duration else 0.0
        log.info("  trial %d: %s%s (study best %s) %.1fs", trial.number, value, state, best, seconds)

    if n_trials is None or n_trials > 0:
        # Binned once for all trials; feature_pre_filter=False because min_child_samples varies.
        ds_params = {"verbosity": -1, "feature_pre_filter": False}
        fit_set = lgb.Dataset(X_fit, label=y_fit, params=ds_params, free_raw_data=False).construct()
        hold_set = fit_set.create_valid(X_hold, label=y_hold, params=dict(ds_params)).construct()
        study.optimize(
            objective,
            n_trials=n_trials,
            timeout=seconds if seconds > 0 else None,
            callbacks=[_log_trial],
            gc_after_trial=False,
        )
    elapsed = time.monotonic() - t0
    best, matched = best_lightgbm_params(study, key)
    if best is not None and not matched:
        log.warning("no finished trial on the current data/features yet: using the study's best from other data")
    lgb_params = None
    if best is not None:
        lgb_params = {
            **best.params,
            "subsample_freq": 1,
            "n_estimators": int(best.user_attrs.get("best_iteration", 100)),
        }
    n_total = len(study.get_trials(deepcopy=False))
    return TuningResult(
        study_name=study_name,
        n_trials_total=n_total,
        n_trials_this_run=n_total - n_before,
        best_value=float(best.value) if best is not None else None,
        best_params=dict(best.params) if best is not None else {},
        best_trial=best.number if best is not None else None,
        lightgbm_params=lgb_params,
        seconds=elapsed,
        trials=trials_frame(study),
    )
