"""The bake-off: every model declared once, as a :class:`ModelSpec` (factory, note, row budget).

A spec's ``build(settings, tuned=None)`` returns a fresh, unfitted scikit-learn
``Pipeline`` whose last step is named ``"model"``; every random state inside is derived
from ``settings.seed`` and every thread count is ``settings.n_jobs``, so the same data
and seed give byte-identical predictions across runs, clones and machines with the same
library versions.  What each model is, what its scores mean and its row budget are the
spec's ``summary``, ``note`` and ``budget``: ``python -m models.registry`` prints the
table, and the report shows it.

A row budget is applied by :class:`~models.estimators.RowBudget`, a meta-estimator
around the expensive part of the pipeline: it fits on a stratified, seeded subsample
and records ``rows_used_``.  The cheap preprocessing before it still sees every row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.feature_selection import VarianceThreshold
from sklearn.impute import MissingIndicator, SimpleImputer
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import BernoulliRBM
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    MinMaxScaler,
    QuantileTransformer,
    StandardScaler,
)
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier

from core.errors import PipelineError
from core.settings import ModelSettings
from models.estimators import DistinctColumns, OrderedForest, RowBudget, SplineBasis, StackedEnsemble

__all__ = ["MODELS", "ModelSpec", "LIGHTGBM_DEFAULTS", "model_names"]


@dataclass(frozen=True)
class ModelSpec:
    """One model of the bake-off: how to build it and how to describe it."""

    name: str
    factory: Callable[..., Pipeline]
    #: What the model is, in one line (the README's and the report's model table).
    summary: str
    #: What its validation scores are (the ranking's "note").
    note: str
    #: The ModelSettings field holding its row budget (``None``: it fits every row).
    budget: str | None = None

    def build(self, settings: ModelSettings, *, tuned: dict[str, Any] | None = None) -> Pipeline:
        """A fresh, unfitted pipeline (``tuned``: the Optuna study's best LightGBM parameters)."""
        return self.factory(settings, tuned=tuned)

    def row_budget(self, settings: ModelSettings) -> int | None:
        """The documented row cap under ``settings`` (``None`` = every row)."""
        return getattr(settings, self.budget) if self.budget else None


#: LightGBM's fixed "strong defaults": moderate learning rate and leaves, row and column
#: subsampling and L2 -- a setting that is rarely far from a tuned one on ~10^5 rows.
#: 300 rounds at 0.06 (the ablation's setting) rather than 600 at 0.03: every LightGBM fit of
#: the chain (bake-off, the stack's members, rolling folds, refit) takes ~40% less time, for a
#: test AUC of the final stack within noise: -0.0014 [-0.0043, +0.0013] (demo, 2,000 users),
#: +0.0001 [-0.0019, +0.0023] (altgen, 2,000), +0.0002 [-0.0006, +0.0009] (altgen, 19,918),
#: -0.0003 [-0.0006, +0.0002] (demo, 19,918); paired bootstrap 95% on the same test rows.
LIGHTGBM_DEFAULTS: dict[str, Any] = {
    "n_estimators": 300,
    "learning_rate": 0.06,
    "num_leaves": 31,
    "min_child_samples": 100,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.7,
    "reg_lambda": 5.0,
    "reg_alpha": 0.0,
}


def _lightgbm_estimator(s: ModelSettings, overrides: dict[str, Any] | None = None) -> lgb.LGBMClassifier:
    # deterministic + force_col_wise + fixed n_jobs + one seed: the same data give the
    # same trees bit for bit (LightGBM's documented recipe for reproducibility).
    kw = {**LIGHTGBM_DEFAULTS, **(overrides or {})}
    return lgb.LGBMClassifier(
        objective="binary",
        random_state=s.seed,
        n_jobs=s.n_jobs,
        deterministic=True,
        force_col_wise=True,
        verbose=-1,
        **kw,
    )


def _impute(indicator: bool = True) -> SimpleImputer:
    # Missing values mean "undefined" here (no history yet, broken clock), which is itself
    # informative: linear and distance models get the indicator columns to see it.
    return SimpleImputer(strategy="median", add_indicator=indicator, keep_empty_features=True)


def _logistic(s: ModelSettings) -> LogisticRegression:
    # Newton steps to a tight tolerance, not L-BFGS to a loose one: L-BFGS stopped at points that
    # differed in the 4th digit of the AUC between two processes given the same rows, which a
    # stack containing it turned into a different submission.  Newton-Cholesky lands on the
    # optimum in ~5 steps and is 3x faster (rows >> features here); bit for bit across processes
    # once BLAS runs on one thread (models.fitting.one_blas_thread: beside another fit its sums split differently).
    return LogisticRegression(C=1.0, solver="newton-cholesky", tol=1e-8, max_iter=100, random_state=s.seed)


def logistic_regression(s: ModelSettings, *, tuned: dict[str, Any] | None = None) -> Pipeline:
    return Pipeline(
        [
            ("impute", _impute()),
            ("scale", StandardScaler()),
            ("model", _logistic(s)),
        ]
    )


def spline_logistic_regression(s: ModelSettings, *, tuned: dict[str, Any] | None = None) -> Pipeline:
    """L2 logistic regression on a quadratic B-spline basis of each feature's quantile (an additive model).

    Each feature's effect on the log-odds may bend (a rate's effect flattens at its ends, a
    count's grows then saturates) where the plain logistic regression draws one line.  The
    quantile step spreads the knots evenly over the rows.  A feature with few values (a flag)
    enters linearly, and its missing-value flags once per distinct pattern: spline columns of a
    flag and repeated flags are collinear, which broke Newton's method at full size.  Constant
    columns are dropped and the rest standardised in float64, so Newton converges in a few steps.
    """
    values = Pipeline(
        [
            ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
            ("quantile", QuantileTransformer(n_quantiles=200, subsample=100_000, random_state=s.seed)),
            ("spline", SplineBasis(n_knots=3, degree=2)),
        ]
    )
    missing = Pipeline(
        [
            ("indicator", MissingIndicator(features="missing-only", error_on_new=False)),
            ("distinct", DistinctColumns()),
        ]
    )
    return Pipeline(
        [
            ("basis", FeatureUnion([("values", values), ("missing", missing)])),
            ("constant", VarianceThreshold(1e-6)),
            ("scale", StandardScaler()),
            ("model", _logistic(s)),
        ]
    )


def knn(s: ModelSettings, *, tuned: dict[str, Any] | None = None) -> Pipeline:
    return Pipeline(
        [
            ("impute", _impute()),
            ("scale", StandardScaler()),
            (
                "model",
                RowBudget(
                    KNeighborsClassifier(n_neighbors=100, weights="uniform", n_jobs=s.n_jobs),
                    max_rows=s.rows_knn,
                    random_state=s.seed,
                ),
            ),
        ]
    )


def svm(s: ModelSettings, *, tuned: dict[str, Any] | None = None) -> Pipeline:
    # SVC(probability=True) is deprecated in scikit-learn 1.9; its replacement is exactly
    # this: Platt scaling by cross-validation, then one SVC refit on all rows.
    svc = SVC(kernel="rbf", C=1.0, gamma="scale", cache_size=500, random_state=s.seed)
    calibrated = CalibratedClassifierCV(svc, method="sigmoid", cv=3, ensemble=False)
    return Pipeline(
        [
            ("impute", _impute()),
            ("scale", StandardScaler()),
            ("model", RowBudget(calibrated, max_rows=s.rows_svm, random_state=s.seed)),
        ]
    )


def sgd(s: ModelSettings, *, tuned: dict[str, Any] | None = None) -> Pipeline:
    return Pipeline(
        [
            ("impute", _impute()),
            ("scale", StandardScaler()),
            (
                "model",
                SGDClassifier(loss="log_loss", alpha=1e-3, average=True, max_iter=1000, tol=1e-3, random_state=s.seed),
            ),
        ]
    )


def decision_tree(s: ModelSettings, *, tuned: dict[str, Any] | None = None) -> Pipeline:
    return Pipeline(
        [
            ("impute", _impute(indicator=False)),
            ("model", DecisionTreeClassifier(max_depth=8, min_samples_leaf=100, random_state=s.seed)),
        ]
    )


def random_forest(s: ModelSettings, *, tuned: dict[str, Any] | None = None) -> Pipeline:
    # Each tree sees a half-size bootstrap (max_samples): about 3x faster than full-size
    # bootstraps, and the extra decorrelation costs a forest little.  100 trees (was 200):
    # half the time, validation AUC 0.6908 vs 0.6930 at 2,000 demo users.
    forest = OrderedForest(
        n_estimators=100,
        min_samples_leaf=30,
        max_features="sqrt",
        max_samples=0.5,
        n_jobs=s.n_jobs,
        random_state=s.seed,
    )
    return Pipeline(
        [
            ("impute", _impute(indicator=False)),
            ("model", RowBudget(forest, max_rows=s.rows_rf, random_state=s.seed)),
        ]
    )


def _clip_sigma(X: np.ndarray) -> np.ndarray:
    """Clip standardised values to +-4 sigma, so that a few outliers do not squeeze MinMax's [0, 1]."""
    return np.clip(X, -4.0, 4.0)


def rbm(s: ModelSettings, *, tuned: dict[str, Any] | None = None) -> Pipeline:
    """The write-up's RBM approach, with a skip connection.

    StandardScaler -> clip to +-4 sigma -> MinMaxScaler to [0, 1] (what a Bernoulli RBM
    expects; clip=True keeps new rows' extremes inside) -> BernoulliRBM (64 hidden
    units) -> logistic regression.  The logistic regression sees the scaled inputs
    *and* the hidden units: fed the hidden units alone, the unsupervised RBM's code
    scored AUC 0.50 on a DSG-shaped synthetic set where the plain inputs score 0.76
    (it models the many weak features, not the label), so the skip connection is what
    lets the RBM's features add to a working model instead of replacing it.
    """
    hidden = BernoulliRBM(n_components=64, learning_rate=0.01, batch_size=32, n_iter=20, random_state=s.seed)
    inner = Pipeline(
        [
            ("features", FeatureUnion([("inputs", "passthrough"), ("rbm", hidden)])),
            ("logistic", LogisticRegression(C=1.0, max_iter=2000, random_state=s.seed)),
        ]
    )
    return Pipeline(
        [
            ("impute", _impute()),
            ("scale", StandardScaler()),
            ("clip", FunctionTransformer(_clip_sigma)),
            ("minmax", MinMaxScaler(clip=True)),
            ("model", RowBudget(inner, max_rows=s.rows_rbm, random_state=s.seed)),
        ]
    )


def hist_gradient_boosting(s: ModelSettings, *, tuned: dict[str, Any] | None = None) -> Pipeline:
    # early_stopping=False: its internal random validation split would change the model
    # with the number of rows; a fixed number of iterations is steadier.  200 at 0.1 (was
    # 400 at 0.05): half the time, validation AUC 0.6999 vs 0.6976 at 2,000 demo users.
    return Pipeline(
        [
            (
                "model",
                HistGradientBoostingClassifier(
                    learning_rate=0.1,
                    max_iter=200,
                    max_leaf_nodes=31,
                    min_samples_leaf=100,
                    l2_regularization=1.0,
                    early_stopping=False,
                    random_state=s.seed,
                ),
            )
        ]
    )


def lightgbm(s: ModelSettings, *, tuned: dict[str, Any] | None = None) -> Pipeline:
    return Pipeline([("model", _lightgbm_estimator(s))])


def lightgbm_tuned(s: ModelSettings, *, tuned: dict[str, Any] | None = None) -> Pipeline:
    """LightGBM with ``tuned`` (the Optuna study's best LightGBM keyword arguments) over the defaults."""
    return Pipeline([("model", _lightgbm_estimator(s, tuned))])


def ensemble(s: ModelSettings, *, tuned: dict[str, Any] | None = None) -> Pipeline:
    unknown = [m for m in s.ensemble_members if m not in MODELS or m == "ensemble"]
    if unknown or not s.ensemble_members:
        raise PipelineError(
            f"ENSEMBLE_MEMBERS has unknown or invalid names {unknown}; valid: "
            + ", ".join(m for m in MODELS if m != "ensemble")
        )
    members = [(m, MODELS[m].build(s, tuned=tuned)) for m in s.ensemble_members]
    return Pipeline([("model", StackedEnsemble(members, random_state=s.seed))])


def _specs() -> dict[str, ModelSpec]:
    rows = [
        ModelSpec(
            "logistic_regression",
            logistic_regression,
            "median impute (+ missing indicators), standardise, L2 logistic regression",
            "probability",
        ),
        ModelSpec(
            "spline_logistic_regression",
            spline_logistic_regression,
            "median impute (+ indicators), quantiles, quadratic B-splines (3 knots), L2 logistic regression",
            "probability",
        ),
        ModelSpec(
            "knn",
            knn,
            "impute, standardise, 100-NN vote (uniform)",
            "probability (share of the 100 nearest neighbours)",
            "rows_knn",
        ),
        ModelSpec(
            "svm",
            svm,
            "impute, standardise, RBF-kernel SVC, Platt-calibrated by 3-fold CV (real probabilities)",
            "probability (RBF SVC, Platt-calibrated by 3-fold CV)",
            "rows_svm",
        ),
        ModelSpec(
            "sgd",
            sgd,
            "impute, standardise, SGD on the logistic loss (averaged)",
            "probability (averaged SGD, logistic loss)",
        ),
        ModelSpec(
            "decision_tree", decision_tree, "impute, CART (depth 8, 100 rows per leaf)", "probability (leaf frequency)"
        ),
        ModelSpec(
            "random_forest",
            random_forest,
            "impute, 100 trees on half-size bootstraps, 30 rows per leaf",
            "probability (mean leaf frequency)",
            "rows_rf",
        ),
        ModelSpec(
            "rbm",
            rbm,
            "impute, standardise, clip, min-max to [0, 1], Bernoulli RBM (64 hidden units), logistic regression "
            "on inputs + hidden units",
            "probability (logistic regression on the scaled inputs and 64 RBM hidden units)",
            "rows_rbm",
        ),
        ModelSpec(
            "hist_gradient_boosting",
            hist_gradient_boosting,
            "scikit-learn histogram gradient boosting (native missing values)",
            "probability",
        ),
        ModelSpec("lightgbm", lightgbm, "LightGBM, fixed strong defaults", "probability (fixed defaults)"),
        ModelSpec(
            "lightgbm_tuned",
            lightgbm_tuned,
            "LightGBM with the Optuna study's best parameters (fixed defaults when the study has none)",
            "probability (Optuna best parameters)",
        ),
        ModelSpec(
            "ensemble",
            ensemble,
            "logistic stack of ENSEMBLE_MEMBERS, weights from the inner holdout (see StackedEnsemble)",
            "probability (logistic stack; weights from round 2)",
        ),
    ]
    return {spec.name: spec for spec in rows}


#: name -> spec, in the order of the bake-off.
MODELS: dict[str, ModelSpec] = _specs()


def model_names(requested: tuple[str, ...] | list[str] = ()) -> list[str]:
    """The registry names to fit: ``requested`` (checked, in registry order) or every model."""
    if not requested:
        return list(MODELS)
    unknown = [n for n in requested if n not in MODELS]
    if unknown:
        raise PipelineError(f"MODELS: unknown model(s) {', '.join(unknown)}; valid: {', '.join(MODELS)}")
    return [n for n in MODELS if n in set(requested)]


def describe() -> str:
    """The model table (name, row budget setting, summary)."""
    return "\n".join(f"{s.name:<24} {(s.budget or 'all rows').upper():<10} {s.summary}" for s in MODELS.values())


if __name__ == "__main__":
    print(describe())
