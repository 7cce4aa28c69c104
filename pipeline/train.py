"""Fit every model of the registry, rank them on the validation round, keep the winner (`make train`).

1. Load ``selection.json`` (from `make select`) and the train matrix.
2. Tune LightGBM with Optuna on an inner holdout of the training rounds
   (:mod:`models.tuning`; round 1 is never seen).
3. Fit each model of :data:`models.registry.MODELS` on the training rounds (rounds 2..K
   and extra rows) with the selected features; score it on the validation round
   (round 1): ROC AUC with a seeded bootstrap 95% interval, log loss, Brier score,
   accuracy at 0.5, fit and predict seconds, rows used.  Rank by AUC.
4. Estimate the winner's ``validation_auc`` over rolling-origin folds: round 1, then
   round 2 refit on the examples before it, ... (:func:`rolling_validation`), so that
   small data sets get a steadier estimate than one round of ~1,700 users.
5. Refit the winner with all features on the training rounds (the selection effect),
   then refit it on ALL train examples (training + validation rounds) and save it.

Writes ``runs/<run_id>/`` (params.json, metrics.json, val_predictions.parquet,
optuna_trials.csv, winner_importance.csv, timings.json), ``models/artifacts/<winner>.joblib``,
``reports/metrics.json`` and, last, ``models/artifacts/winner.json``.

The winner is the model with the best round-1 AUC, so that AUC is slightly optimistic
as an estimate of the winner's test AUC (a selection effect over ~11 models); the
rolling folds beyond round 1 did not choose it, and the bootstrap intervals show how
close the ranking is.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import platform
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, brier_score_loss, log_loss, roc_auc_score

from core import config
from core.errors import PipelineError, run_cli
from core.io import dump_joblib, read_json, write_csv, write_json, write_parquet
from models import params
from models.registry import MODELS, NOTES, StackedEnsemble, fit_model, predict_scores, row_budget, rows_used
from models.tuning import TuningResult, tune_lightgbm
from pipeline.data.dataset import Matrix, load_matrix

log = logging.getLogger("train")

__all__ = [
    "bootstrap_auc",
    "score_predictions",
    "data_fingerprint",
    "library_versions",
    "new_run_id",
    "load_selection",
    "tuned_params_from_run",
    "Split",
    "tune",
    "bakeoff",
    "importance_table",
    "rolling_validation",
    "run",
]

OPTIMISM_NOTE = (
    "The winner is chosen on the validation round, so its validation AUC is slightly optimistic as an "
    "estimate of its test AUC; the bootstrap intervals show which differences are within noise."
)


ROLLING_NOTE = (
    "validation_auc is the winner's row-weighted AUC over rolling-origin folds (round 1, then earlier "
    "rounds refit on what came before them, up to VALIDATION_MIN_ROWS rows); the ranking is on round 1."
)


# --- Scoring --------------------------------------------------------------------------


def _auc_from_counts(counts: np.ndarray, y_sorted: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """ROC AUC of each row of ``counts`` (rows = resamples, columns = examples sorted by score).

    ``starts`` are the first positions of each run of tied scores; ties count one half,
    exactly as ``roc_auc_score`` with ``sample_weight=counts``.
    """
    counts = counts.astype(np.float64, copy=False)
    pos = np.add.reduceat(counts * y_sorted, starts, axis=1)
    neg = np.add.reduceat(counts * (1.0 - y_sorted), starts, axis=1)
    neg_below = np.cumsum(neg, axis=1) - neg
    num = (pos * (neg_below + 0.5 * neg)).sum(axis=1)
    den = pos.sum(axis=1) * neg.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def bootstrap_auc(y: np.ndarray, p: np.ndarray, *, n_boot: int, seed: int, chunk: int = 50) -> np.ndarray:
    """AUCs of ``n_boot`` seeded bootstrap resamples of (y, p), computed in vectorised chunks.

    A resample is a vector of counts over the examples; the AUC of each resample comes
    from one pass over the examples sorted by score (no per-resample sort).
    """
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    n = len(y)
    order = np.argsort(p, kind="stable")
    p_sorted, y_sorted = p[order], y[order]
    starts = np.flatnonzero(np.r_[True, p_sorted[1:] != p_sorted[:-1]])
    rng = np.random.default_rng(seed)
    out = np.empty(n_boot, dtype=np.float64)
    for b0 in range(0, n_boot, chunk):
        m = min(chunk, n_boot - b0)
        # Drawing positions of the sorted arrays is the same as drawing rows: all are equally likely.
        draws = rng.integers(0, n, size=(m, n)) + (np.arange(m, dtype=np.int64) * n)[:, None]
        counts = np.bincount(draws.ravel(), minlength=m * n).reshape(m, n)
        out[b0 : b0 + m] = _auc_from_counts(counts, y_sorted, starts)
    return out


def score_predictions(y: np.ndarray, p: np.ndarray, *, n_boot: int, seed: int) -> dict[str, float]:
    """AUC (with bootstrap 95% interval), log loss, Brier score and accuracy at 0.5 of scores ``p``."""
    boot = bootstrap_auc(y, p, n_boot=n_boot, seed=seed)
    lo, hi = np.nanpercentile(boot, [2.5, 97.5])
    return {
        "auc": float(roc_auc_score(y, p)),
        "auc_lo": float(lo),
        "auc_hi": float(hi),
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "brier": float(brier_score_loss(y, p)),
        "accuracy": float(accuracy_score(y, (p >= 0.5).astype(np.int8))),
    }


# --- Run bookkeeping ----------------------------------------------------------------


def data_fingerprint(matrix: Matrix) -> str:
    """sha256 of the examples' ids, rounds and labels and of every feature column (names and float32 bytes)."""
    h = hashlib.sha256()
    ex = matrix.examples
    for col in ("example_id", "round", "user_id", "is_listened", "sample_id"):
        if col in ex.columns:
            h.update(col.encode())
            h.update(np.ascontiguousarray(ex[col].to_numpy()).tobytes())
    for col in matrix.X.columns:
        h.update(str(col).encode())
        h.update(np.ascontiguousarray(matrix.X[col].to_numpy(dtype=np.float32)).tobytes())
    return h.hexdigest()


