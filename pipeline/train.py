"""Fit the bake-off, rank it on the validation round, keep the winner (`make train`).

1. Load ``selection.json`` (`make select`), the tuned LightGBM parameters (``tuned.json``,
   `make tune`; round 1 is never seen by the tuning) and the train matrix.
2. Fit each model of the registry (or of ``MODELS=a,b``) on the training rounds (rounds
   2..K and extra rows) with the selected features; score it on the validation round
   (round 1): ROC AUC with a seeded bootstrap 95% interval, log loss, Brier score,
   accuracy, fit and predict seconds, rows used.  Rank by AUC.  The winner is
   ``WINNER_DEFAULT`` (the stack) unless a model beats it on round 1 with a paired 95%
   interval clear of zero (:mod:`pipeline.winner`).
3. Estimate the winner's ``validation_auc`` over rolling-origin folds: round 1, then
   round 2 refit on the examples before it, ... (:func:`rolling_validation`).
4. Refit the winner with all features on the training rounds (the selection effect),
   then refit it on ALL train examples and save it.

Fits go through a :class:`~pipeline.fitcache.FitCache`: a model whose parameters, rows and
code did not change is read back, not refit (bit-identical, since fits are deterministic).

Writes ``runs/<run_id>/`` (:mod:`pipeline.runstore`), ``models/artifacts/<winner>.joblib``,
``reports/metrics.json``, the report, and last ``models/artifacts/winner.json``.

Round 1 ranks the models, so a winner that beat the default there has a slightly optimistic
round-1 AUC as an estimate of its test AUC (a selection effect over ~11 models); the
rolling folds beyond round 1 did not choose it, and the bootstrap intervals show how
close the ranking is.
"""

from __future__ import annotations

import argparse
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from core import config
from core.errors import PipelineError, run_cli
from core.io import dump_joblib, read_json, write_json
from core.settings import FeatureSettings, ModelSettings, load, settings_dict
from models.fitting import fit_model, one_blas_thread, predict_scores, rows_used
from models.registry import MODELS, model_names
from pipeline.data.dataset import Matrix, Split, load_matrix, load_selection
from pipeline.diagnostics import paired_deltas, segment_table, segments_of
from pipeline.fitcache import FitCache, code_version
from pipeline.runstore import Fold, ModelScore, Ranking, RunMetrics, RunStore, data_fingerprint, library_versions
from pipeline.scoring import score_predictions
from pipeline.winner import check_default, choose_winner

log = logging.getLogger("train")

__all__ = ["bakeoff", "importance_table", "reusable_fits", "rolling_validation", "run"]

OPTIMISM_NOTE = (
    "The models are ranked on the validation round, so a winner chosen there has a slightly optimistic "
    "validation AUC as an estimate of its test AUC; the bootstrap intervals show which differences are within noise."
)


ROLLING_NOTE = (
    "validation_auc is the winner's row-weighted AUC over rolling-origin folds (round 1, then earlier "
    "rounds refit on what came before them, up to VALIDATION_MIN_ROWS rows); the ranking is on round 1."
)


def _fit(
    cache: FitCache,
    kind: str,
    name: str,
    pipeline: Any,
    X: pd.DataFrame,
    y: np.ndarray,
    *,
    rounds: np.ndarray | None = None,
    fitted: dict[str, Any] | None = None,
) -> tuple[Any, float, bool]:
    """Fit ``pipeline`` (or read the identical fit back from the cache): ``(model, fit seconds, cached)``."""
    key = cache.key(pipeline, X, y, rounds)
    entry = cache.get(kind, name, key)
    if entry is not None:
        return entry["model"], entry["fit_seconds"], True
    t = time.perf_counter()
    model = fit_model(pipeline, X, y, rounds=rounds, fitted=fitted)
    seconds = time.perf_counter() - t
    cache.put(kind, name, key, {"model": model, "fit_seconds": seconds})
    return model, seconds, False


#: Bake-off members whose fit uses one core (liblinear/lbfgs, libsvm, trees, numpy CD): run
#: side by side, longest first (fit + predict at 2,000 users: SVM ~9.5 s, RBM ~9.5, spline LR ~9,
#: decision tree ~7.5, SGD ~2, KNN ~1.5, LR ~1), so the two lanes end together: ~17 s at 2,000 users
#: (before the spline LR joined) where the registry's order (LR and KNN first, the RBM last)
#: ended at ~19 s.
SIDE_BY_SIDE_ORDER = ("svm", "rbm", "spline_logistic_regression", "decision_tree", "sgd", "knn", "logistic_regression")


