"""The model registry: fresh seeded pipelines, scores in [0, 1], identical refits, row budgets."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline

from core.errors import PipelineError
from core.settings import ModelSettings
from models.estimators import (
    DistinctColumns,
    OrderedForest,
    RowBudget,
    StackedEnsemble,
    inner_holdout,
    stratified_subsample,
)
from models.fitting import fit_model, fit_signature, predict_scores, rows_used
from models.registry import MODELS, ModelSpec, model_names

TUNED = {"learning_rate": 0.1, "num_leaves": 7, "min_child_samples": 5, "n_estimators": 30, "subsample_freq": 1}


#: Budgets below the tiny set's size, so the subsampling path runs; a two-member ensemble keeps it quick.
SETTINGS = ModelSettings(
    rows_knn=150, rows_svm=120, rows_rf=200, rows_rbm=200, ensemble_members=("lightgbm_tuned", "logistic_regression")
)


def _build(name: str, seed: int = 0, **kw) -> Pipeline:
    return MODELS[name].build(dataclasses.replace(SETTINGS, seed=seed), **kw)


def _tiny(n: int = 320, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5)).astype(np.float32)
    X[rng.random((n, 5)) < 0.1] = np.nan  # models must cope with missing values
    y = (np.nan_to_num(X[:, 0]) + 0.5 * np.nan_to_num(X[:, 1]) + rng.normal(0, 1, n) > 0).astype(np.int8)
    rounds = np.resize(np.array([2, 3, 4, -1], dtype=np.int16), n)
    return pd.DataFrame(X, columns=[f"g_f{i}" for i in range(5)]), y, rounds


@pytest.mark.parametrize("name", list(MODELS))
def test_factory_builds_fresh_seeded_pipeline_that_scores_in_unit_interval(name: str) -> None:
    X, y, rounds = _tiny()
    a, b = _build(name, 7, tuned=TUNED), _build(name, 7, tuned=TUNED)
    assert isinstance(a, Pipeline) and a is not b and a.steps[-1][0] == "model"
    fitted = fit_model(a, X.iloc[:240], y[:240], rounds=rounds[:240])
    p = predict_scores(fitted, X.iloc[240:])
    assert p.shape == (80,) and p.dtype == np.float64
    assert np.isfinite(p).all() and p.min() >= 0 and p.max() <= 1
    # Same data + seed: the same predictions bit for bit, from a fresh factory call and from a clone.
    again = predict_scores(fit_model(b, X.iloc[:240], y[:240], rounds=rounds[:240]), X.iloc[240:])
    cloned = predict_scores(fit_model(clone(a), X.iloc[:240], y[:240], rounds=rounds[:240]), X.iloc[240:])
    np.testing.assert_array_equal(p, again)
    np.testing.assert_array_equal(p, cloned)
    assert isinstance(MODELS[name], ModelSpec) and MODELS[name].note and MODELS[name].summary


@pytest.mark.parametrize(("name", "budget"), [("knn", 150), ("svm", 120), ("random_forest", 200), ("rbm", 200)])
def test_row_budget_is_applied_and_recorded(name: str, budget: int) -> None:
    X, y, _ = _tiny()
    fitted = fit_model(_build(name, 0), X, y)
    assert rows_used(fitted, len(y)) == budget
    assert rows_used(fit_model(_build("logistic_regression", 0), X, y), len(y)) == len(y)


def test_stratified_subsample_keeps_class_shares_exactly() -> None:
    y = np.array([0] * 30 + [1] * 70)
    idx = stratified_subsample(y, 10, seed=3)
    assert len(idx) == 10 and (np.diff(idx) > 0).all()
    assert (y[idx] == 0).sum() == 3 and (y[idx] == 1).sum() == 7  # 30% and 70% of 10
    np.testing.assert_array_equal(idx, stratified_subsample(y, 10, seed=3))
    np.testing.assert_array_equal(stratified_subsample(y, 100, seed=3), np.arange(100))
    np.testing.assert_array_equal(stratified_subsample(y, None, seed=3), np.arange(100))


def test_row_budget_wrapper_delegates_and_clones() -> None:
    X, y, _ = _tiny()
    X = np.nan_to_num(X.to_numpy())
    wrapped = RowBudget(LogisticRegression(), max_rows=100, random_state=1).fit(X, y)
    assert wrapped.rows_used_ == 100 and list(wrapped.classes_) == [0, 1]
    assert wrapped.predict_proba(X).shape == (len(y), 2)
    assert clone(wrapped).get_params()["max_rows"] == 100


def test_ordered_forest_matches_single_threaded_forest() -> None:
    X, y, _ = _tiny()
    ours = OrderedForest(n_estimators=20, n_jobs=2, random_state=4).fit(X, y)
    ref = RandomForestClassifier(n_estimators=20, n_jobs=1, random_state=4).fit(X, y)
    np.testing.assert_array_equal(ours.predict_proba(X), ref.predict_proba(X))


def test_inner_holdout_holds_out_the_latest_round_present() -> None:
    y = np.array([0, 1, 0, 1, 0, 1, 1, 0])
    rounds = np.array([2, 2, 3, 3, 4, 4, -1, -1])
    fit, hold = inner_holdout(rounds, y, seed=0)
    np.testing.assert_array_equal(hold, [0, 1])  # round 2: the latest training round
    np.testing.assert_array_equal(fit, [2, 3, 4, 5, 6, 7])
    # On all train examples (the final refit) round 1 is the latest.
    fit, hold = inner_holdout(np.array([1, 1, 2, 2, 3, 3, -1, -1]), y, seed=0)
    np.testing.assert_array_equal(hold, [0, 1])
    # Without rounds: a seeded stratified fifth.
    fit, hold = inner_holdout(None, np.array([0, 1] * 10), seed=0)
    assert len(hold) == 4 and len(fit) == 16 and set(fit).isdisjoint(hold)
    assert inner_holdout(rounds, np.zeros(8, dtype=int), seed=0) is None


def test_the_spline_logistic_regression_bends_where_the_plain_one_draws_a_line() -> None:
    # The log-odds are 2|x0| - 1.2 (a V around the median) plus a straight 0.5 x1: the plain
    # logistic regression sees no slope in x0; the spline basis on x0's quantiles follows the V.
    rng = np.random.default_rng(5)
    n = 4000
    X = pd.DataFrame({"g_x0": rng.normal(size=n), "g_x1": rng.normal(size=n), "g_const": np.ones(n)})
    X.loc[rng.random(n) < 0.05, "g_x1"] = np.nan
    margin = 2 * np.abs(X["g_x0"].to_numpy()) - 1.2 + 0.5 * np.nan_to_num(X["g_x1"].to_numpy())
    y = (rng.random(n) < 1 / (1 + np.exp(-margin))).astype(np.int8)
    fit, test = slice(0, 3000), slice(3000, None)
    spline = fit_model(_build("spline_logistic_regression"), X.iloc[fit], y[fit])
    plain = fit_model(_build("logistic_regression"), X.iloc[fit], y[fit])
    truth = roc_auc_score(y[test], margin[test])
    auc_spline = roc_auc_score(y[test], predict_scores(spline, X.iloc[test]))
    auc_plain = roc_auc_score(y[test], predict_scores(plain, X.iloc[test]))
    assert auc_spline > truth - 0.01 and auc_plain < truth - 0.1
    # Newton's method converged.  The design: x0's and x1's three basis columns, the constant
    # column entering linearly (one value), x1's missing flag; the constant one dropped.
    assert spline[-1].n_iter_[0] < 20
    assert spline.named_steps["constant"].get_support().tolist() == [True] * 6 + [False, True]


def test_the_spline_basis_is_full_rank_on_flags_and_repeated_missing_patterns() -> None:
    # At full size (~280,000 float32 rows) the first spline model's design had collinear columns
    # (three B-splines of a binary flag are affine in one another; features missing together gave
    # one flag many times) and Newton's Hessian fell below float32 precision, so scikit-learn
    # switched to an unconverged L-BFGS.  Here: six many-valued columns (two of them missing
    # together, one a monotone copy of another), two flags and a four-level column.
    rng = np.random.default_rng(3)
    n = 60_000
    x0 = rng.normal(size=n)
    gone = rng.random(n) < 0.2
    X = pd.DataFrame(
        {
            "g_x0": x0,
            "g_exp_x0": np.exp(x0),
            "g_x1": rng.normal(size=n),
            "g_x2": rng.normal(size=n),
            "g_m1": np.where(gone, np.nan, rng.normal(size=n)),
            "g_m2": np.where(gone, np.nan, rng.normal(size=n)),
            "g_flag1": (rng.random(n) < 0.3).astype(float),
            "g_flag2": (rng.random(n) < 0.6).astype(float),
            "g_part": rng.integers(0, 4, n).astype(float),
        }
    ).astype(np.float32)
    margin = np.sin(2 * x0) + 0.8 * X["g_flag1"].to_numpy() - 0.5 * gone
    y = (rng.random(n) < 1 / (1 + np.exp(-margin))).astype(np.int8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # LinAlgWarning and ConvergenceWarning fail the test
        model = fit_model(_build("spline_logistic_regression"), X, y)
    # 6 many-valued x 3 basis columns + 3 few-valued columns entering linearly + 1 missing flag
    # (g_m1's and g_m2's are one pattern) = 22, in float64, Newton in a handful of steps.
    assert model.named_steps["scale"].n_features_in_ == 6 * 3 + 3 + 1
    assert model.named_steps["scale"].mean_.dtype == np.float64
    assert model[-1].n_iter_[0] < 10


def test_distinct_columns_keeps_the_first_of_each_repeated_column() -> None:
    X = np.array([[1, 0, 1, 5, 0], [0, 1, 0, 6, 1], [1, 1, 1, 7, 1]])
    keep = DistinctColumns().fit(X)
    np.testing.assert_array_equal(keep.keep_, [0, 1, 3])
    np.testing.assert_array_equal(keep.transform(X[:1]), [[1, 0, 5]])
    assert keep.get_feature_names_out(["a", "b", "c", "d", "e"]).tolist() == ["a", "b", "d"]
    assert DistinctColumns().fit(np.zeros((3, 0))).transform(np.zeros((2, 0))).shape == (2, 0)


def test_ensemble_weights_come_from_the_inner_holdout_not_the_caller() -> None:
    X, y, rounds = _tiny()
    model = fit_model(_build("ensemble", 0, tuned=TUNED), X, y, rounds=rounds)
    stack = model[-1]
    assert isinstance(stack, StackedEnsemble)
    assert stack.holdout_rows_ == int((rounds == 2).sum())
    assert stack.kept_ and all(w > 0 for w in stack.weights_.values())


def test_ensemble_rejects_unknown_members() -> None:
    with pytest.raises(PipelineError, match="nope"):
        MODELS["ensemble"].build(dataclasses.replace(SETTINGS, ensemble_members=("lightgbm", "nope")))


def test_ensemble_reuses_members_fit_on_the_same_rows_without_changing_a_bit() -> None:
    X, y, rounds = _tiny()
    members = {m: fit_model(_build(m, 0, tuned=TUNED), X, y) for m in SETTINGS.ensemble_members}
    reused = fit_model(_build("ensemble", 0, tuned=TUNED), X, y, rounds=rounds, fitted=members)
    fresh = fit_model(_build("ensemble", 0, tuned=TUNED), X, y, rounds=rounds)
    assert reused[-1].reused_ == reused[-1].kept_ and fresh[-1].reused_ == []
    assert all(any(e is m for m in members.values()) for e in reused[-1].estimators_)
    np.testing.assert_array_equal(predict_scores(reused, X), predict_scores(fresh, X))
    # Refit on more rows (a round 1 added): the inner fits on the old rows are the members above.
    X2 = pd.concat([X, X.iloc[:80]], ignore_index=True)
    y2, r2 = np.r_[y, y[:80]], np.r_[rounds, np.ones(80, dtype=np.int16)]
    refit = fit_model(_build("ensemble", 0, tuned=TUNED), X2, y2, rounds=r2, fitted=members)
    assert refit[-1].reused_inner_ == list(SETTINGS.ensemble_members) and refit[-1].reused_ == []
    fresh2 = fit_model(_build("ensemble", 0, tuned=TUNED), X2, y2, rounds=r2)
    np.testing.assert_array_equal(predict_scores(refit, X), predict_scores(fresh2, X))


def test_fit_signature_is_the_same_in_another_process() -> None:
    # The fit cache is read back by a later `make train`: a key that held a function's address
    # (the RBM's clipping step) never matched there, and that model was refit on every run.
    X, y, _ = _tiny(40)
    here = {name: fit_signature(MODELS[name].build(SETTINGS, tuned=TUNED), X, y) for name in MODELS}
    code = (
        "import json, sys\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "from models.fitting import fit_signature\n"
        "from models.registry import MODELS\n"
        "from tests.test_models import SETTINGS, TUNED, _tiny\n"
        "X, y, _ = _tiny(40)\n"
        "print(json.dumps({n: fit_signature(MODELS[n].build(SETTINGS, tuned=TUNED), X, y) for n in MODELS}))\n"
    )
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code, str(root)], capture_output=True, text=True, check=True, cwd=root)
    assert json.loads(out.stdout) == here


def test_fit_signature_tells_parameters_rows_and_labels_apart() -> None:
    X, y, _ = _tiny()
    base = fit_model(_build("logistic_regression", 0), X, y).fit_signature_
    assert base == fit_model(_build("logistic_regression", 0), X, y).fit_signature_
    assert base != fit_model(_build("logistic_regression", 0), X.iloc[1:], y[1:]).fit_signature_
    assert base != fit_model(_build("logistic_regression", 0), X, 1 - y).fit_signature_
    assert base != fit_model(_build("sgd", 0), X, y).fit_signature_
    other = _build("logistic_regression", 0).set_params(model__C=2.0)
    assert base != fit_model(other, X, y).fit_signature_


def test_row_budget_is_read_from_the_settings_field_the_spec_names() -> None:
    assert MODELS["knn"].row_budget(SETTINGS) == 150 and MODELS["lightgbm"].row_budget(SETTINGS) is None
    assert {n for n, spec in MODELS.items() if spec.budget} == set(SETTINGS.row_budgets)


def test_model_names_checks_a_requested_subset_and_keeps_registry_order() -> None:
    assert model_names(()) == list(MODELS)
    assert model_names(("lightgbm", "logistic_regression")) == ["logistic_regression", "lightgbm"]
    with pytest.raises(PipelineError, match="MODELS: unknown model.s. nope; valid: logistic_regression"):
        model_names(("lightgbm", "nope"))


def test_the_stacks_logistic_solver_lands_on_the_optimum_whatever_the_memory_layout() -> None:
    from sklearn.linear_model import LogisticRegression

    from models.estimators import logistic_newton

    rng = np.random.default_rng(0)
    Z = rng.normal(size=(1500, 3))
    y = (Z @ np.array([1.0, 0.5, -0.3]) + rng.logistic(size=1500) > 0).astype(int)
    w, b = logistic_newton(Z, y, C=1.0)
    ref = LogisticRegression(C=1.0, tol=1e-12, max_iter=10_000).fit(Z, y)
    assert np.allclose(w, ref.coef_.ravel(), atol=1e-6) and abs(b - ref.intercept_[0]) < 1e-6
    # The same values one element further into a buffer (another alignment): the same bits.
    buf = np.empty(Z.size + 1)
    shifted = buf[1:].reshape(Z.shape)
    shifted[:] = Z
    w2, b2 = logistic_newton(shifted, y, C=1.0)
    assert np.array_equal(w, w2) and b == b2
    # Stronger regularisation shrinks every weight.
    w_small, _ = logistic_newton(Z, y, C=0.001)
    assert (np.abs(w_small) < np.abs(w)).all()


def _blas_threads() -> int:
    from threadpoolctl import threadpool_info

    return max(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")


class _BlasProbe(ClassifierMixin, BaseEstimator):
    """Records BLAS's thread count while it is fit and while it predicts."""

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        self.fit_threads_ = _blas_threads()
        return self

    def predict_proba(self, X):
        self.predict_threads_ = _blas_threads()
        return np.full((len(X), 2), 0.5)