def library_versions() -> dict[str, str]:
    import joblib
    import lightgbm
    import optuna
    import pyarrow
    import scipy
    import sklearn

    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "scipy": scipy.__version__,
        "sklearn": sklearn.__version__,
        "lightgbm": lightgbm.__version__,
        "optuna": optuna.__version__,
        "pyarrow": pyarrow.__version__,
        "joblib": joblib.__version__,
    }


def new_run_id(runs_dir: Path, now: datetime | None = None) -> str:
    """Claim ``runs/<UTC YYYYmmddTHHMMSSZ>`` (``-2``, ``-3``... if taken) by creating it; never reuse one."""
    base = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    runs_dir.mkdir(parents=True, exist_ok=True)
    for k in range(1, 10_000):
        run_id = base if k == 1 else f"{base}-{k}"
        try:
            (runs_dir / run_id).mkdir()
        except FileExistsError:
            continue
        return run_id
    raise PipelineError(f"cannot create a new run folder under {runs_dir}")


def load_selection(path: Path, matrix: Matrix) -> dict[str, Any]:
    """Read selection.json and check it matches the matrix's features."""
    if not path.exists():
        raise PipelineError(f"{path} is missing: run `make select` first")
    selection = read_json(path)
    selected = selection.get("selected") or []
    if not selected:
        raise PipelineError(f"{path} selects no feature: run `make select` again")
    missing = [f for f in selected if f not in matrix.X.columns]
    if missing:
        raise PipelineError(
            f"{path} lists {len(missing)} feature(s) the matrix no longer has ({', '.join(missing[:5])}...): "
            "the features changed since the selection; run `make select` again"
        )
    known = set(selected) | set(selection.get("dropped") or [])
    new = [f for f in matrix.X.columns if f not in known]
    if new:
        log.warning(
            "%d feature(s) are newer than %s and are not used (%s): run `make select` to consider them",
            len(new),
            path.name,
            ", ".join(new[:5]),
        )
    return selection


def tuned_params_from_run(runs_dir: Path, run_id: str | None) -> dict[str, Any] | None:
    """The LightGBM parameters a training run's Optuna study picked (``None`` if none)."""
    if not run_id:
        return None
    path = runs_dir / run_id / "metrics.json"
    if not path.exists():
        return None
    return (read_json(path).get("optuna") or {}).get("lightgbm_params")


def _check_labels(y: np.ndarray, what: str) -> None:
    if len(y) == 0:
        raise PipelineError(f"the {what} has no examples: check the examples (ROUNDS in features/params.py)")
    if len(np.unique(y)) < 2:
        raise PipelineError(f"the {what} holds a single class ({int(y[0])}): ROC AUC is undefined")