def bakeoff(
    split: Split,
    names: list[str],
    *,
    settings: ModelSettings,
    tuned: dict[str, Any] | None,
    cache: FitCache,
    t_start: float,
) -> tuple[Ranking, dict[str, Any], dict[str, np.ndarray]]:
    """Fit each model on the training rounds and score it on the validation round.

    Returns the ranking, the fitted pipelines and the validation scores.
    """
    scores, fitted, preds = [], {}, {}
    n_train = len(split.y_train)

    def fit_and_predict(i: int, name: str) -> tuple[Any, float, bool, np.ndarray, float]:
        log.info("[%d/%d] %s: fitting on %d rows ...", i, len(names), name, n_train)
        # The ensemble reuses members the bake-off already fit on these rows (bit-identical to refitting).
        model, fit_s, cached = _fit(
            cache, "bakeoff", name, MODELS[name].build(settings, tuned=tuned), split.X_train, split.y_train,
            rounds=split.r_train, fitted=fitted,
        )  # fmt: skip
        t = time.perf_counter()
        p = predict_scores(model, split.X_valid)
        return model, fit_s, cached, p, time.perf_counter() - t

    # Models whose fit runs on one core go two at a time (threads: their fits release the GIL);
    # each is seeded and fit alone, so the results are the same as one after the other.
    side_by_side = [n for n in SIDE_BY_SIDE_ORDER if n in names]
    early: dict[str, tuple] = {}
    if len(side_by_side) > 1 and settings.n_jobs > 1:
        with ThreadPoolExecutor(max_workers=settings.n_jobs) as pool:
            futures = {n: pool.submit(fit_and_predict, names.index(n) + 1, n) for n in side_by_side}
            early = {n: f.result() for n, f in futures.items()}
    for i, name in enumerate(names, 1):
        spec = MODELS[name]
        model, fit_s, cached, p, pred_s = early[name] if name in early else fit_and_predict(i, name)
        if not np.isfinite(p).all() or p.min() < 0 or p.max() > 1:
            raise RuntimeError(f"model {name} produced scores outside [0, 1]")
        s = score_predictions(split.y_valid, p, n_boot=settings.bootstrap_rounds, seed=settings.seed)
        used = rows_used(model, n_train)
        note = spec.note
        if name == "ensemble":
            note = "probability (logistic stack of " + ", ".join(settings.ensemble_members) + "; weights from round 2)"
        if used < n_train:
            note += f"; fit on a stratified subsample of {used} of {n_train} rows"
        if name in ("lightgbm_tuned", "ensemble") and tuned is None:
            note += "; no Optuna study on these features (make tune), so LightGBM's fixed defaults stand in"
        if hasattr(model[-1], "weights_"):
            note += "; weights " + ", ".join(f"{m} {w:+.3f}" for m, w in model[-1].weights_.items())
        scores.append(
            ModelScore(
                model=name,
                **s,
                fit_seconds=round(fit_s, 3),
                predict_seconds=round(pred_s, 3),
                rows_used=used,
                row_budget=spec.row_budget(settings),
                n_features=len(split.features),
                note=note,
            )
        )
        fitted[name], preds[name] = model, p
        log.info(
            "[%d/%d] %s: AUC %.4f [%.4f, %.4f]  fit %.1fs%s  predict %.1fs  (elapsed %.0fs)",
            i,
            len(names),
            name,
            s["auc"],
            s["auc_lo"],
            s["auc_hi"],
            fit_s,
            " (cached)" if cached else "",
            pred_s,
            time.perf_counter() - t_start,
        )
    return Ranking.of(scores), fitted, preds


def reusable_fits(models: dict[str, Any]) -> dict[str, Any]:
    """``models`` and every member fit inside the stacks among them, for later fits to reuse.

    A stack fit on the rows before round k holds out round k+1 and fits its members on the
    rows before that (:meth:`Matrix.inner_rounds`): the rows of the next rolling fold's own
    fit.  Fits are deterministic, so reusing one (matched by
    :func:`~models.fitting.fit_signature`: parameters, rows, labels) changes no bit.
    """
    out: dict[str, Any] = {}
    for name, model in models.items():
        out[name] = model
        for kind in ("inner_estimators_", "estimators_"):
            for i, member in enumerate(getattr(model[-1], kind, None) or []):
                out[f"{name}/{kind}{i}"] = member
    return out


