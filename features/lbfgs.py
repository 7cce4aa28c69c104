"""A small deterministic L-BFGS (numpy only, one thread) for the full-batch fits of the feature groups (fm)."""

from __future__ import annotations

import numpy as np

__all__ = ["LbfgsResult", "lbfgs"]


class LbfgsResult:
    def __init__(self, x, fun, nit, nfev, message):
        self.x, self.fun, self.nit, self.nfev, self.message = x, fun, nit, nfev, message


def lbfgs(
    fun, x0: np.ndarray, *, max_iter: int, memory: int, diag: np.ndarray | None = None, tol: float = 1e-7
) -> LbfgsResult:
    """Minimize ``fun`` (returning value and gradient) by L-BFGS with a backtracking Armijo line search.

    Deterministic: plain numpy on one thread, a fixed number of iterations at most.
    The two-loop direction starts from ``diag`` (a diagonal inverse-Hessian guess) scaled by
    the latest curvature pair; the step is 1, quartered until the Armijo condition holds;
    pairs with non-positive curvature are skipped.
    """
    x = x0.copy()
    f, g = fun(x)
    ss, ys, rhos = [], [], []
    nfev = 1
    msg = "max_iter"
    nit = 0
    while nit < max_iter:
        nit += 1
        q = g.copy()
        alphas = []
        for s_, y_, r_ in zip(reversed(ss), reversed(ys), reversed(rhos), strict=True):
            a = r_ * np.dot(s_, q)
            q -= a * y_
            alphas.append(a)
        if diag is not None:
            q *= diag
            if ss:
                q *= np.dot(ss[-1], ys[-1]) / np.dot(ys[-1], diag * ys[-1])
        elif ss:
            q *= np.dot(ss[-1], ys[-1]) / np.dot(ys[-1], ys[-1])
        else:
            q *= 1.0 / max(np.sqrt(np.dot(g, g)), 1e-12)
        for (s_, y_, r_), a in zip(zip(ss, ys, rhos, strict=True), reversed(alphas), strict=True):
            b = r_ * np.dot(y_, q)
            q += (a - b) * s_
        d = -q
        gd = float(np.dot(g, d))
        if gd >= 0:  # not a descent direction: restart from the gradient
            ss, ys, rhos = [], [], []
            d = -g / max(np.sqrt(np.dot(g, g)), 1e-12)
            gd = float(np.dot(g, d))
        step = 1.0
        while True:
            xn = x + step * d
            fn, gn = fun(xn)
            nfev += 1
            if fn <= f + 1e-4 * step * gd or step < 1e-8:
                break
            step *= 0.25
        if fn > f:
            msg = "line search failed"
            break
        s_ = xn - x
        y_ = gn - g
        sy = float(np.dot(s_, y_))
        if sy > 1e-10 * float(np.dot(y_, y_)):
            ss.append(s_)
            ys.append(y_)
            rhos.append(1.0 / sy)
            if len(ss) > memory:
                ss.pop(0), ys.pop(0), rhos.pop(0)
        done = f - fn <= tol * max(abs(fn), 1.0)
        x, f, g = xn, fn, gn
        if done:
            msg = "converged"
            break
    return LbfgsResult(x, f, nit, nfev, msg)
