"""Model-side settings: budgets, row caps and the feature-selection rule.

They live apart from ``features/params.py`` so that Make can tell the two apart:
changing a model budget retrains models but never rebuilds the feature files.

Every setting can be overridden from the environment, e.g.
``OPTUNA_SECONDS=600 OPTUNA_MAX_TRIALS=200 make train`` or ``ROWS_KNN=50000 make train``.
A malformed value does not fail at import: it is collected (:mod:`core.settings`) and
:func:`validate` (called first by every stage CLI) reports it as a plain message.
"""

from __future__ import annotations

import os
from typing import Any

from core.settings import EnvSettings

__all__ = ["validate", "snapshot", "ROW_BUDGETS"]

_env = EnvSettings("model")
_env_int, _env_float, _env_choice = _env.int, _env.float, _env.choice


# --- Threads -----------------------------------------------------------------------
#: Threads for every model that can use them.  Fixed (not "all cores") so that results
#: and timings do not depend on the machine's core count.
N_JOBS = _env_int("N_JOBS", 2, minimum=1)

# --- Optuna (models/tuning.py) ----------------------------------------------------
#: One `make train` adds OPTUNA_MAX_TRIALS trials to the study, within a wall-clock
#: budget of OPTUNA_SECONDS.  The defaults are chosen so that the trial count binds, not
#: the clock: 20 trials take ~1-3 minutes from demo to full size on 2 cores, well inside
#: the 5-minute budget, so two machines given the same data and seed run the same trials
#: and write byte-identical submissions.  When the clock binds (a slow or busy machine,
#: or OPTUNA_MAX_TRIALS=none), the trial count, and so the result, depends on the
#: machine.  OPTUNA_SECONDS=0 means no time limit (then a finite trial cap is required).
OPTUNA_SECONDS = _env_float("OPTUNA_SECONDS", 300.0, low=0.0, high=7 * 24 * 3600.0)
#: Trials added by one `make train` (the study keeps all earlier ones and continues).
OPTUNA_MAX_TRIALS = _env_int("OPTUNA_MAX_TRIALS", 20, allow_none=True)
#: The persisted study's name inside models/artifacts/optuna.sqlite3.
OPTUNA_STUDY_NAME = os.environ.get("OPTUNA_STUDY_NAME", "dsg17_lightgbm")
#: Most boosting rounds a trial may use, and the early-stopping patience on the inner holdout.
OPTUNA_MAX_ROUNDS = _env_int("OPTUNA_MAX_ROUNDS", 1000, minimum=10)
OPTUNA_EARLY_STOPPING = _env_int("OPTUNA_EARLY_STOPPING", 50, minimum=1)
#: The pruner looks at the inner-holdout AUC every this many boosting rounds.
OPTUNA_REPORT_EVERY = _env_int("OPTUNA_REPORT_EVERY", 25, minimum=1)

# --- Row budgets (stratified, seeded subsamples) -----------------------------------
#: Models whose cost grows faster than linearly with rows are fit on a stratified
#: subsample of at most this many rows (``none`` = every row).  The ranking records both
#: ``row_budget`` and ``rows_used``.  Defaults keep each of them under ~30 s on 2 cores
#: at full size (~100-200k training examples, ~50-100 features).
ROW_BUDGETS: dict[str, int | None] = {
    # brute-force neighbour search: predict cost = rows x queries x features
    "knn": _env_int("ROWS_KNN", 20_000, minimum=10, allow_none=True),
    # kernel SVC is between quadratic and cubic in rows; 3-fold Platt calibration triples it
    "svm": _env_int("ROWS_SVM", 8_000, minimum=10, allow_none=True),
    # 200 unpruned trees on half-size bootstraps
    "random_forest": _env_int("ROWS_RF", 40_000, minimum=10, allow_none=True),
    # the RBM's contrastive-divergence epochs are slow in pure numpy
    "rbm": _env_int("ROWS_RBM", 30_000, minimum=10, allow_none=True),
}

# --- Feature selection (pipeline/select.py) ----------------------------------------
#: Rows of the training rounds the selection random forest is fit on.
SELECT_ROWS = _env_int("SELECT_ROWS", 30_000, minimum=10, allow_none=True)
#: Trees of the selection forest.
SELECT_TREES = _env_int("SELECT_TREES", 100, minimum=1)
#: ``cumulative``: keep the most important features until their impurity-importance
#: shares add up to SELECT_CUMULATIVE; ``mean``: SelectFromModel's "mean" threshold.
SELECT_RULE = _env_choice("SELECT_RULE", "cumulative", ("cumulative", "mean"))
SELECT_CUMULATIVE = _env_float("SELECT_CUMULATIVE", 0.97, low=0.0, high=1.0)
#: Whatever the rule says, keep at least this many features (or all, when fewer exist).
SELECT_MIN_FEATURES = _env_int("SELECT_MIN_FEATURES", 15, minimum=1)
#: Validation rows and repeats of the permutation importance (shown, never used by the rule).
PERMUTATION_ROWS = _env_int("PERMUTATION_ROWS", 5_000, minimum=10, allow_none=True)
PERMUTATION_REPEATS = _env_int("PERMUTATION_REPEATS", 3, minimum=1)

# --- Scoring (pipeline/train.py) ---------------------------------------------------
#: Bootstrap resamples of the validation round behind each AUC's 95% interval.
BOOTSTRAP_ROUNDS = _env_int("BOOTSTRAP_ROUNDS", 500, minimum=10)

# --- The validation estimate (pipeline/train.py) -----------------------------------
#: The bake-off ranks every model on round 1.  The winner's ``validation_auc`` is then
#: averaged (weighted by rows) over rolling-origin folds: round 1, then round 2 with a
#: refit on what came before it, and so on, until the folds hold VALIDATION_MIN_ROWS
#: rows or VALIDATION_MAX_ROUNDS rounds.  With ~2,000 users one round is ~1,700 rows
#: (AUC standard error ~0.013); three rounds cut it to ~0.008.  At full size (~16,000
#: rows in round 1) the first fold is enough and nothing is refit.
VALIDATION_MIN_ROWS = _env_int("VALIDATION_MIN_ROWS", 5_000, minimum=1)
VALIDATION_MAX_ROUNDS = _env_int("VALIDATION_MAX_ROUNDS", 3, minimum=1)

# --- Ensemble (models/registry.py) --------------------------------------------------
#: Members of the stacked ensemble (registry names), fixed in advance so that choosing
#: them never looks at the validation round.
ENSEMBLE_MEMBERS: tuple[str, ...] = tuple(
    m.strip()
    for m in os.environ.get(
        "ENSEMBLE_MEMBERS", "lightgbm_tuned,lightgbm,hist_gradient_boosting,logistic_regression"
    ).split(",")
    if m.strip()
)


def validate() -> None:
    """Raise a :class:`PipelineError` naming every malformed environment override."""
    _env.validate()


def snapshot() -> dict[str, Any]:
    """Every setting of this module as plain JSON-able values (recorded in runs/<id>/params.json)."""
    out: dict[str, Any] = {}
    for name, value in sorted(globals().items()):
        if name.isupper() and not name.startswith("_"):
            out[name] = list(value) if isinstance(value, tuple) else value
    return out