@dataclass(frozen=True)
class Split:
    """The training rounds and the validation round, restricted to the selected features."""

    X_train: pd.DataFrame
    y_train: np.ndarray
    r_train: np.ndarray
    X_valid: pd.DataFrame
    y_valid: np.ndarray
    features: list[str]

    @classmethod
    def of(cls, matrix: Matrix, features: list[str]) -> Split:
        train, valid = matrix.training_mask(), matrix.validation_mask()
        y = matrix.y
        _check_labels(y[train], "training rounds")
        _check_labels(y[valid], "validation round (round 1)")
        return cls(
            X_train=matrix.X.loc[train, features],
            y_train=y[train],
            r_train=matrix.rounds[train],
            X_valid=matrix.X.loc[valid, features],
            y_valid=y[valid],
            features=features,
        )


def tune(split: Split, *, storage_path: Path, run_id: str, key: str, seed: int) -> TuningResult:
    """Run Optuna on the inner holdout of the training rounds: fit rounds >= 3 and extras, score round 2."""
    r, y = split.r_train, split.y_train
    fit, hold = (r >= 3) | (r < 1), r == 2
    usable = hold.any() and fit.any() and len(np.unique(y[hold])) == 2 and len(np.unique(y[fit])) == 2
    kw: dict[str, Any] = {"storage_path": storage_path, "run_id": run_id, "key": key, "seed": seed}
    if not usable:
        log.warning("no usable inner holdout (round 2 vs rounds >= 3): Optuna adds no trial this run")
        empty = split.X_train.iloc[:0]
        return tune_lightgbm(empty, y[:0], empty, y[:0], max_trials=0, **kw)
    budget = f"{params.OPTUNA_SECONDS:g}s" if params.OPTUNA_SECONDS > 0 else "no time limit"
    log.info(
        "optuna: fit on %d rows (rounds >= 3 and extras), score round 2 (%d rows); budget %s, at most %s trials",
        int(fit.sum()),
        int(hold.sum()),
        budget,
        params.OPTUNA_MAX_TRIALS,
    )
    return tune_lightgbm(split.X_train.loc[fit], y[fit], split.X_train.loc[hold], y[hold], **kw)


def bakeoff(
    split: Split, names: list[str], *, seed: int, tuned: dict[str, Any] | None, t_start: float
) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, np.ndarray]]:
    """Fit each model on the training rounds and score it on the validation round.

    Returns the ranking (best AUC first), the fitted pipelines and the validation scores.
    """
    ranking, fitted, preds = [], {}, {}
    n_train = len(split.y_train)
    for i, name in enumerate(names, 1):
        log.info("[%d/%d] %s: fitting on %d rows ...", i, len(names), name, n_train)
        t = time.perf_counter()
        # The ensemble reuses members the bake-off already fit on these rows (bit-identical to refitting).
        model = fit_model(
            MODELS[name](seed, tuned=tuned), split.X_train, split.y_train, rounds=split.r_train, fitted=fitted
        )
        fit_s = time.perf_counter() - t
        t = time.perf_counter()
        p = predict_scores(model, split.X_valid)
        pred_s = time.perf_counter() - t
        if not np.isfinite(p).all() or p.min() < 0 or p.max() > 1:
            raise RuntimeError(f"model {name} produced scores outside [0, 1]")
        scores = score_predictions(split.y_valid, p, n_boot=params.BOOTSTRAP_ROUNDS, seed=seed)
        used = rows_used(model, n_train)
        note = NOTES[name]
        if used < n_train:
            note += f"; fit on a stratified subsample of {used} of {n_train} rows"
        if name in ("lightgbm_tuned", "ensemble") and tuned is None:
            note += "; no Optuna trial finished, so LightGBM's fixed defaults stand in for the tuned parameters"
        if isinstance(model[-1], StackedEnsemble):
            note += "; weights " + ", ".join(f"{m} {w:+.3f}" for m, w in model[-1].weights_.items())
        ranking.append(
            {
                "model": name,
                **scores,
                "fit_seconds": round(fit_s, 3),
                "predict_seconds": round(pred_s, 3),
                "rows_used": used,
                "row_budget": row_budget(name),
                "n_features": len(split.features),
                "note": note,
            }
        )
        fitted[name], preds[name] = model, p
        log.info(
            "[%d/%d] %s: AUC %.4f [%.4f, %.4f]  fit %.1fs  predict %.1fs  (elapsed %.0fs)",
            i,
            len(names),
            name,
            scores["auc"],
            scores["auc_lo"],
            scores["auc_hi"],
            fit_s,
            pred_s,
            time.perf_counter() - t_start,
        )
    ranking.sort(key=lambda r: (-r["auc"], r["model"]))
    return ranking, fitted, preds


