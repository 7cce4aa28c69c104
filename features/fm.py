"""Factorization machine on listen/skip labels: this user's taste for this track, album, artist, genre.

The DSG17 finalists' "out-of-fold FM predictions", with *out of time* for out of fold.

Model: a logistic FM whose item side is the sum of its fields,

    logit = w0 + b_user + b_media + b_album + b_artist + b_genre + b_listen_type + b_context + b_platform
            + <U_user, V_media + V_album + V_artist + V_genre>,

rank ``RANK``, L2 penalties (a latent vector's grows with the square root of its entity's rows:
``L2_COUNT_POWER``), fit on the ``is_listened`` labels (not play counts) of every
history row before the snapshot (rows of one user, item and context are summed into
counts) by a diagonally preconditioned L-BFGS (``_lbfgs``: numpy and scipy.sparse only, one
thread, deterministic).  A track with fewer than ``MIN_MEDIA_USERS`` users before the
snapshot has no vector of its own; a track the snapshot never saw is scored from its
album, artist and genre, which is what the fields are for.

Snapshots: the weekly calendar grid of features/cf.py (every ``SNAPSHOT_STEP`` weeks).  The
snapshot at ``T_s`` is fit on rows with ``ts < T_s``; a target at ``t`` uses the latest fit
``T_s <= t``.  Snapshots are nested, so each fit is warm-started from the previous one.
Which cells are fit is a rule on past rows only (``_chain``), so a target's values never
depend on later rows or on which other targets are computed, and a snapshot is a function of
the history alone: it is fit once per history (:meth:`History.memo`, kept in
data/processed/cache), and the test build, which the Makefile runs after the train build,
reads the snapshots instead of fitting them again.  At "now" (the recommender,
:mod:`features.now`) the snapshot in force is kept with ids instead of codes
(:func:`fm_now_state`) and the user is folded in from their own rows: the same numbers.

Fold-in (the user side as of ``t``): the snapshot's ``[U_u, b_u]`` misses the user's rows in
``[T_s, t)``, which are the most recent ones.  With the item side fixed, one Newton (IRLS)
step of the user's own logistic problem from ``theta0 = [U_u, b_u]`` (zero for a user the
snapshot does not know), over all the user's rows strictly before ``t``::

    x_i = [V_item_i, 1],  p_i = sigmoid(a_i + theta0 . x_i),  a_i = w0 + item and context biases
    theta = theta0 + (sum p_i (1 - p_i) x_i x_i^T + Lambda)^-1 (sum (y_i - p_i) x_i - Lambda theta0)

The snapshot solution zeroes the gradient on its own rows, so this weighs the new rows
against the evidence of the old ones.  The per-row statistics are additive, so each
target's sums come from block sums over its user's range (the trick of features/cf.py),
users processed in chunks of ``FOLD_CHUNK_ROWS`` rows.

Outputs (NaN where no snapshot was fit, or the user or every item field is unknown to it):

- ``fm_p``: the snapshot model's listen probability for this user, item and context.
- ``fm_taste``: the whole interaction ``<U_u, V_item>``; ``fm_user_media``, ``fm_user_album``,
  ``fm_user_artist``, ``fm_user_genre``: its terms, one per field (NaN if that field is unknown).
- ``fm_item_bias``: the sum of the item's biases: its quality net of who plays it.
- ``fm_user_bias``: the user's own bias in the snapshot.
- ``fm_fold_p``, ``fm_fold_taste``, ``fm_fold_bias``: the same with the folded-in user
  (defined for every target with past rows, also users the snapshot does not know).

Measured (test AUC of the harness's fixed LightGBM, 2,000 test rows, paired bootstrap
95% interval), defaults of this module, base = the 9 groups before it:

    set     base    +fm     gain over base              over the afternoon baseline
    demo1   0.6969  0.6986  +0.0016 [-0.0038, +0.0065]  +0.0057 [-0.0059, +0.0184]
    alt1    0.7326  0.7348  +0.0021 [-0.0019, +0.0067]  +0.0070 [-0.0017, +0.0159]
    demo2   0.6961  0.6950  -0.0011 [-0.0067, +0.0052]  +0.0081 [-0.0037, +0.0197]
    alt2    0.7211  0.7220  +0.0010 [-0.0036, +0.0056]  +0.0079 [-0.0023, +0.0176]

No gain that shows on both generators.  Tried (demo1 / alt1 gain over base): rank 16
+0.0001 / - (2.4 GB at 0.7M rows); fold-in as a ridge of residuals from zero +0.0029 /
+0.0021; Flow rows weighted 3x +0.0020 / -; Flow rows only -0.0018 / -; Flow rows only, tracks
with >= 3 users, 30/15 iterations -0.0029 / -; 14-day grid, tracks with >= 3 users, listen-type
bias only, 30/15 iterations -0.0010 / -.  Time: ~30 s CPU at 0.7M rows (train and test
targets together, these defaults).  At full size (altF, 7.6M rows, train split, 164k
targets) even that cheapest variant took 89 s CPU and 4.2 GB peak RSS: fits 22 s (cold, 30
iterations, ~2M rows) + 23 s (warm, 15 iterations, ~5M rows), the rest mostly the row
codes and groups (~18 s) and the fold-in; the test split paid the fits again then (it reads
them now).  The defaults (5 weekly snapshots, 60/30 iterations) were then several times a
60 s / 2.5 GB budget per group; as a default group, `make bench` holds the whole chain within
its targets (450 s at full size, peak 4.66 GB, at f6d24e1: README, "Benchmark").

Where it pays (README, "Taste"): on sets where taste shows in the labels far more than in what
is played (``tools/altgen.py --picks popular`` or ``clusters`` with taste weight 1.5, where
``fm_fold_taste`` correlates 0.54-0.55 with the true affinity, against 0.04-0.29 on the
default worlds), end to end +0.0038, +0.0055 (2,000 users) and +0.0067 [+0.0044, +0.0089]
(full size); on the demo's ``--latent-taste 1.5`` sets +0.0171 and +0.0054; on the default
worlds of both generators -0.0036 to +0.0007 (full size: altgen +0.0004, demo -0.0000).  A
default group since then.

The penalty (``L2_FACTOR``, 3 until the round after fm became a default): at 3 the model
over-fits.  Its own out-of-time listen probability (``fm_p`` on the training examples, each one
after its snapshot) scored worse than a constant in log-loss on the demo's latent-taste sets
(0.77), and its AUC rose with the penalty on every set of both generators up to 6-10 (at 10:
+0.010 to +0.027 on the demo's latent-taste sets, +0.007 to +0.010 on altgen's label-taste sets,
+0.012 on a default altgen set), falling again by 30.  The numbers above are at 3; the change,
the harness's fixed LightGBM paired on the same test rows, 10 against 3: demo ``--latent-taste
1.5`` full size +0.0292 [+0.0252, +0.0329] (20: +0.0270), altgen ``--picks clusters`` weight 1.5
full size +0.0021 [+0.0004, +0.0040]; the default worlds at full size altgen -0.0002 [-0.0012,
+0.0009], demo +0.0006 [-0.0006, +0.0018].  Neither more iterations at 3 (120/60: -0.006 to
+0.004) nor the fold-in's penalty alone (10: -0.003 to +0.001) did it; the penalty of the user
or of the item vectors alone did about half.  End to end: README, "Taste".

The penalty by each entity's rows (``L2_COUNT_POWER`` 0.5, the round after): a flat penalty
holds a user with 2,000 rows as loosely against their data as it holds one with 20 tightly; the
scaled one, ``10 * (rows / 100) ** 0.5``, is 10 at 100 rows, 45 at 2,000, 4.5 at 20, and the same
rule for tracks, albums, artists and genres (in the fold-in, the user's rows as of the target).
The harness, paired against the flat 10: demo ``--latent-taste 1.5`` full size +0.0042 [+0.0023,
+0.0062], altgen ``--picks clusters`` full size +0.0005 [-0.0005, +0.0016], the default worlds at
full size +0.0001 (altgen) and -0.0009 [-0.0020, +0.0003] (demo); pooled over six demo sets
+0.0028 [+0.0003, +0.0053], over eight altgen sets +0.0013 [-0.0001, +0.0030].  The user x track
term gains most (its own AUC on the training examples 0.566 -> 0.603 on the demo latent-taste set
at full size, 0.545 -> 0.592 on altgen's).  Power 1 (the ALS-WR rule) or 0.25, or a factor of 6
or 20 at 0.5, were mixed at 2,000 users.  End to end: README, "Taste".
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from features.fm_data import FmData as _Data
from features.fm_data import codes_of as _codes_of
from features.fm_data import context_columns as _context_columns
from features.fm_data import sigmoid as _sigmoid
from features.history import History, code_hash
from features.lbfgs import lbfgs as _lbfgs
from features.snapshots import snapshot_number as _snapshot_number

__all__ = ["FmNow", "fm_features", "fm_now_state"]

#: Latent dimensions.
RANK = 8
#: L2 penalties (the loss is summed over rows): latent vectors, and biases.
L2_FACTOR = 10.0
L2_BIAS = 1.0
#: The penalty of an entity's latent vector is ``L2_FACTOR * (rows / L2_COUNT_REF) ** L2_COUNT_POWER``,
#: ``rows`` its weighted rows (a user's, as of the target in the fold-in; a track's, album's ... in
#: the snapshot): a heavy user or artist is held closer to zero than a flat penalty holds it, a
#: light one less (0: the flat penalty ``L2_FACTOR``).
L2_COUNT_POWER = 0.5
L2_COUNT_REF = 100.0
#: Weight of a Flow row's loss against other rows (targets are Flow session starts); 0 fits Flow rows only.
FLOW_WEIGHT = 1.0
#: Weight of a non-Flow row (0 fits on Flow rows only).
NONFLOW_WEIGHT = 1.0
#: A track gets its own vector and bias only once this many users played it before the snapshot.
MIN_MEDIA_USERS = 1
#: Bias-only context fields (their values' own intercepts, no interaction).
CONTEXT_FIELDS: tuple[str, ...] = ("listen_type", "context_type", "platform_name")
#: Item fields, each with a latent vector and a bias; an item is one combination of them.
ITEM_FIELDS: tuple[str, ...] = ("media_id", "album_id", "artist_id", "genre_id")
#: L-BFGS iterations of the first snapshot (cold start) and of later ones (warm started).
MAX_ITER_COLD = 60
MAX_ITER_WARM = 30
#: Warm start only from a snapshot fit on at least this fraction of the new one's rows.
WARM_MIN_FRACTION = 0.3
#: L-BFGS memory (pairs kept); each pair is two copies of the parameter vector.
LBFGS_MEMORY = 7
#: Scale of the seeded random start of a new latent vector.
INIT_SCALE = 0.05
SEED = 0
#: A snapshot with fewer history rows than this is not fit: its targets get NaN.
MIN_SNAPSHOT_ROWS = 1000
#: A snapshot is fit only when the rows before it grew by this fraction since the last fit one.
NEW_ROWS_FRACTION = 0.05
#: Snapshots are fit every ``SNAPSHOT_STEP`` cells of the weekly grid of features/cf.py.
SNAPSHOT_STEP = 1
#: Rows per chunk of the fold-in's per-row statistics (bounds memory).
FOLD_CHUNK_ROWS = 400_000
#: Fold-in variant: "newton" (one IRLS step from the snapshot's user vector), "ridge" (linear, from zero).
FOLD_MODE = "newton"


#: The code a snapshot depends on (with the history's fingerprint, the key of its memo entry).
_CODE = code_hash(__file__, Path(__file__).with_name("fm_data.py"))


def _vector_penalty(rows: np.ndarray) -> np.ndarray:
    """L2 penalty of the latent vector of entities with ``rows`` weighted rows (users, tracks, albums, ...)."""
    return L2_FACTOR * (np.maximum(rows, 1e-3) / L2_COUNT_REF) ** L2_COUNT_POWER


def _fm_cell(ts: np.ndarray) -> np.ndarray:
    """The fm snapshot cell of each timestamp: the latest fit snapshot ``T_s <= ts``."""
    k = _snapshot_number(ts)
    return np.floor_divide(k, SNAPSHOT_STEP) * SNAPSHOT_STEP


class _Snapshot:
    """One fitted snapshot: compact entity codes (by global code) and their parameter tables."""

    def __init__(self, users, fields, ctx_fields, w0, tables, ctx_tables, n_rows):
        self.n_rows = n_rows  # weighted rows the snapshot was fit on
        self.users = users  # global user codes present (sorted)
        self.fields = fields  # per item field: global codes present (sorted)
        self.ctx_fields = ctx_fields  # per context field: global codes present
        self.w0 = w0
        self.tables = tables  # [user table (n_u x (k+1)), field tables...]: last column is the bias
        self.ctx_tables = ctx_tables  # per context field: bias vector
        self.info: dict = {}  # how the fit ended (for the record)


def _fit(d: _Data, cell: int, prev: _Snapshot | None) -> _Snapshot | None:
    """Fit the FM on all rows with ``ts < T_s`` (groups of earlier cells), warm-started from ``prev``."""
    g = np.flatnonzero(d.g_cell < cell)
    if d.g_tot[g].sum() < MIN_SNAPSHOT_ROWS:
        return None
    # Collapse the cells: groups are sorted by (user, item, ctx, cell), so runs are contiguous.
    key_u, key_i, key_c = d.g_user[g], d.g_item[g], d.g_ctx[g]
    new = np.ones(len(g), dtype=bool)
    new[1:] = (key_u[1:] != key_u[:-1]) | (key_i[1:] != key_i[:-1]) | (key_c[1:] != key_c[:-1])
    starts = np.flatnonzero(new)
    u, it, c = key_u[starts], key_i[starts], key_c[starts]
    w = np.where(d.ctx_flow[c], FLOW_WEIGHT, NONFLOW_WEIGHT)
    pos = np.add.reduceat(d.g_pos[g], starts) * w
    tot = np.add.reduceat(d.g_tot[g], starts) * w
    keep = tot > 0
    u, it, c, pos, tot = u[keep], it[keep], c[keep], pos[keep], tot[keep]
    if len(u) == 0:
        return None

    if prev is not None and prev.n_rows < WARM_MIN_FRACTION * tot.sum():
        prev = None  # a start fit on far fewer rows is no better than a cold one
    k = RANK
    pad = []
    users, urow = np.unique(u, return_inverse=True)
    items, irow = np.unique(it, return_inverse=True)
    fields, frow = [], []
    for j in range(len(ITEM_FIELDS)):
        fcode = d.item_fields[items, j]
        if j == 0 and MIN_MEDIA_USERS > 1:
            # Users per track: rows are unique per (user, item, context), so count (user, item) pairs.
            first = np.r_[True, (urow[1:] != urow[:-1]) | (irow[1:] != irow[:-1])]
            n_users = np.bincount(irow[first], minlength=len(items))
            fcode = np.where(n_users >= MIN_MEDIA_USERS, fcode, -1)
        fu, fr = np.unique(fcode, return_inverse=True)
        if len(fu) and fu[0] == -1:  # tracks without a vector point at a zero row past the table's end
            fu, fr = fu[1:], np.where(fr == 0, len(fu) - 1, fr - 1)
            pad.append(j)
        fields.append(fu)
        frow.append(fr)
    ctx_fields, crow = [], []
    ctxs, ctx_of_row = np.unique(c, return_inverse=True)
    for j in range(len(d.ctx_cols)):
        cu, cr = np.unique(d.ctx_fields[ctxs, j], return_inverse=True)
        ctx_fields.append(cu)
        crow.append(cr[ctx_of_row])
    bias_ctx = [j for j, col in enumerate(d.ctx_cols) if col in CONTEXT_FIELDS]

    # Parameter layout: w0, user table, item field tables, context biases.
    sizes = [len(users)] + [len(f) for f in fields]
    shapes = [(n, k + 1) for n in sizes]
    offs = np.cumsum([1] + [n * (k + 1) for n in sizes] + [len(ctx_fields[j]) for j in bias_ctx])
    n_par = int(offs[-1])
    rng = np.random.default_rng(SEED + int(cell))
    x0 = np.zeros(n_par)
    x0[0] = np.log(max(pos.sum(), 1e-9) / max(tot.sum() - pos.sum(), 1e-9))
    tables0 = []
    for n, _ in shapes:
        tab = np.zeros((n, k + 1))
        tab[:, :k] = rng.normal(0.0, INIT_SCALE, (n, k))
        tables0.append(tab)
    ctx0 = [np.zeros(len(ctx_fields[j])) for j in bias_ctx]
    if prev is not None:
        x0[0] = prev.w0
        glob = [users, *fields]
        pglob = [prev.users, *prev.fields]
        for t in range(len(tables0)):
            p = _codes_of(pglob[t], glob[t])  # previous entities are all present again (nested snapshots)
            tables0[t][p] = prev.tables[t]
        for t, j in enumerate(bias_ctx):
            p = _codes_of(prev.ctx_fields[j], ctx_fields[j])
            ctx0[t][p] = prev.ctx_tables[t]
    for t, tab in enumerate(tables0):
        x0[offs[t] : offs[t + 1]] = tab.ravel()
    for t, cb in enumerate(ctx0):
        x0[offs[len(tables0) + t] : offs[len(tables0) + t + 1]] = cb

    # Precomputed structure: rows are sorted by user; items scatter through a sparse indicator.
    n = len(urow)
    ustart = np.flatnonzero(np.r_[True, urow[1:] != urow[:-1]])
    item_ind = sp.csr_matrix((np.ones(n), (irow, np.arange(n))), shape=(len(items), n))
    field_ind = [
        sp.csr_matrix((np.ones(len(items)), (fr, np.arange(len(items)))), shape=(len(fu) + (j in pad), len(items)))
        for j, (fu, fr) in enumerate(zip(fields, frow, strict=True))
    ]

    def unpack(x):
        tabs = [x[offs[t] : offs[t + 1]].reshape(shapes[t]) for t in range(len(shapes))]
        cbs = [x[offs[len(shapes) + t] : offs[len(shapes) + t + 1]] for t in range(len(bias_ctx))]
        return x[0], tabs, cbs

    f32 = np.float32
    pos32, tot32 = pos.astype(f32), tot.astype(f32)
    item_ind = item_ind.astype(f32)
    field_ind = [m.astype(f32) for m in field_ind]
    ucount = np.diff(np.r_[ustart, n])
    crow_b = [crow[j] for j in bias_ctx]

    # Buffers the objective reuses at every evaluation (at 7.6M rows a fresh n x (k + 1) array per
    # call cost as much system time as the arithmetic): the same operations in the same order.
    user_of_row = np.repeat(np.arange(len(users)), ucount)
    bufs = (
        np.empty((n, k + 1), dtype=f32),
        np.empty((n, k + 1), dtype=f32),
        *(np.empty(n, dtype=f32) for _ in range(4)),
    )

    def fun(x):
        uu, vr, z, e, b1, b2 = bufs
        w0, tabs, cbs = unpack(x)
        tabs = [t.astype(f32) for t in tabs]
        for j in pad:
            tabs[j + 1] = np.vstack([tabs[j + 1], np.zeros((1, k + 1), dtype=f32)])
        vi = np.take(tabs[1], frow[0], axis=0)
        for t in range(2, len(tabs)):
            vi += np.take(tabs[t], frow[t - 1], axis=0)
        np.take(tabs[0], user_of_row, axis=0, out=uu, mode="clip")
        np.take(vi, irow, axis=0, out=vr, mode="clip")
        np.einsum("ij,ij->i", uu[:, :k], vr[:, :k], out=z)
        z += uu[:, k]
        z += vr[:, k]
        z += f32(w0)
        for t, cr in enumerate(crow_b):
            z += np.take(cbs[t].astype(f32), cr)
        # softplus(z) = max(z, 0) + log1p(exp(-|z|)); loss = tot * softplus(z) - pos * z.
        np.abs(z, out=e)
        np.negative(e, out=e)
        np.exp(e, out=e)
        np.maximum(z, 0, out=b1)
        np.log1p(e, out=b2)
        b1 += b2  # softplus(z)
        loss = float(np.dot(tot32, b1).astype(np.float64) - np.dot(pos32, z))
        # sigmoid(z) = where(z >= 0, 1, e) / (1 + e)
        np.add(e, 1, out=b2)
        np.copyto(b1, e)
        b1[z >= 0] = 1
        b1 /= b2
        dz = np.multiply(tot32, b1, out=b1)
        dz -= pos32
        grad = np.empty(n_par)
        grad[0] = dz.sum(dtype=np.float64)
        uu[:, k] = 1.0
        vr[:, k] = 1.0
        vr *= dz[:, None]
        gu = np.add.reduceat(vr, ustart, axis=0)
        uu *= dz[:, None]
        gi = item_ind @ uu
        grad[offs[0] : offs[1]] = gu.ravel()
        for t in range(1, len(tabs)):
            gf = field_ind[t - 1] @ gi
            grad[offs[t] : offs[t + 1]] = (gf[:-1] if t - 1 in pad else gf).ravel()
        for t, cr in enumerate(crow_b):
            grad[offs[len(shapes) + t] : offs[len(shapes) + t + 1]] = np.bincount(cr, weights=dz, minlength=len(cbs[t]))
        loss += 0.5 * float(np.dot(penalty, x * x))
        grad += penalty * x
        return loss, grad

    # Diagonal preconditioner: each parameter's curvature is about the rows it sees (times
    # p(1 - p) <= 1/4) plus its penalty.  Without it L-BFGS needed ~8x the iterations (users
    # with thousands of rows and tracks with two share one step size).
    # The penalty of each table's entities (context biases: none) follows their weighted rows.
    cnt = np.zeros(n_par)
    penalty = np.zeros(n_par)
    cnt[0] = tot.sum()
    ti = np.bincount(irow, weights=tot, minlength=len(items)).astype(f32)
    for t in range(len(shapes)):
        if t == 0:
            rows_t = np.add.reduceat(tot, ustart)
        else:
            cf = field_ind[t - 1] @ ti
            rows_t = np.asarray(cf[:-1] if t - 1 in pad else cf, dtype=np.float64)
        cnt[offs[t] : offs[t + 1]] = np.repeat(rows_t, k + 1)
        pen = np.empty((sizes[t], k + 1))
        pen[:, :k] = _vector_penalty(rows_t)[:, None]
        pen[:, k] = L2_BIAS
        penalty[offs[t] : offs[t + 1]] = pen.ravel()
    for t, cr in enumerate(crow_b):
        n_c = len(ctx_fields[bias_ctx[t]])
        cnt[offs[len(shapes) + t] : offs[len(shapes) + t + 1]] = np.bincount(cr, weights=tot, minlength=n_c)
    diag = 1.0 / (0.25 * cnt + penalty + 1e-3)
    with threadpool_limits(limits=1, user_api="blas"):
        res = _lbfgs(fun, x0, max_iter=MAX_ITER_COLD if prev is None else MAX_ITER_WARM, memory=LBFGS_MEMORY, diag=diag)
    w0, tabs, cbs = unpack(res.x)
    snap = _Snapshot(
        users, fields, ctx_fields, float(w0), [t.copy() for t in tabs], [c.copy() for c in cbs], float(tot.sum())
    )
    snap.info = {"iterations": res.nit, "evaluations": res.nfev, "loss": res.fun, "stop": res.message}
    return snap


def _item_tables(d: _Data, s: _Snapshot, field_codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-field latent vectors+bias (n x F x (k+1)) of items given by global field codes, zero if unknown.

    Also returns the known-mask (n x F).
    """
    n, nf = field_codes.shape
    out = np.zeros((n, nf, RANK + 1))
    known = np.zeros((n, nf), dtype=bool)
    for j in range(nf):
        p = _codes_of(field_codes[:, j], s.fields[j])
        p = np.where(field_codes[:, j] >= 0, p, -1)
        known[:, j] = p >= 0
        out[known[:, j], j] = s.tables[j + 1][p[known[:, j]]]
    return out, known