def rolling_validation(
    matrix: Matrix,
    features: list[str],
    winner: str,
    round1_auc: float,
    *,
    settings: ModelSettings,
    tuned: dict[str, Any] | None,
    cache: FitCache,
    fitted: dict[str, Any] | None = None,
) -> tuple[float, tuple[Fold, ...]]:
    """The winner's AUC over rolling-origin folds: round 1 (the bake-off's), then rounds 2, 3, ...

    Each further fold refits the winner on the examples before its round
    (:meth:`Matrix.fold_masks`) and scores that round.  Folds are added until they hold
    ``VALIDATION_MIN_ROWS`` rows or ``VALIDATION_MAX_ROUNDS`` rounds; a fold without
    both classes on either side ends the list.  The estimate is the row-weighted mean of
    the folds' AUCs: a smaller standard error than round 1 alone on small data, and less
    optimistic (round 1 also chose the winner).  The bake-off's fits (``fitted``) and each
    fold's own are offered for reuse (:func:`reusable_fits`): a stack's fold refits only the
    members of its own inner holdout.
    """
    pool = reusable_fits(fitted or {})
    n1 = int(matrix.validation_mask().sum())
    folds = [Fold(round=1, rows=n1, auc=float(round1_auc), train_rows=int(matrix.training_mask().sum()))]
    y = matrix.y
    k = 2
    while sum(f.rows for f in folds) < settings.validation_min_rows and k <= settings.validation_max_rounds:
        train, valid = matrix.fold_masks(k)
        if len(np.unique(y[train])) < 2 or len(np.unique(y[valid])) < 2:
            break
        t = time.perf_counter()
        model, _, _ = _fit(
            cache, f"fold{k}", winner, MODELS[winner].build(settings, tuned=tuned), matrix.X.loc[train, features],
            y[train], rounds=matrix.inner_rounds(train), fitted=pool,
        )  # fmt: skip
        pool.update(reusable_fits({f"fold{k}": model}))
        auc = float(roc_auc_score(y[valid], predict_scores(model, matrix.X.loc[valid, features])))
        folds.append(Fold(round=k, rows=int(valid.sum()), auc=auc, train_rows=int(train.sum())))
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
    rows = np.array([f.rows for f in folds], dtype=np.float64)
    aucs = np.array([f.auc for f in folds])
    return float((rows * aucs).sum() / rows.sum()), tuple(folds)