def rolling_validation(
    matrix: Matrix,
    features: list[str],
    winner: str,
    round1_auc: float,
    *,
    seed: int,
    tuned: dict[str, Any] | None,
) -> dict[str, Any]:
    """The winner's AUC over rolling-origin folds: round 1 (the bake-off's), then rounds 2, 3, ...

    Each further fold refits the winner on the examples before its round
    (:meth:`Matrix.fold_masks`) and scores that round.  Folds are added until they hold
    ``VALIDATION_MIN_ROWS`` rows or ``VALIDATION_MAX_ROUNDS`` rounds; a fold without
    both classes on either side ends the list.  ``auc`` is the row-weighted mean of the
    folds' AUCs: it estimates the test AUC with a smaller standard error than round 1
    alone on small data, and is less optimistic (round 1 also chose the winner).
    """
    n1 = int(matrix.validation_mask().sum())
    folds = [{"round": 1, "rows": n1, "auc": float(round1_auc), "train_rows": int(matrix.training_mask().sum())}]
    y, r = matrix.y, matrix.rounds
    k = 2
    while sum(f["rows"] for f in folds) < params.VALIDATION_MIN_ROWS and k <= params.VALIDATION_MAX_ROUNDS:
        train, valid = matrix.fold_masks(k)
        if len(np.unique(y[train])) < 2 or len(np.unique(y[valid])) < 2:
            break
        t = time.perf_counter()
        model = fit_model(MODELS[winner](seed, tuned=tuned), matrix.X.loc[train, features], y[train], rounds=r[train])
        auc = float(roc_auc_score(y[valid], predict_scores(model, matrix.X.loc[valid, features])))
        folds.append({"round": k, "rows": int(valid.sum()), "auc": auc, "train_rows": int(train.sum())})
        log.info(
            "rolling validation: %s on round %d (%d rows, fit on %d earlier rows): AUC %.4f (%.0fs)",
            winner,
            k,
            int(valid.sum()),
            int(train.sum()),
            auc,
            time.perf_counter() - t,
        )
        k += 1
    rows = np.array([f["rows"] for f in folds], dtype=np.float64)
    aucs = np.array([f["auc"] for f in folds])
    return {"model": winner, "auc": float((rows * aucs).sum() / rows.sum()), "folds": folds}


def importance_table(
    final: Any, winner: str, fitted: dict[str, Any], split: Split, groups: dict[str, str], *, seed: int
) -> tuple[pd.DataFrame, str]:
    """Gain importances: the winner's own when it is a LightGBM, else a bake-off LightGBM's."""
    model, source = None, ""
    if hasattr(final[-1], "booster_"):
        model, source = final[-1], f"{winner} (refit on all train examples)"
    else:
        for name in ("lightgbm", "lightgbm_tuned"):
            if name in fitted and hasattr(fitted[name][-1], "booster_"):
                model, source = fitted[name][-1], f"{name} (bake-off fit; the winner has no gain importances)"
                break
    if model is None:
        model = fit_model(MODELS["lightgbm"](seed), split.X_train, split.y_train)[-1]
        source = "lightgbm (fit for the importances; the winner has no gain importances)"
    gain = model.booster_.feature_importance(importance_type="gain")
    f = split.features
    table = pd.DataFrame({"feature": f, "group": [groups.get(c, "") for c in f], "gain": gain.astype(np.float64)})
    return table.sort_values(["gain", "feature"], ascending=[False, True], kind="stable").reset_index(drop=True), source


# --- The stage ----------------------------------------------------------------------