def _ctx_bias(d: _Data, s: _Snapshot, ctx_codes: np.ndarray) -> np.ndarray:
    """Sum of the context biases for rows given by global per-field context codes (unknown value: 0)."""
    out = np.zeros(len(ctx_codes))
    bias_ctx = [j for j, col in enumerate(d.ctx_cols) if col in CONTEXT_FIELDS]
    for t, j in enumerate(bias_ctx):
        p = _codes_of(ctx_codes[:, j], s.ctx_fields[j])
        p = np.where(ctx_codes[:, j] >= 0, p, -1)
        ok = p >= 0
        out[ok] += s.ctx_tables[t][p[ok]]
    return out


NAMES = [
    "fm_p",
    "fm_taste",
    "fm_user_media",
    "fm_user_album",
    "fm_user_artist",
    "fm_user_genre",
    "fm_item_bias",
    "fm_user_bias",
    "fm_fold_p",
    "fm_fold_taste",
    "fm_fold_bias",
]


def _fold_in(d: _Data, s: _Snapshot, sel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """User parameters ``[U_u, b_u]`` as of each target in ``sel``: one Newton step over its user's past rows.

    The item side is fixed from the snapshot.  Returns (theta (n x (k+1)), has_rows mask).
    """
    k = RANK
    start, end = d.start[sel], d.end[sel]
    has = end > start
    theta = np.full((len(sel), k + 1), np.nan)
    if not has.any():
        return theta, has
    sel_h = np.flatnonzero(has)
    start, end = start[has], end[has]
    # Snapshot user parameters of each row's user (zero prior for unknown users).
    iu = np.triu_indices(k + 1)
    n_tri = len(iu[0])
    bp = np.unique(np.concatenate([start, end]))
    ustart, inv = np.unique(start, return_inverse=True)
    uend = np.zeros(len(ustart), dtype=np.int64)
    np.maximum.at(uend, inv, end)
    # Item-side of every history row (vectors of known fields), computed per global item.
    vi_item, _ = _item_tables(d, s, d.item_fields)
    vi_item = vi_item.sum(axis=1)
    cb_ctx = _ctx_bias(d, s, d.ctx_fields)
    up = _codes_of(np.arange(d.n_users), s.users)
    utab = np.zeros((d.n_users, k + 1))
    utab[up >= 0] = s.tables[0][up[up >= 0]]
    # Per-block sums of the per-row statistics, users processed in chunks of rows.
    blk_sums = np.zeros((len(bp), n_tri + k + 1))
    lens = uend - ustart
    chunk_edges = np.searchsorted(np.cumsum(lens), np.arange(FOLD_CHUNK_ROWS, lens.sum(), FOLD_CHUNK_ROWS))
    for users in np.split(np.arange(len(ustart)), np.unique(chunk_edges)):
        if len(users) == 0:
            continue
        ln = lens[users]
        offs = np.cumsum(ln) - ln
        rows = np.repeat(ustart[users] - offs, ln) + np.arange(int(ln.sum()), dtype=np.int64)
        vr = vi_item[d.item[rows]]
        a = s.w0 + cb_ctx[d.ctx[rows]] + vr[:, k]
        x = vr.copy()
        x[:, k] = 1.0
        th = utab[d.ucode[rows]]
        wt = d.row_weight[rows]
        if FOLD_MODE == "newton":
            p = _sigmoid(a + np.einsum("ij,ij->i", th, x))
            wr = wt * p * (1 - p)
        else:
            p = _sigmoid(a)
            wr = wt
        r = wt * (d.y[rows] - p)
        stats = np.empty((len(rows), n_tri + k + 1))
        stats[:, :n_tri] = (wr[:, None] * x)[:, iu[0]] * x[:, iu[1]]
        stats[:, n_tri:] = r[:, None] * x
        blk = np.searchsorted(bp, rows, side="right") - 1
        cut = np.flatnonzero(np.r_[True, blk[1:] != blk[:-1]])
        blk_sums[blk[cut]] += np.add.reduceat(stats, cut, axis=0)
    seg = np.searchsorted(ustart, bp, side="right") - 1
    cum = pd.DataFrame(blk_sums).groupby(seg, sort=False).cumsum().to_numpy()
    last_blk = np.searchsorted(bp, end) - 1
    tot = cum[last_blk]
    h = np.zeros((len(tot), k + 1, k + 1))
    h[:, iu[0], iu[1]] = tot[:, :n_tri]
    h[:, iu[1], iu[0]] = tot[:, :n_tri]
    # The vector's penalty by the user's weighted rows before the target: a prefix sum, not a per-row statistic.
    cum_w = np.concatenate([[0.0], np.cumsum(d.row_weight, dtype=np.float64)])
    pen = np.empty((len(tot), k + 1))
    pen[:, :k] = _vector_penalty(cum_w[end] - cum_w[start])[:, None]
    pen[:, k] = L2_BIAS
    h[:, np.arange(k + 1), np.arange(k + 1)] += pen
    gvec = tot[:, n_tri:]
    if FOLD_MODE == "newton":
        th0 = utab[d.ucode[start]]
        gvec = gvec - pen * th0
        theta[sel_h] = th0 + np.linalg.solve(h, gvec[:, :, None])[:, :, 0]
    else:
        theta[sel_h] = np.linalg.solve(h, gvec[:, :, None])[:, :, 0]
    return theta, has


@dataclass
class FmNow:
    """What a row at "now" needs of the fm group (:mod:`features.now`): the snapshot in force then.

    Its entities are ids, not a history's codes, so one user's rows (a
    :class:`~features.now.UserHistory`) can be scored against it; ``vocab`` holds every id
    it knows per field.  ``snapshot`` is None when the cell at now has no fit (NaN features).
    """

    cell: int
    snapshot: _Snapshot | None
    vocab: dict[str, np.ndarray]


def _data(history: History, targets: pd.DataFrame, vocab: dict[str, np.ndarray] | None = None) -> _Data:
    return _Data(
        history,
        targets,
        item_fields=ITEM_FIELDS,
        context_fields=CONTEXT_FIELDS,
        flow_weight=FLOW_WEIGHT,
        nonflow_weight=NONFLOW_WEIGHT,
        cell_of=_fm_cell,
        vocab=vocab,
    )


def _snapshots(history: History, d: _Data, last_cell: int):
    """``(cell, snapshot or None)`` along the chain of fit cells up to ``last_cell``, each fit once per history."""
    params = _params_key()
    prev = None
    for cell in _chain(d, last_cell):
        # A snapshot is a function of the history alone (its codes are the history's; the chain
        # of warm starts leading to it is a rule on past rows), so the train and test builds
        # share it through the history's memo: the test build reads what the train build fit.
        s = history.memo(
            f"fm-snapshot-{int(cell)}-{params}", lambda cell=cell, prev=prev: _fit(d, int(cell), prev), code=_CODE
        )
        yield int(cell), s
        if s is not None:
            prev = s


def fm_features(history: History, targets: pd.DataFrame, *, now: FmNow | None = None) -> pd.DataFrame:
    """FM taste features of each target (see the module docstring): snapshot terms and the folded-in user.

    With ``now`` (:func:`fm_now_state`), every target is a row at now, ``history`` holds its
    user's rows (or any rows before now) and the snapshot comes from ``now``: the same numbers
    as a pass over the whole history.
    """
    n_t = len(targets)
    res = {name: np.full(n_t, np.nan) for name in NAMES}
    if n_t == 0:
        return pd.DataFrame(res).astype(np.float32)
    t_cell = _fm_cell(targets["ts_listen"].to_numpy())
    if now is not None:
        if (t_cell < now.cell).any():
            raise ValueError("fm: a target before the now state's snapshot needs a pass over the whole history")
        if now.snapshot is not None:
            d = _data(history, targets, vocab=now.vocab)
            _target_features(d, _from_ids(now.snapshot, d), np.arange(n_t), res)
        return pd.DataFrame(res).astype(np.float32)
    if len(history) == 0:
        return pd.DataFrame(res).astype(np.float32)
    d = _data(history, targets)
    fit = list(_snapshots(history, d, int(t_cell.max())))
    for ci, (cell, s) in enumerate(fit):
        if s is None:
            continue
        nxt = fit[ci + 1][0] if ci + 1 < len(fit) else np.iinfo(np.int64).max
        sel = np.flatnonzero((t_cell >= cell) & (t_cell < nxt))
        if len(sel) == 0:
            continue
        _target_features(d, s, sel, res)
    return pd.DataFrame(res).astype(np.float32)


def fm_now_state(history: History, now: int) -> FmNow:
    """The snapshot in force at ``now`` (after every history row), its entities as ids (see :class:`FmNow`)."""
    cell = int(_fm_cell(np.array([now], dtype=np.int64))[0])
    probe = pd.DataFrame(
        {c: np.zeros(1, dtype=np.int64) for c in ("user_id", *ITEM_FIELDS, *_context_columns(CONTEXT_FIELDS))}
    )
    probe["ts_listen"] = np.int64(now)
    d = _data(history, probe)
    fit = list(_snapshots(history, d, cell)) if len(history) else []
    if not fit or fit[-1][1] is None:
        return FmNow(cell=fit[-1][0] if fit else cell, snapshot=None, vocab={})
    last, s = fit[-1]
    ids = _Snapshot(
        d.user_uniq[s.users],
        [d.field_uniq[j][f] for j, f in enumerate(s.fields)],
        [d.ctx_uniq[j][f] for j, f in enumerate(s.ctx_fields)],
        s.w0,
        s.tables,
        s.ctx_tables,
        s.n_rows,
    )
    vocab = {c: ids.fields[j] for j, c in enumerate(ITEM_FIELDS)}
    vocab.update({c: ids.ctx_fields[j] for j, c in enumerate(d.ctx_cols)})
    return FmNow(cell=last, snapshot=ids, vocab=vocab)


def _from_ids(s: _Snapshot, d: _Data) -> _Snapshot:
    """``s`` with ids (:class:`FmNow`) in ``d``'s codes; users ``d`` does not hold are dropped."""
    up = _codes_of(s.users, d.user_uniq)
    keep = up >= 0
    tables = [s.tables[0][keep], *s.tables[1:]]
    fields = [_codes_of(f, d.field_uniq[j]) for j, f in enumerate(s.fields)]
    ctx = [_codes_of(f, d.ctx_uniq[j]) for j, f in enumerate(s.ctx_fields)]
    return _Snapshot(up[keep], fields, ctx, s.w0, tables, s.ctx_tables, s.n_rows)


#: The module settings a snapshot depends on, in the order they are hashed (:func:`_params_key`).
SNAPSHOT_SETTINGS = (
    "RANK", "L2_FACTOR", "L2_BIAS", "L2_COUNT_POWER", "L2_COUNT_REF", "FLOW_WEIGHT", "NONFLOW_WEIGHT", "MIN_MEDIA_USERS", "CONTEXT_FIELDS",
    "ITEM_FIELDS", "MAX_ITER_COLD", "MAX_ITER_WARM", "WARM_MIN_FRACTION", "LBFGS_MEMORY", "INIT_SCALE", "SEED",
    "MIN_SNAPSHOT_ROWS", "NEW_ROWS_FRACTION", "SNAPSHOT_STEP",
)  # fmt: skip
#: The module settings of the fold-in only (it runs on every build; no snapshot reads them).
FOLD_SETTINGS = ("FOLD_CHUNK_ROWS", "FOLD_MODE")


def _params_key() -> str:
    """Hash of every module setting a snapshot depends on (they are read at call time: tests set them)."""
    g = globals()
    key = repr([(n, g[n]) for n in SNAPSHOT_SETTINGS] + [_fit.__module__, _fit.__qualname__])
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def _chain(d: _Data, last_cell: int) -> np.ndarray:
    """The cells whose snapshots are fit, up to ``last_cell``: a rule on past rows only.

    A cell is fit when it has at least ``MIN_SNAPSHOT_ROWS`` rows before it and
    ``NEW_ROWS_FRACTION`` more than the previous fit cell (years of broken-clock rows
    trickling in one a week are not worth a fit each).  Each target uses the latest fit
    cell at or before its own, so whichever targets come along, a target's snapshot and
    the chain of warm starts leading to it are the same.
    """
    cells = np.unique(d.g_cell) + SNAPSHOT_STEP
    cells = cells[cells <= last_cell]
    order = np.argsort(d.g_cell, kind="stable")
    csum = np.concatenate([[0.0], np.cumsum(d.g_tot[order])])
    n_before = csum[np.searchsorted(d.g_cell[order], cells, side="left")]
    out, last = [], 0.0
    for c, n in zip(cells, n_before, strict=True):
        if n >= MIN_SNAPSHOT_ROWS and n >= (1 + NEW_ROWS_FRACTION) * last:
            out.append(c)
            last = n
    return np.array(out, dtype=np.int64)


def _target_features(d: _Data, s: _Snapshot, sel: np.ndarray, res: dict) -> None:
    """Fill ``res`` for the targets ``sel`` of snapshot ``s``: its own terms, then the folded-in user."""
    k = RANK
    vf, known = _item_tables(d, s, d.t_fcodes[sel])
    vi = vf.sum(axis=1)
    any_item = known.any(axis=1)
    up = _codes_of(d.t_ucode[sel], s.users)
    up = np.where(d.t_ucode[sel] >= 0, up, -1)
    uknown = up >= 0
    uvec = np.full((len(sel), k + 1), np.nan)
    uvec[uknown] = s.tables[0][up[uknown]]
    cb = _ctx_bias(d, s, d.t_ccodes[sel])
    a = s.w0 + cb + vi[:, k]
    both = uknown & any_item
    taste = np.einsum("ij,ij->i", uvec[:, :k], vi[:, :k])
    res["fm_p"][sel[both]] = _sigmoid(a + uvec[:, k] + taste)[both]
    res["fm_taste"][sel[both]] = taste[both]
    for j, name in enumerate(["fm_user_media", "fm_user_album", "fm_user_artist", "fm_user_genre"]):
        ok = uknown & known[:, j]
        res[name][sel[ok]] = np.einsum("ij,ij->i", uvec[:, :k], vf[:, j, :k])[ok]
    res["fm_item_bias"][sel[any_item]] = vi[any_item, k]
    res["fm_user_bias"][sel[uknown]] = uvec[uknown, k]
    theta, has = _fold_in(d, s, sel)
    ok = has & any_item
    ftaste = np.einsum("ij,ij->i", theta[:, :k], vi[:, :k])
    res["fm_fold_p"][sel[ok]] = _sigmoid(a + theta[:, k] + ftaste)[ok]
    res["fm_fold_taste"][sel[ok]] = ftaste[ok]
    res["fm_fold_bias"][sel[has]] = theta[has, k]
