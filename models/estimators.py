"""Meta-estimators of the bake-off: row budgets, a forest with ordered votes, the stacked ensemble."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin, clone
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import SplineTransformer
from sklearn.utils.metaestimators import available_if
from sklearn.utils.parallel import Parallel, delayed
from sklearn.utils.validation import check_is_fitted

from models.fitting import fit_or_reuse, predict_scores

__all__ = [
    "stratified_subsample",
    "RowBudget",
    "OrderedForest",
    "SPLINE_MIN_DISTINCT",
    "SplineBasis",
    "DistinctColumns",
    "inner_holdout",
    "LATER_EXTRA",
    "StackedEnsemble",
]


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


#: A feature gets a spline basis only with at least this many distinct values on the fit rows.
#: Fewer (a flag, a part of the day) and the basis columns are linear in one another: each of a
#: binary feature's three quadratic B-splines is a + b x, two of them redundant.  At full size
#: (~280,000 rows) such columns left Newton's Hessian with rcond ~1e-7 and the solver fell back
#: to an unconverged L-BFGS; such a feature enters linearly instead.
SPLINE_MIN_DISTINCT = 10


class SplineBasis(TransformerMixin, BaseEstimator):
    """B-spline basis of each column with at least ``min_distinct`` values; the others as they are.

    Output (float64, so a Newton step's Hessian is summed in double precision): the basis
    columns of the many-valued columns in their order (``SplineTransformer``'s, uniform knots,
    no bias column), then the few-valued ones.  Parameters rather than a function column
    selector, so the pipeline's parameters (the fit cache's key) print the same in every process.
    """

    def __init__(self, n_knots: int = 3, degree: int = 2, min_distinct: int = SPLINE_MIN_DISTINCT) -> None:
        self.n_knots = n_knots
        self.degree = degree
        self.min_distinct = min_distinct

    def fit(self, X: Any, y: Any = None) -> SplineBasis:
        X = np.asarray(X, dtype=np.float64)
        self.n_features_in_ = X.shape[1]
        self.many_ = np.array([np.unique(X[:, j]).size >= self.min_distinct for j in range(X.shape[1])], dtype=bool)
        self.spline_ = None
        if self.many_.any():
            spline = SplineTransformer(n_knots=self.n_knots, degree=self.degree, include_bias=False)
            self.spline_ = spline.fit(X[:, self.many_])
        return self

    def transform(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "many_")
        X = np.asarray(X, dtype=np.float64)
        basis = self.spline_.transform(X[:, self.many_]) if self.spline_ is not None else X[:, :0]
        return np.hstack([basis, X[:, ~self.many_]])


class DistinctColumns(TransformerMixin, BaseEstimator):
    """Keep the first of each group of identical columns (on the fit rows), in their order.

    Missing-value flags come in groups: every feature of a history group is missing together
    for a user with no history, so their indicators are one column repeated, which a linear
    model's Hessian can only tell apart through the penalty.
    """

    def fit(self, X: Any, y: Any = None) -> DistinctColumns:
        X = np.asarray(X)
        self.n_features_in_ = X.shape[1]
        # Each column's bytes as a dict key (exact comparison): ~40x faster than
        # np.unique(axis=1) on 280,000 rows, which sorts the columns as one record each.
        first: dict[bytes, int] = {}
        for j in range(X.shape[1]):
            first.setdefault(np.ascontiguousarray(X[:, j]).tobytes(), j)
        self.keep_ = np.array(sorted(first.values()), dtype=np.int64)
        return self

    def transform(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "keep_")
        return np.asarray(X)[:, self.keep_]

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self, "keep_")
        names = np.asarray(
            input_features if input_features is not None else [f"x{i}" for i in range(self.n_features_in_)],
            dtype=object,
        )
        return names[self.keep_]


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


#: Round code of an extra row that comes after its own user's example of the round an inner
#: holdout scores (see :meth:`pipeline.data.dataset.Matrix.inner_rounds`): fit on at the end,
#: never while that round is held out, as the rolling folds do.
LATER_EXTRA = 0


def inner_holdout(rounds: np.ndarray | None, y: np.ndarray, *, seed: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Split rows for an inner holdout: hold out the latest round present, fit on the older rows.

    With the training rounds (2..K and extra rows -1) this is "fit on rounds >= 3 and
    the extras before each user's round 2, score round 2", which mirrors the validation round one step back in time.
    Rows coded :data:`LATER_EXTRA` (a user's extra rows after their held-out example) are
    in neither part: fitting on them would show the model that user's future.
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
            fit = ~hold & (rounds != LATER_EXTRA)
            if len(np.unique(y[hold])) == 2 and len(np.unique(y[fit])) == 2:
                return np.flatnonzero(fit), np.flatnonzero(hold)
    hold_idx = stratified_subsample(y, max(2, len(y) // 5), seed=seed)
    fit_mask = np.ones(len(y), dtype=bool)
    fit_mask[hold_idx] = False
    if len(np.unique(y[fit_mask])) < 2:
        return None
    return np.flatnonzero(fit_mask), hold_idx


def logistic_newton(Z: np.ndarray, y: np.ndarray, *, C: float = 1.0, max_iter: int = 100) -> tuple[np.ndarray, float]:
    """L2 logistic regression (scikit-learn's objective: ``C`` x log-loss sum + half the squared
    weights, intercept free) solved by damped Newton steps to machine precision.

    For the stack's few columns.  scikit-learn's L-BFGS stops on a relative change of the loss,
    where the weights can still be ~1e-7 from the optimum; Newton's method lands on the optimum
    itself, so the weights are a function of the members' predictions alone.
    """
    X = np.column_stack([np.asarray(Z, dtype=np.float64), np.ones(len(Z))])
    y = np.asarray(y, dtype=np.float64)
    reg = np.full(X.shape[1], 1.0 / C)
    reg[-1] = 0.0

    def loss(w: np.ndarray) -> float:
        m = X @ w
        return float(np.sum(np.logaddexp(0.0, m) - y * m) + 0.5 * np.sum(reg * w * w))

    w = np.zeros(X.shape[1])
    f = loss(w)
    for _ in range(max_iter):
        p = 1.0 / (1.0 + np.exp(-(X @ w)))
        g = X.T @ (p - y) + reg * w
        H = (X * (p * (1.0 - p))[:, None]).T @ X + np.diag(reg)
        step = np.linalg.solve(H, g)
        t = 1.0
        while t > 1e-8 and loss(w - t * step) > f:
            t /= 2
        w = w - t * step
        f = loss(w)
        if np.max(np.abs(t * step)) < 1e-13:
            break
    return w[:-1], float(w[-1])


class StackedEnsemble(ClassifierMixin, BaseEstimator):
    """Logistic-regression stack of member pipelines, weighted WITHOUT the caller's holdout labels.

    ``fit(X, y, rounds=r)``: the members are fit on the older rounds of the rows given
    and predict the latest round present (:func:`inner_holdout`; during the bake-off
    that is round 2, never round 1); a logistic regression on the members' logits is
    fit to those predictions; members that get a non-positive weight are dropped and
    the stack refit, so the blend stays a positive combination.  Finally the kept
    members are refit on every row given.  The output is a calibrated probability.
    """

    #: fit_model passes the examples' rounds and earlier fits (see models.fitting.fit_model).
    takes_rounds = True

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
            inner = [fit_or_reuse(clone(est), X_fit, y[fit_idx], pool) for _, est in self.members]
            Z = np.column_stack([_logit(predict_scores(model, X_hold)) for model, _ in inner])
            while keep:
                w, b = logistic_newton(Z[:, keep], y[hold_idx], C=self.C)
                if (w > 0).all():
                    coef, intercept = w, b
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
        #: The members fit on the older rows (``[]`` without an inner holdout): the rolling
        #: validation's next fold fits the stack on exactly those rows, and reuses them.
        self.inner_estimators_ = [model for model, _ in inner]
        self.kept_ = [names[i] for i in keep]
        self.weights_ = dict(zip(self.kept_, map(float, coef), strict=True))
        self.intercept_ = intercept
        final = [fit_or_reuse(clone(self.members[i][1]), X, y, pool) for i in keep]
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