def importance_table(
    final: Any, winner: str, fitted: dict[str, Any], split: Split, groups: dict[str, str], *, settings: ModelSettings
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
        model = fit_model(MODELS["lightgbm"].build(settings), split.X_train, split.y_train)[-1]
        source = "lightgbm (fit for the importances; the winner has no gain importances)"
    gain = model.booster_.feature_importance(importance_type="gain")
    f = split.features
    table = pd.DataFrame({"feature": f, "group": [groups.get(c, "") for c in f], "gain": gain.astype(np.float64)})
    return table.sort_values(["gain", "feature"], ascending=[False, True], kind="stable").reset_index(drop=True), source


def read_tuned_json(path: Path) -> dict[str, Any]:
    """tuned.json (`make tune`'s output) as a dict; ``{}`` when there is none; a clear error when unreadable."""
    if not path.exists():
        return {}
    try:
        content = read_json(path)
    except (OSError, ValueError) as exc:
        raise PipelineError(
            f"{path} is not readable JSON ({exc}): delete it, or run `make tune` to write it again"
        ) from None
    params = content.get("lightgbm_params") if isinstance(content, dict) else None
    if not isinstance(content, dict) or not (params is None or isinstance(params, dict)):
        raise PipelineError(
            f"{path} should hold an object with 'key' and 'lightgbm_params' (an object or null): "
            "delete it, or run `make tune` to write it again"
        )
    return content


def tuned_for(
    tuned_json: dict[str, Any], matrix: Matrix, features: list[str], names: list[str], *, requested: bool
) -> tuple[dict[str, Any] | None, list[str], dict[str, str]]:
    """The tuned LightGBM parameters that apply to these data and features, and the models to fit.

    Tuning is an explicit request (`make tune`): tuned.json holds the study's best parameters
    and the key of the data and features its trials were scored on.  Parameters tuned on
    other features (or none at all) do not apply: the whole bake-off then leaves out
    ``lightgbm_tuned`` (it would be the fixed LightGBM a second time) and says why; asked for
    by name (MODELS=lightgbm_tuned), it is fit with the fixed defaults, as its note says.
    Returns ``(tuned params or None, model names, {skipped model: reason})``.
    """
    params = tuned_json.get("lightgbm_params")
    if params is not None:
        from pipeline.tune import tuning_key  # optuna is imported only when a study exists

        if tuned_json.get("key") != tuning_key(matrix, features):
            log.warning("tuned.json was tuned on other data or features: not used (make tune tunes these)")
            params = None
    if params is not None or requested or "lightgbm_tuned" not in names:
        return params, names, {}
    reason = "no Optuna study on these data and features yet: `make tune` adds one, then `make train` fits it"
    log.info("lightgbm_tuned left out: %s", reason)
    return None, [n for n in names if n != "lightgbm_tuned"], {"lightgbm_tuned": reason}


# --- The stage ----------------------------------------------------------------------


@one_blas_thread()
def run(
    *,
    settings: ModelSettings,
    feature_settings: FeatureSettings | None = None,
    tuned_json: dict[str, Any] | None = None,
    matrix: Matrix | None = None,
    models_dir: Path | None = None,
    runs_dir: Path | None = None,
    reports_dir: Path | None = None,
    write_report: bool = True,
) -> RunMetrics:
    """Train, rank, refit the winner, write the run's artifacts and the report; return the run's metrics."""
    models_dir = Path(models_dir or config.MODELS_DIR)
    runs_dir = Path(runs_dir or config.RUNS)
    reports_dir = Path(reports_dir or config.REPORTS)
    names = model_names(settings.models)
    check_default(settings.winner_default, list(MODELS))  # before any fit: a bad setting costs no minutes
    demo = config.is_demo_data()
    if demo:
        log.warning("DEMO DATA: data/raw holds the generated demo set, not the real DSG17 files")
    if tuned_json is None:
        tuned_json = read_tuned_json(models_dir / "tuned.json")

    timings: dict[str, float] = {}
    t_start = time.perf_counter()
    matrix = matrix if matrix is not None else load_matrix("train")
    selection = load_selection(models_dir / "selection.json", matrix)
    split = Split.of(matrix, list(selection["selected"]))
    tuned, names, skipped = tuned_for(tuned_json, matrix, split.features, names, requested=bool(settings.models))
    fingerprint = data_fingerprint(matrix)
    versions = library_versions()
    cache = FitCache(
        models_dir / "cache", code=code_version(config.ROOT, versions), data=f"{fingerprint}|{','.join(split.features)}"
    )
    timings["load"] = time.perf_counter() - t_start
    log.info(
        "%d training examples, %d validation examples, %d of %d features; data %s; models: %s",
        len(split.y_train),
        len(split.y_valid),
        len(split.features),
        matrix.X.shape[1],
        fingerprint[:12],
        ", ".join(names),
    )

    store = RunStore(runs_dir)
    with store.stage() as staged:
        run_id = staged.run_id
        t0 = time.perf_counter()
        ranking, fitted, preds = bakeoff(split, names, settings=settings, tuned=tuned, cache=cache, t_start=t_start)
        timings["bakeoff"] = time.perf_counter() - t0
        choice = choose_winner(
            ranking, preds, split.y_valid, default=settings.winner_default, models=list(MODELS),
            n_boot=settings.bootstrap_rounds, seed=settings.seed,
        )  # fmt: skip
        winner, round1_auc = choice.model, choice.auc
        log.info("winner: %s (round-1 AUC %.4f): %s", winner, round1_auc, choice.reason)

        t0 = time.perf_counter()
        validation_auc, folds = rolling_validation(
            matrix, split.features, winner, round1_auc, settings=settings, tuned=tuned, cache=cache, fitted=fitted
        )
        timings["rolling_validation"] = time.perf_counter() - t0
        log.info(
            "validation AUC of %s: %.4f over round(s) %s (%d rows)",
            winner,
            validation_auc,
            ", ".join(str(f.round) for f in folds),
            sum(f.rows for f in folds),
        )

        t0 = time.perf_counter()
        X_all = matrix.X[split.features]
        # An ensemble's inner fits (rounds != 1) are the bake-off's fits: passed for reuse.
        final, _, _ = _fit(
            cache, "final", winner, MODELS[winner].build(settings, tuned=tuned), X_all, matrix.y,
            rounds=matrix.inner_rounds(), fitted=fitted,
        )  # fmt: skip
        timings["refit"] = time.perf_counter() - t0
        log.info("refit %s on all %d train examples (%.0fs)", winner, len(X_all), timings["refit"])
        importance, importance_source = importance_table(final, winner, fitted, split, matrix.groups, settings=settings)
        timings["total"] = time.perf_counter() - t_start
        timings = {k: round(v, 3) for k, v in timings.items()}

        # The rule already paired every model with the default; a winner that beat it needs its own pairs.
        if winner == settings.winner_default:
            paired = list(choice.against_default)
        else:
            paired = paired_deltas(split.y_valid, preds, winner, n_boot=settings.bootstrap_rounds, seed=settings.seed)
        # Segments read every feature of the validation rows, selected or not (history length, heard before...).
        valid_X_all = matrix.X.loc[matrix.validation_mask()]
        metrics = RunMetrics(
            run_id=run_id,
            validation_auc=validation_auc,
            validation_auc_round1=round1_auc,
            validation_folds=folds,
            winner=winner,
            ranking=ranking,
            optuna=(tuned_json.get("optuna") or {}) if tuned is not None else {},
            timings=timings,
            n_train=int(len(split.y_train)),
            n_valid=int(len(split.y_valid)),
            valid_positive_rate=float(split.y_valid.mean()),
            importance_source=importance_source,
            demo=demo,
            notes=(
                f"Winner: {choice.reason}.",
                OPTIMISM_NOTE,
                ROLLING_NOTE,
                "lightgbm_tuned's parameters were tuned on round 2 (inner holdout), never on round 1.",
                "Models with a row budget were fit on a stratified seeded subsample (rows_used < n_train).",
            ),
            extra={
                "models_covered": names,
                "models_all": list(MODELS),
                "models_skipped": skipped,
                "winner_rule": {"default": settings.winner_default, "reason": choice.reason},
                "diagnostics": {
                    "segments": segment_table(split.y_valid, preds[winner], segments_of(valid_X_all)),
                    "paired": paired,
                },
            },
        )
        valid_ex = matrix.examples.loc[matrix.validation_mask()]
        val = pd.DataFrame(
            {
                "example_id": valid_ex["example_id"].to_numpy(),
                "user_id": valid_ex["user_id"].to_numpy(),
                "y": split.y_valid,
            }
            | {name: preds[name] for name in names}
        )
        run_params = {
            "run_id": run_id,
            "seed": settings.seed,
            "feature_params": settings_dict(feature_settings or FeatureSettings()),
            "model_params": settings_dict(settings),
            "data_fingerprint": fingerprint,
            "demo": demo,
            "versions": versions,
            "selection": {"n_all": int(matrix.X.shape[1]), "n_selected": len(split.features)},
        }
        staged.write_json("params.json", run_params)
        staged.write_parquet("val_predictions.parquet", val)
        trials = models_dir / "optuna_trials.csv"
        if trials.exists():
            staged.write_csv("optuna_trials.csv", pd.read_csv(trials))
        staged.write_csv("winner_importance.csv", importance)
        staged.write_json("timings.json", timings)
        staged.write_json("metrics.json", metrics.to_json())
        meta = {
            "model": winner,
            "run_id": run_id,
            "seed": settings.seed,
            "data_fingerprint": fingerprint,
            "versions": versions,
            "timings": timings,
            "validation_auc": validation_auc,
            "tuned_params": tuned,
            "fit_on": "all train examples (training + validation rounds)",
            "n_rows": int(len(X_all)),
        }
        dump_joblib({"model": final, "features": split.features, "meta": meta}, models_dir / f"{winner}.joblib")
        # --- commit: run folder, report, metrics, and last winner.json ---
        staged.commit()
    if write_report:
        from pipeline.report import build_report

        build_report(
            runs_dir=runs_dir, models_dir=models_dir, reports_dir=reports_dir, run_id=run_id, seed=settings.seed
        )
    write_json(metrics.to_json(), reports_dir / "metrics.json")
    # Last: winner.json is the Make target that says "training finished".
    write_json({"model": winner, "run_id": run_id, "validation_auc": validation_auc}, models_dir / "winner.json")
    pruned = cache.prune()
    log.info(
        "run %s: winner %s (validation AUC %.4f) saved; total %.0fs%s",
        run_id,
        winner,
        validation_auc,
        timings["total"],
        f"; {pruned} stale cached fit(s) removed" if pruned else "",
    )
    return metrics


def main() -> None:
    ap = argparse.ArgumentParser(description="Fit, rank and keep the best model (writes runs/<run_id>/...).")
    ap.parse_args()
    settings = load(ModelSettings)
    if settings.models and "ensemble" in settings.models:
        missing = [m for m in settings.ensemble_members if m not in MODELS]
        if missing:
            raise PipelineError(f"ENSEMBLE_MEMBERS: unknown model(s) {', '.join(missing)}; valid: {', '.join(MODELS)}")
    # The report is its own Make target (it also waits for the ablation).
    run(settings=settings, feature_settings=load(FeatureSettings), write_report=False)


if __name__ == "__main__":
    run_cli(main)