@pytest.fixture
def blas_threads_at_start() -> int:
    n = _blas_threads()
    if n < 2:
        pytest.skip("BLAS starts on one thread here: nothing to limit")
    return n


def test_entry_points_run_blas_on_one_thread_in_the_threads_they_start_and_restore_it_after(
    blas_threads_at_start,
) -> None:
    import threading

    from models.fitting import one_blas_thread

    X, y = np.zeros((4, 1)), np.array([0, 1, 0, 1])
    models = [Pipeline([("model", _BlasProbe())]) for _ in range(2)]

    @one_blas_thread()
    def entry_point() -> None:  # like train.run: the bake-off fits in threads it starts
        threads = [threading.Thread(target=fit_model, args=(m, X, y)) for m in models]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        with one_blas_thread():  # a nested entry (a refit helper) leaves the limit in place
            pass
        predict_scores(models[0], X)

    entry_point()
    assert [m[-1].fit_threads_ for m in models] == [1, 1]
    assert models[0][-1].predict_threads_ == 1
    assert _blas_threads() == blas_threads_at_start


def test_train_submit_and_the_recommender_evaluation_refit_wear_the_blas_limit() -> None:
    from models.fitting import one_blas_thread
    from pipeline import recommend_eval, submit, train

    def wears_limit(fn) -> bool:  # decorated by one_blas_thread(): its context manager sits in the closure
        cells = [c.cell_contents for c in (fn.__closure__ or ())]
        return any(getattr(c, "func", None) is one_blas_thread.__wrapped__ for c in cells)

    assert not wears_limit(train.bakeoff)  # the check tells a bare function apart
    for fn in (train.run, submit.load_or_refit, recommend_eval._winner_without_round1):
        assert wears_limit(fn), fn.__qualname__