def run(
    *,
    matrix: Matrix | None = None,
    seed: int | None = None,
    names: list[str] | None = None,
    models_dir: Path | None = None,
    runs_dir: Path | None = None,
    reports_dir: Path | None = None,
    write_report: bool = True,
) -> dict[str, Any]:
    """Train, rank, refit the winner, write the run's artifacts and the report; return metrics.json's content."""
    seed = config.SEED if seed is None else seed
    models_dir = Path(models_dir or config.MODELS_DIR)
    runs_dir = Path(runs_dir or config.RUNS)
    reports_dir = Path(reports_dir or config.REPORTS)
    names = list(MODELS) if names is None else list(names)
    unknown = [n for n in names if n not in MODELS]
    if unknown or not names:
        raise PipelineError(f"unknown model(s) {', '.join(unknown) or '(none given)'}; valid: {', '.join(MODELS)}")
    demo = config.is_demo_data()
    if demo:
        log.warning("DEMO DATA: data/raw holds the generated demo set, not the real DSG17 files")

    timings: dict[str, float] = {}
    t_start = time.perf_counter()
    matrix = matrix if matrix is not None else load_matrix("train")
    selection = load_selection(models_dir / "selection.json", matrix)
    split = Split.of(matrix, list(selection["selected"]))
    fingerprint = data_fingerprint(matrix)
    timings["load"] = time.perf_counter() - t_start
    log.info(
        "%d training examples, %d validation examples, %d of %d features; data %s",
        len(split.y_train),
        len(split.y_valid),
        len(split.features),
        matrix.X.shape[1],
        fingerprint[:12],
    )

    run_id = new_run_id(runs_dir)
    run_dir = runs_dir / run_id
    # Everything of this run is written aside and committed at the end: the run folder
    # is renamed into place, and the Optuna study is tuned in a copy of its SQLite file
    # that replaces the original only then.  A run killed at any moment before that
    # leaves the study and runs/ as they were, so the next run repeats it exactly.
    tmp_dir = runs_dir / f".tmp-{run_id}"
    study_db = models_dir / "optuna.sqlite3"
    work_db = models_dir / f".tmp-optuna-{run_id}.sqlite3"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    if study_db.exists():
        shutil.copy2(study_db, work_db)
    try:
        # --- Optuna ---
        t0 = time.perf_counter()
        key = hashlib.sha256((fingerprint + "|" + ",".join(split.features)).encode()).hexdigest()[:16]
        tuning = tune(split, storage_path=work_db, run_id=run_id, key=key, seed=seed)
        tuned = tuning.lightgbm_params
        timings["tuning"] = time.perf_counter() - t0
        best = f"{tuning.best_value:.5f}" if tuning.best_value is not None else "-"
        log.info(
            "optuna: %d trial(s) this run, %d in the study; best inner AUC %s (%.0fs)",
            tuning.n_trials_this_run,
            tuning.n_trials_total,
            best,
            timings["tuning"],
        )

        # --- bake-off ---
        t0 = time.perf_counter()
        ranking, fitted, preds = bakeoff(split, names, seed=seed, tuned=tuned, t_start=t_start)
        timings["bakeoff"] = time.perf_counter() - t0
        winner, round1_auc = ranking[0]["model"], ranking[0]["auc"]
        log.info("winner: %s (round-1 AUC %.4f)", winner, round1_auc)

        # --- the winner's validation estimate over rolling-origin folds ---
        t0 = time.perf_counter()
        rolling = rolling_validation(matrix, split.features, winner, round1_auc, seed=seed, tuned=tuned)
        validation_auc = rolling["auc"]
        timings["rolling_validation"] = time.perf_counter() - t0
        log.info(
            "validation AUC of %s: %.4f over round(s) %s (%d rows)",
            winner,
            validation_auc,
            ", ".join(str(f["round"]) for f in rolling["folds"]),
            sum(f["rows"] for f in rolling["folds"]),
        )

        # --- selection effect: the winner with every feature ---
        t0 = time.perf_counter()
        all_split = Split.of(matrix, list(matrix.X.columns))
        if len(all_split.features) == len(split.features):
            auc_all = round1_auc
        else:
            m_all = fit_model(
                MODELS[winner](seed, tuned=tuned), all_split.X_train, all_split.y_train, rounds=all_split.r_train
            )
            auc_all = float(roc_auc_score(all_split.y_valid, predict_scores(m_all, all_split.X_valid)))
        timings["selection_effect"] = time.perf_counter() - t0
        log.info(
            "selection effect (%s): round-1 AUC %.4f with the %d selected features, %.4f with all %d (%.0fs)",
            winner,
            round1_auc,
            len(split.features),
            auc_all,
            len(all_split.features),
            timings["selection_effect"],
        )

        # --- refit the winner on every train example ---
        t0 = time.perf_counter()
        X_all = matrix.X[split.features]
        # An ensemble's inner fits (rounds != 1) are the bake-off's fits: passed for reuse.
        final = fit_model(MODELS[winner](seed, tuned=tuned), X_all, matrix.y, rounds=matrix.rounds, fitted=fitted)
        timings["refit"] = time.perf_counter() - t0
        log.info("refit %s on all %d train examples (%.0fs)", winner, len(X_all), timings["refit"])
        importance, importance_source = importance_table(final, winner, fitted, split, matrix.groups, seed=seed)
        timings["total"] = time.perf_counter() - t_start
        timings = {k: round(v, 3) for k, v in timings.items()}

        # --- artifacts ---
        versions = library_versions()
        run_params = {
            "run_id": run_id,
            "seed": seed,
            "feature_params": _feature_params(),
            "model_params": params.snapshot(),
            "data_fingerprint": fingerprint,
            "demo": demo,
            "versions": versions,
            "selection": {"n_all": int(matrix.X.shape[1]), "n_selected": len(split.features)},
        }
        metrics = {
            "run_id": run_id,
            "validation_auc": validation_auc,
            "validation_auc_round1": round1_auc,
            "validation_folds": rolling["folds"],
            "winner": winner,
            "ranking": ranking,
            "selection_effect": {
                "model": winner,
                "auc_selected": round1_auc,
                "auc_all_features": auc_all,
                "n_selected": len(split.features),
                "n_all": len(all_split.features),
            },
            "optuna": tuning.to_json(),
            "timings": timings,
            "n_train": int(len(split.y_train)),
            "n_valid": int(len(split.y_valid)),
            "valid_positive_rate": float(split.y_valid.mean()),
            "importance_source": importance_source,
            "demo": demo,
            "notes": [
                OPTIMISM_NOTE,
                ROLLING_NOTE,
                "lightgbm_tuned's parameters were tuned on round 2 (inner holdout), never on round 1.",
                "Models with a row budget were fit on a stratified seeded subsample (rows_used < n_train).",
            ],
        }
        valid_ex = matrix.examples.loc[matrix.validation_mask()]
        val = pd.DataFrame(
            {
                "example_id": valid_ex["example_id"].to_numpy(),
                "user_id": valid_ex["user_id"].to_numpy(),
                "y": split.y_valid,
            }
            | {name: preds[name] for name in names}
        )
        write_json(run_params, tmp_dir / "params.json")
        write_parquet(val, tmp_dir / "val_predictions.parquet")
        write_csv(tuning.trials, tmp_dir / "optuna_trials.csv")
        write_csv(importance, tmp_dir / "winner_importance.csv")
        write_json(timings, tmp_dir / "timings.json")
        write_json(metrics, tmp_dir / "metrics.json")
        meta = {
            "model": winner,
            "run_id": run_id,
            "seed": seed,
            "data_fingerprint": fingerprint,
            "versions": versions,
            "timings": timings,
            "validation_auc": validation_auc,
            "tuned_params": tuned,
            "fit_on": "all train examples (training + validation rounds)",
            "n_rows": int(len(X_all)),
        }
        dump_joblib({"model": final, "features": split.features, "meta": meta}, models_dir / f"{winner}.joblib")
        # --- commit: run folder, report, study, metrics, and last winner.json ---
        os.replace(tmp_dir, run_dir)
        if write_report:
            from pipeline.report import build_report

            build_report(runs_dir=runs_dir, models_dir=models_dir, reports_dir=reports_dir, run_id=run_id, seed=seed)
        if work_db.exists():
            os.replace(work_db, study_db)
        write_json(metrics, reports_dir / "metrics.json")
        # Last: winner.json is the Make target that says "training finished".
        write_json({"model": winner, "run_id": run_id, "validation_auc": validation_auc}, models_dir / "winner.json")
    finally:
        # Present only when the run failed or was interrupted before its commit.
        shutil.rmtree(tmp_dir, ignore_errors=True)
        work_db.unlink(missing_ok=True)
        if run_dir.exists() and not any(run_dir.iterdir()):
            run_dir.rmdir()  # the id new_run_id claimed, never filled
    log.info(
        "run %s: winner %s (validation AUC %.4f) saved; total %.0fs", run_id, winner, validation_auc, timings["total"]
    )
    return metrics


def _feature_params() -> dict[str, Any]:
    from features import params as feature_params

    return {k: getattr(feature_params, k) for k in dir(feature_params) if k.isupper()}


def main() -> None:
    ap = argparse.ArgumentParser(description="Fit, rank and keep the best model (writes runs/<run_id>/...).")
    ap.add_argument("--models", default=None, help="comma-separated subset of the registry (default: all)")
    args = ap.parse_args()
    params.validate()
    names = [n.strip() for n in args.models.split(",") if n.strip()] if args.models else None
    run(names=names)


if __name__ == "__main__":
    run_cli(main)
