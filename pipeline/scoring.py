"""Scores of predictions on labelled rows: ROC AUC with seeded bootstrap intervals, log loss, Brier, accuracy.

The bootstrap is vectorised: a resample is a vector of counts over the rows, and the
AUC of every resample comes from one pass over the rows sorted by score.  Two models
scored on the SAME resamples give a paired interval for their difference
(:func:`paired_auc_delta`): what the report uses to say whether a gap is noise.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, brier_score_loss, log_loss, roc_auc_score

__all__ = ["bootstrap_auc", "score_predictions", "paired_auc_delta", "bootstrap_counts"]


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
    out = np.empty(n_boot, dtype=np.float64)
    for b0, counts in bootstrap_counts(n, n_boot=n_boot, seed=seed, chunk=chunk):
        # Drawing positions of the sorted arrays is the same as drawing rows: all are equally likely.
        out[b0 : b0 + len(counts)] = _auc_from_counts(counts, y_sorted, starts)
    return out


def bootstrap_counts(n: int, *, n_boot: int, seed: int, chunk: int = 50):
    """Yield ``(first resample, counts)``: chunks of seeded resamples of ``n`` rows as per-row counts."""
    rng = np.random.default_rng(seed)
    for b0 in range(0, n_boot, chunk):
        m = min(chunk, n_boot - b0)
        draws = rng.integers(0, n, size=(m, n)) + (np.arange(m, dtype=np.int64) * n)[:, None]
        yield b0, np.bincount(draws.ravel(), minlength=m * n).reshape(m, n)


def paired_auc_delta(
    y: np.ndarray, p: np.ndarray, q: np.ndarray, *, n_boot: int, seed: int, chunk: int = 50
) -> tuple[float, float, float]:
    """``AUC(p) - AUC(q)`` on the same rows, and its 95% interval over the same seeded resamples.

    Both models see identical resamples, so the interval is that of the difference itself
    (much narrower than two separate intervals when the models agree on most rows).
    """
    y = np.asarray(y, dtype=np.float64)
    n = len(y)
    sorted_ = []
    for s in (np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)):
        order = np.argsort(s, kind="stable")
        ss = s[order]
        sorted_.append((order, y[order], np.flatnonzero(np.r_[True, ss[1:] != ss[:-1]])))
    deltas = np.empty(n_boot, dtype=np.float64)
    for b0, counts in bootstrap_counts(n, n_boot=n_boot, seed=seed, chunk=chunk):
        a = [_auc_from_counts(counts[:, order], ys, starts) for order, ys, starts in sorted_]
        deltas[b0 : b0 + len(counts)] = a[0] - a[1]
    lo, hi = np.nanpercentile(deltas, [2.5, 97.5])
    return float(roc_auc_score(y, p) - roc_auc_score(y, q)), float(lo), float(hi)


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
