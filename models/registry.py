"""The bake-off: every model, declared once as ``name -> factory(seed, *, tuned=None) -> Pipeline``.

Each factory returns a fresh, unfitted scikit-learn ``Pipeline`` whose last step is
named ``"model"``; every random state inside is derived from ``seed`` and every thread
count is fixed (``params.N_JOBS``), so the same data and seed give byte-identical
predictions across runs, clones and machines with the same library versions.

========================  ====================================================  =============
name                      what                                                  row budget
========================  ====================================================  =============
logistic_regression       median impute (+ missing indicators), standardise,   all rows
                          L2 logistic regression
knn                       impute, standardise, 100-NN vote (uniform)           ROWS_KNN
svm                       impute, standardise, RBF-kernel SVC, Platt-          ROWS_SVM
                          calibrated by 3-fold CV (``CalibratedClassifierCV``
                          with ``ensemble=False``): real probabilities
sgd                       impute, standardise, SGD logistic loss (averaged)     all rows
decision_tree             impute, CART (depth 8, 100 rows per leaf)             all rows
random_forest             impute, 200 trees on half-size bootstraps, 30 rows   ROWS_RF
                          per leaf
rbm                       impute, standardise, clip, min-max to [0, 1],         ROWS_RBM
                          Bernoulli RBM (64 hidden units), logistic regression
                          on inputs + hidden units (the write-up's second
                          approach, with a skip connection: see :func:`rbm`)
hist_gradient_boosting    scikit-learn histogram GBM (native missing values)   all rows
lightgbm                  LightGBM, fixed strong defaults                       all rows
lightgbm_tuned            LightGBM with the Optuna study's best parameters      all rows
                          (fixed defaults when the study has none)
ensemble                  stack of ``params.ENSEMBLE_MEMBERS`` (see             all rows
                          :class:`StackedEnsemble`)
========================  ====================================================  =============

A row budget is applied by :class:`RowBudget`, a meta-estimator around the expensive
part of the pipeline: it fits on a stratified, seeded subsample and records
``rows_used_``.  The cheap preprocessing before it still sees every row.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import lightgbm as lgb
import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import BernoulliRBM
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import FunctionTransformer, MinMaxScaler, StandardScaler
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier
from sklearn.utils.metaestimators import available_if
from sklearn.utils.parallel import Parallel, delayed
from sklearn.utils.validation import check_is_fitted

from core.errors import PipelineError
from models import params

__all__ = [
    "MODELS",
    "NOTES",
    "LIGHTGBM_DEFAULTS",
    "RowBudget",
    "OrderedForest",
    "StackedEnsemble",
    "stratified_subsample",
    "fit_model",
    "fit_signature",
    "predict_scores",
    "rows_used",
    "row_budget",
]

Factory = Callable[..., Pipeline]

#: LightGBM's fixed "strong defaults": slow learning rate, moderate leaves, row and column
#: subsampling and L2 -- a setting that is rarely far from a tuned one on ~10^5 rows.
LIGHTGBM_DEFAULTS: dict[str, Any] = {
    "n_estimators": 600,
    "learning_rate": 0.03,
    "num_leaves": 31,
    "min_child_samples": 100,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.7,
    "reg_lambda": 5.0,
    "reg_alpha": 0.0,
}


def _lightgbm_estimator(seed: int, overrides: dict[str, Any] | None = None) -> lgb.LGBMClassifier:
    # deterministic + force_col_wise + fixed n_jobs + one seed: the same data give the
    # same trees bit for bit (LightGBM's documented recipe for reproducibility).
    kw = {**LIGHTGBM_DEFAULTS, **(overrides or {})}
    return lgb.LGBMClassifier(
        objective="binary",
        random_state=seed,
        n_jobs=params.N_JOBS,
        deterministic=True,
        force_col_wise=True,
        verbose=-1,
        **kw,
    )


def _impute(indicator: bool = True) -> SimpleImputer:
    # Missing values mean "undefined" here (no history yet, broken clock), which is itself
    # informative: linear and distance models get the indicator columns to see it.
    return SimpleImputer(strategy="median", add_indicator=indicator, keep_empty_features=True)


# --- Meta-estimators ----------------------------------------------------------------


def stratified_subsample(y: np.ndarray, max_rows: int | None, *, seed: int) -> np.ndarray:
    """Sorted row positions of a seeded subsample of ``max_rows`` rows keeping the class shares.

    Quotas are rounded by largest remainder; a class too rare for one row still gets one.
    """
    y = np.asarray(y)
    n = len(y)
    if max_rows is None or n <= max_rows:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(y, return_counts=True)
    quota = np.floor(counts / n * max_rows).astype(np.int64)
    # Hand the rows lost to rounding to the largest remainders (ties: the smaller class label).
    rest = max_rows - quota.sum()
    order = np.argsort(-(counts / n * max_rows - quota), kind="stable")
    quota[order[:rest]] += 1
    quota = np.minimum(np.maximum(quota, 1), counts)
    picked = [rng.permutation(np.flatnonzero(y == c))[:q] for c, q in zip(classes, quota, strict=True)]
    return np.sort(np.concatenate(picked))


def _has(attr: str) -> Callable[[Any], bool]:
    """``available_if`` check: the wrapped (unfitted) estimator offers ``attr``."""
    return lambda self: hasattr(self.estimator, attr)


def _take(X: Any, idx: np.ndarray) -> Any:
    return X.iloc[idx] if hasattr(X, "iloc") else X[idx]


class RowBudget(ClassifierMixin, BaseEstimator):
    """Fit ``estimator`` on a stratified, seeded subsample of at most ``max_rows`` rows.

    ``rows_used_`` records how many rows the fit saw.  Prediction uses every row.
    """

    def __init__(self, estimator: Any, max_rows: int | None = None, random_state: int = 0) -> None:
        self.estimator = estimator
        self.max_rows = max_rows
        self.random_state = random_state

    def fit(self, X: Any, y: Any) -> RowBudget:
        y = np.asarray(y)
        idx = stratified_subsample(y, self.max_rows, seed=self.random_state)
        self.estimator_ = clone(self.estimator).fit(_take(X, idx), y[idx])
        self.classes_ = self.estimator_.classes_
        self.rows_used_ = len(idx)
        return self

    @available_if(_has("predict_proba"))
    def predict_proba(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        return self.estimator_.predict_proba(X)

    @available_if(_has("decision_function"))
    def decision_function(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        return self.estimator_.decision_function(X)

    def predict(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        return self.estimator_.predict(X)


class OrderedForest(RandomForestClassifier):
    """A random forest whose ``predict_proba`` adds the trees' votes in a fixed order.

    scikit-learn's forest adds each thread's result as it finishes, so with ``n_jobs > 1``
    the last bits of the probabilities (and hence ties and AUCs) change from run to run.
    Here chunks of trees are predicted in parallel threads and summed in tree order.
    """

    def predict_proba(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        X = np.ascontiguousarray(X, dtype=np.float32)
        n_chunks = max(1, min(int(self.n_jobs or 1), len(self.estimators_)))
        chunks = np.array_split(np.arange(len(self.estimators_)), n_chunks)

        def _partial(idx: np.ndarray) -> np.ndarray:
            out = np.zeros((X.shape[0], len(self.classes_)), dtype=np.float64)
            for i in idx:
                out += self.estimators_[i].predict_proba(X, check_input=False)
            return out

        parts = Parallel(n_jobs=n_chunks, prefer="threads")(delayed(_partial)(c) for c in chunks)
        return np.sum(parts, axis=0) / len(self.estimators_)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def inner_holdout(rounds: np.ndarray | None, y: np.ndarray, *, seed: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Split rows for an inner holdout: hold out the latest round present, fit on the older ones.

    With the training rounds (2..K and extra rows -1) this is "fit on rounds >= 3 and
    extras, score round 2", which mirrors the validation round one step back in time.
    Without usable rounds (none given, or one side empty or single-class) a seeded,
    stratified 20% of the rows is held out instead.  ``None`` when ``y`` has one class.
    """
    y = np.asarray(y)
    if len(np.unique(y)) < 2:
        return None
    if rounds is not None:
        rounds = np.asarray(rounds)
        positive = rounds[rounds >= 1]
        if positive.size:
            hold = rounds == positive.min()
            fit = ~hold
            if len(np.unique(y[hold])) == 2 and len(np.unique(y[fit])) == 2:
                return np.flatnonzero(fit), np.flatnonzero(hold)
    hold_idx = stratified_subsample(y, max(2, len(y) // 5), seed=seed)
    fit_mask = np.ones(len(y), dtype=bool)
    fit_mask[hold_idx] = False
    if len(np.unique(y[fit_mask])) < 2:
        return None
    return np.flatnonzero(fit_mask), hold_idx


class StackedEnsemble(ClassifierMixin, BaseEstimator):
    """Logistic-regression stack of member pipelines, weighted WITHOUT the caller's holdout labels.

    ``fit(X, y, rounds=r)``: the members are fit on the older rounds of the rows given
    and predict the latest round present (:func:`inner_holdout`; during the bake-off
    that is round 2, never round 1); a logistic regression on the members' logits is
    fit to those predictions; members that get a non-positive weight are dropped and
    the stack refit, so the blend stays a positive combination.  Finally the kept
    members are refit on every row given.  The output is a calibrated probability.
    """

    def __init__(self, members: list[tuple[str, Any]], C: float = 1.0, random_state: int = 0) -> None:
        self.members = members
        self.C = C
        self.random_state = random_state

    def fit(
        self, X: Any, y: Any, rounds: np.ndarray | None = None, fitted_members: list[Any] | None = None
    ) -> StackedEnsemble:
        """Fit the stack, reusing any of ``fitted_members`` whose :func:`fit_signature` matches a fit it needs.

        Fits are deterministic, so a pipeline fit earlier with the same parameters on the
        same rows is the model this method would fit: reusing it changes no bit.  (In a
        bake-off the final members are the bake-off's own fits; in the refit on all
        examples, the inner fits on rounds != 1 are.)
        """
        pool = list(fitted_members or [])
        y = np.asarray(y)
        self.classes_ = np.unique(y)
        names = [n for n, _ in self.members]
        split = inner_holdout(rounds, y, seed=self.random_state)
        keep = list(range(len(self.members)))
        coef, intercept = np.full(len(keep), 1.0 / len(keep)), 0.0
        inner: list[tuple[Pipeline, bool]] = []
        if split is not None:
            fit_idx, hold_idx = split
            X_fit, X_hold = _take(X, fit_idx), _take(X, hold_idx)
            inner = [_fit_or_reuse(clone(est), X_fit, y[fit_idx], pool) for _, est in self.members]
            Z = np.column_stack([_logit(predict_scores(model, X_hold)) for model, _ in inner])
            while keep:
                stack = LogisticRegression(C=self.C, max_iter=1000).fit(Z[:, keep], y[hold_idx])
                w = stack.coef_.ravel()
                if (w > 0).all():
                    coef, intercept = w, float(stack.intercept_[0])
                    break
                # Drop the weakest (most negative) member and refit: collinear members
                # otherwise get large opposite weights that do not transfer to new rows.
                keep.pop(int(np.argmin(w)))
            if not keep:  # every member useless on the holdout: fall back to a plain average
                keep = list(range(len(self.members)))
                coef, intercept = np.full(len(keep), 1.0 / len(keep)), 0.0
            self.holdout_rows_ = len(hold_idx)
        else:
            self.holdout_rows_ = 0
        self.kept_ = [names[i] for i in keep]
        self.weights_ = dict(zip(self.kept_, map(float, coef), strict=True))
        self.intercept_ = intercept
        final = [_fit_or_reuse(clone(self.members[i][1]), X, y, pool) for i in keep]
        self.estimators_ = [model for model, _ in final]
        self.reused_ = [self.kept_[j] for j, (_, reused) in enumerate(final) if reused]
        self.reused_inner_ = [names[j] for j, (_, reused) in enumerate(inner) if reused]
        return self

    def _margin(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        Z = np.column_stack([_logit(predict_scores(est, X)) for est in self.estimators_])
        return Z @ np.asarray([self.weights_[n] for n in self.kept_]) + self.intercept_

    def predict_proba(self, X: Any) -> np.ndarray:
        p = 1.0 / (1.0 + np.exp(-self._margin(X)))
        return np.column_stack([1 - p, p])

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[(self.predict_proba(X)[:, 1] >= 0.5).astype(int)]


# --- Factories ----------------------------------------------------------------------


def logistic_regression(seed: int, *, tuned: dict[str, Any] | None = None) -> Pipeline:
    return Pipeline(
        [
            ("impute", _impute()),
            ("scale", StandardScaler()),
            ("model", LogisticRegression(C=1.0, max_iter=2000, random_state=seed)),
        ]
    )


def knn(seed: int, *, tuned: dict[str, Any] | None = None) -> Pipeline:
    return Pipeline(
        [
            ("impute", _impute()),
            ("scale", StandardScaler()),
            (
                "model",
                RowBudget(
                    KNeighborsClassifier(n_neighbors=100, weights="uniform", n_jobs=params.N_JOBS),
                    max_rows=params.ROW_BUDGETS["knn"],
                    random_state=seed,
                ),
            ),
        ]
    )


def svm(seed: int, *, tuned: dict[str, Any] | None = None) -> Pipeline:
    # SVC(probability=True) is deprecated in scikit-learn 1.9; its replacement is exactly
    # this: Platt scaling by cross-validation, then one SVC refit on all rows.
    svc = SVC(kernel="rbf", C=1.0, gamma="scale", cache_size=500, random_state=seed)
    calibrated = CalibratedClassifierCV(svc, method="sigmoid", cv=3, ensemble=False)
    return Pipeline(
        [
            ("impute", _impute()),
            ("scale", StandardScaler()),
            ("model", RowBudget(calibrated, max_rows=params.ROW_BUDGETS["svm"], random_state=seed)),
        ]
    )


def sgd(seed: int, *, tuned: dict[str, Any] | None = None) -> Pipeline:
    return Pipeline(
        [
            ("impute", _impute()),
            ("scale", StandardScaler()),
            (
                "model",
                SGDClassifier(loss="log_loss", alpha=1e-3, average=True, max_iter=1000, tol=1e-3, random_state=seed),
            ),
        ]
    )


def decision_tree(seed: int, *, tuned: dict[str, Any] | None = None) -> Pipeline:
    return Pipeline(
        [
            ("impute", _impute(indicator=False)),
            ("model", DecisionTreeClassifier(max_depth=8, min_samples_leaf=100, random_state=seed)),
        ]
    )


def random_forest(seed: int, *, tuned: dict[str, Any] | None = None) -> Pipeline:
    # Each tree sees a half-size bootstrap (max_samples): about 3x faster than full-size
    # bootstraps, and the extra decorrelation costs a forest of 200 trees little.
    forest = OrderedForest(
        n_estimators=200,
        min_samples_leaf=30,
        max_features="sqrt",
        max_samples=0.5,
        n_jobs=params.N_JOBS,
        random_state=seed,
    )
    return Pipeline(
        [
            ("impute", _impute(indicator=False)),
            ("model", RowBudget(forest, max_rows=params.ROW_BUDGETS["random_forest"], random_state=seed)),
        ]
    )


def _clip_sigma(X: np.ndarray) -> np.ndarray:
    """Clip standardised values to +-4 sigma, so that a few outliers do not squeeze MinMax's [0, 1]."""
    return np.clip(X, -4.0, 4.0)


def rbm(seed: int, *, tuned: dict[str, Any] | None = None) -> Pipeline:
    """The write-up's RBM approach, with a skip connection.

    StandardScaler -> clip to +-4 sigma -> MinMaxScaler to [0, 1] (what a Bernoulli RBM
    expects; clip=True keeps new rows' extremes inside) -> BernoulliRBM (64 hidden
    units) -> logistic regression.  The logistic regression sees the scaled inputs
    *and* the hidden units: fed the hidden units alone, the unsupervised RBM's code
    scored AUC 0.50 on a DSG-shaped synthetic set where the plain inputs score 0.76
    (it models the many weak features, not the label), so the skip connection is what
    lets the RBM's features add to a working model instead of replacing it.
    """
    hidden = BernoulliRBM(n_components=64, learning_rate=0.01, batch_size=32, n_iter=20, random_state=seed)
    inner = Pipeline(
        [
            ("features", FeatureUnion([("inputs", "passthrough"), ("rbm", hidden)])),
            ("logistic", LogisticRegression(C=1.0, max_iter=2000, random_state=seed)),
        ]
    )
    return Pipeline(
        [
            ("impute", _impute()),
            ("scale", StandardScaler()),
            ("clip", FunctionTransformer(_clip_sigma)),
            ("minmax", MinMaxScaler(clip=True)),
            ("model", RowBudget(inner, max_rows=params.ROW_BUDGETS["rbm"], random_state=seed)),
        ]
    )


def hist_gradient_boosting(seed: int, *, tuned: dict[str, Any] | None = None) -> Pipeline:
    # early_stopping=False: its internal random validation split would change the model
    # with the number of rows; a fixed number of slow iterations is steadier.
    return Pipeline(
        [
            (
                "model",
                HistGradientBoostingClassifier(
                    learning_rate=0.05,
                    max_iter=400,
                    max_leaf_nodes=31,
                    min_samples_leaf=100,
                    l2_regularization=1.0,
                    early_stopping=False,
                    random_state=seed,
                ),
            )
        ]
    )


def lightgbm(seed: int, *, tuned: dict[str, Any] | None = None) -> Pipeline:
    return Pipeline([("model", _lightgbm_estimator(seed))])


def lightgbm_tuned(seed: int, *, tuned: dict[str, Any] | None = None) -> Pipeline:
    """LightGBM with ``tuned`` (the Optuna study's best LightGBM keyword arguments) over the defaults."""
    return Pipeline([("model", _lightgbm_estimator(seed, tuned))])


def ensemble(seed: int, *, tuned: dict[str, Any] | None = None) -> Pipeline:
    unknown = [m for m in params.ENSEMBLE_MEMBERS if m not in MODELS or m == "ensemble"]
    if unknown or not params.ENSEMBLE_MEMBERS:
        raise PipelineError(
            f"ENSEMBLE_MEMBERS has unknown or invalid names {unknown}; valid: "
            + ", ".join(m for m in MODELS if m != "ensemble")
        )
    members = [(m, MODELS[m](seed, tuned=tuned)) for m in params.ENSEMBLE_MEMBERS]
    return Pipeline([("model", StackedEnsemble(members, random_state=seed))])


#: name -> factory(seed, *, tuned=None) -> fresh unfitted Pipeline (last step "model").
MODELS: dict[str, Factory] = {
    "logistic_regression": logistic_regression,
    "knn": knn,
    "svm": svm,
    "sgd": sgd,
    "decision_tree": decision_tree,
    "random_forest": random_forest,
    "rbm": rbm,
    "hist_gradient_boosting": hist_gradient_boosting,
    "lightgbm": lightgbm,
    "lightgbm_tuned": lightgbm_tuned,
    "ensemble": ensemble,
}

#: What each model's validation column is, for the ranking's "note".
NOTES: dict[str, str] = {
    "logistic_regression": "probability",
    "knn": "probability (share of the 100 nearest neighbours)",
    "svm": "probability (RBF SVC, Platt-calibrated by 3-fold CV)",
    "sgd": "probability (averaged SGD, logistic loss)",
    "decision_tree": "probability (leaf frequency)",
    "random_forest": "probability (mean leaf frequency)",
    "rbm": "probability (logistic regression on the scaled inputs and 64 RBM hidden units)",
    "hist_gradient_boosting": "probability",
    "lightgbm": "probability (fixed defaults)",
    "lightgbm_tuned": "probability (Optuna best parameters)",
    "ensemble": "probability (logistic stack of " + ", ".join(params.ENSEMBLE_MEMBERS) + "; weights from round 2)",
}


def row_budget(name: str) -> int | None:
    """The documented row cap of model ``name`` (``None`` = every row)."""
    return params.ROW_BUDGETS.get(name)


def fit_signature(pipeline: Pipeline, X: Any, y: Any) -> str:
    """sha256 of a pipeline's parameters and of the exact rows (values, column names, order) and labels."""
    h = hashlib.sha256()
    leaf = sorted((k, repr(v)) for k, v in pipeline.get_params(deep=True).items() if not hasattr(v, "get_params"))
    h.update(repr(leaf).encode())
    if hasattr(X, "columns"):
        h.update(repr(list(X.columns)).encode())
    for arr in (np.asarray(X), np.asarray(y)):
        h.update(arr.dtype.str.encode() + repr(arr.shape).encode())
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


def fit_model(
    pipeline: Pipeline,
    X: Any,
    y: Any,
    *,
    rounds: np.ndarray | None = None,
    fitted: dict[str, Pipeline] | None = None,
) -> Pipeline:
    """Fit ``pipeline`` and stamp it with :func:`fit_signature`; hand the ensemble its extra inputs.

    ``rounds`` (the examples' rounds) lets the ensemble hold out its latest round;
    ``fitted`` (pipelines fit earlier, e.g. by the bake-off) lets it reuse any member
    whose signature -- parameters, rows and labels -- matches the fit it needs.
    """
    if isinstance(pipeline[-1], StackedEnsemble):
        kw: dict[str, Any] = {}
        if rounds is not None:
            kw["model__rounds"] = np.asarray(rounds)
        if fitted:
            kw["model__fitted_members"] = list(fitted.values())
        pipeline.fit(X, y, **kw)
    else:
        pipeline.fit(X, y)
    pipeline.fit_signature_ = fit_signature(pipeline, X, y)
    return pipeline


def _fit_or_reuse(pipeline: Pipeline, X: Any, y: Any, pool: list[Pipeline]) -> tuple[Pipeline, bool]:
    """A pipeline of ``pool`` fit with the same parameters on the same rows, else ``pipeline`` fitted now."""
    if pool:
        signature = fit_signature(pipeline, X, y)
        for candidate in pool:
            if getattr(candidate, "fit_signature_", None) == signature:
                return candidate, True
    return fit_model(pipeline, X, y), False


def predict_scores(model: Any, X: Any) -> np.ndarray:
    """Probability of class 1, or a logistic squashing of the decision function, as float64 in [0, 1]."""
    if hasattr(model, "predict_proba"):
        return np.asarray(model.predict_proba(X)[:, 1], dtype=np.float64)
    margin = np.asarray(model.decision_function(X), dtype=np.float64)
    return 1.0 / (1.0 + np.exp(-margin))


def rows_used(pipeline: Pipeline, n_rows: int) -> int:
    """Rows the fitted pipeline's model was fit on (its row budget's subsample, else ``n_rows``)."""
    return int(getattr(pipeline[-1], "rows_used_", n_rows))
