"""Fitting and scoring any model of the registry: signatures, reuse of identical fits, scores in [0, 1]."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

__all__ = ["fit_signature", "fit_model", "fit_or_reuse", "predict_scores", "rows_used", "one_blas_thread"]


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """BLAS on one thread while inside (a context manager and a decorator); the count restored after.

    A BLAS call beside another model's fit (the bake-off fits two at a time in threads) split
    its sums differently from one run to the next, so the logistic regression's coefficients
    moved in the last bits between two runs given the same rows.  The models that use both
    cores do it with OpenMP (LightGBM, HistGradientBoosting) or joblib, not BLAS.

    Every entry point that fits or refits a model wears it (``train.run``,
    ``submit.load_or_refit``, the recommender's evaluation refit), so a Python caller gets
    the bytes ``make`` gets.  Enter it on the thread that drives the work: the threads it
    starts run under the limit, and the count is only changed by the entering thread
    (OpenBLAS 0.3.31 ignores a count set from a worker thread once the main thread has set
    one).  Entries nest: an inner one restores the outer one's limit, the outermost the
    original count.
    """
    with threadpool_limits(limits=1, user_api="blas"):
        yield


_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def _stable_repr(value: Any) -> str:
    """``repr`` without memory addresses: a function prints as its module and name.

    ``repr`` of a function (a ``FunctionTransformer``'s ``func``) holds its address, which
    differs from one process to the next, so the key of a pipeline holding one never matched
    a fit cached by an earlier ``make train`` and the RBM was refit on every run.
    """
    if callable(value) and hasattr(value, "__qualname__") and hasattr(value, "__module__"):
        return f"<callable {value.__module__}.{value.__qualname__}>"
    return _ADDRESS.sub("", repr(value))


def fit_signature(pipeline: Pipeline, X: Any, y: Any) -> str:
    """sha256 of a pipeline's parameters and of the exact rows (values, column names, order) and labels."""
    h = hashlib.sha256()
    leaf = sorted(
        (k, _stable_repr(v)) for k, v in pipeline.get_params(deep=True).items() if not hasattr(v, "get_params")
    )
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
    """Fit ``pipeline`` and stamp it with :func:`fit_signature`; hand a stack its extra inputs.

    ``rounds`` (the examples' rounds) lets a stack hold out its latest round; ``fitted``
    (pipelines fit earlier, e.g. by the bake-off) lets it reuse any member whose
    signature -- parameters, rows and labels -- matches the fit it needs.  A final step
    takes them when it declares ``takes_rounds = True`` (the stacked ensemble does).
    """
    if getattr(pipeline[-1], "takes_rounds", False):
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


def fit_or_reuse(pipeline: Pipeline, X: Any, y: Any, pool: list[Pipeline]) -> tuple[Pipeline, bool]:
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
