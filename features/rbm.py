"""Restricted Boltzmann machine over the user x artist listened/skipped matrix, as a recommender.

The write-up's RBM used as the project this pipeline grew from used it (over the user x
item matrix), not on the tabular features as ``models.registry.rbm`` does.

Model.  Two visible units per artist of the snapshot's top ``N_ARTISTS`` artists by
listeners: *on* (the user listened to the artist at least once) and *off* (played it,
never listened: skipped only); an artist never played leaves both at 0.  scikit-learn's
``BernoulliRBM`` (``N_HIDDEN`` hidden units, persistent contrastive divergence, seeded)
is fit on the snapshot users' rows (sparse, seeded order) for a fixed budget of
``TRAIN_PASSES`` user rows: the number of updates, not of epochs, decides what it learns
(at 5 epochs of 64-row batches it had learnt nothing: features at AUC 0.50).

Snapshot rule: that of :mod:`features.cf` (reused): the snapshot is all rows with
``ts < T_s`` on the weekly calendar grid, a target at ``t`` uses the latest
``T_s <= t``, only snapshots some target needs are fit, and one with fewer than
``MIN_SNAPSHOT_ROWS`` rows gives NaN.  The user side is exact as of ``t``: both units
are functions of a pair's first play and first listen, so they are additive over the
user's rows and ``v(t) W^T`` is a range sum (``features.snapshots.fold_in``) over the user's
rows strictly before ``t``; the target's own row never counts.

Outputs: see :func:`rbm_features`.

Measured (fixed LightGBM on the 9 base groups + this one, test AUC of 2,000 test rows,
paired bootstrap 95% interval against the base features):

    demo1 +0.0020 [-0.0023, +0.0060]    demo2 -0.0001 [-0.0054, +0.0053]
    alt1  +0.0037 [-0.0004, +0.0079]    alt2  -0.0035 [-0.0074, +0.0007]

and on a 2-fold user-grouped CV of the training examples -0.0016, +0.0007, +0.0007,
-0.0007 (demo1, demo2, alt1, alt2): no gain on either generator, so the group is opt-in
(``EXTRA_GROUPS=rbm``).  The RBM's taste signal is real but already in the base features:
its conditional log-odds (listen minus skip unit) predicts next week's listens at AUC 0.72
overall but 0.55 within a user, below the artist's plain listen rate (0.57) and the user's
own rate on the artist (0.59).  It *joins* the tabular ``rbm`` model of the bake-off (a
BernoulliRBM feature extractor in front of a logistic regression) rather than replacing
it: the two answer different questions (this one is a recommender over artists, that one a
classifier over our features), and neither costs the other anything.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.special import expit
from sklearn.neural_network import BernoulliRBM
from threadpoolctl import threadpool_limits

from features.history import History
from features.snapshots import fold_in as _fold_in
from features.snapshots import snapshot_number as _snapshot_number
from features.snapshots import snapshot_time as _snapshot_time
from features.snapshots import sorted_codes as _sorted_codes

__all__ = ["rbm_features"]

#: Visible units: the snapshot's top artists by number of listeners (users with a listen).
N_ARTISTS = 1000
#: An artist needs this many listeners in the snapshot to get a unit.
MIN_LISTENERS = 2
#: Hidden units, learning rate, mini-batch size and seed of the RBM.
N_HIDDEN = 32
LEARNING_RATE = 0.05
BATCH_SIZE = 16
SEED = 0
#: Training budget of one snapshot, in user rows seen: ``TRAIN_PASSES / users`` epochs
#: (rounded, 1 to ``MAX_EPOCHS``: 10 on 2,000 users, 1 on 20,000; small snapshots, e.g.
#: of broken-clock rows, stay cheap); more users than this are subsampled.
TRAIN_PASSES = 20_000
MAX_EPOCHS = 10
#: A snapshot with fewer history rows than this is not fit: its targets get NaN.
MIN_SNAPSHOT_ROWS = 1000

_NAMES = ("rbm_artist_p", "rbm_artist_user_logit", "rbm_artist_cond", "rbm_known", "rbm_skip_p", "rbm_skip_cond")


class _Pairs:
    """First play and first listen of every (user, artist) pair, from rows sorted by (user, ts).

    A pair's two units as of a time are *on* (listened at least once) and *off* (played,
    never listened: skipped only).  On turns on at the pair's first listen; off turns on
    at its first play and off again at that first listen.  So, per row, ``w_on`` is 1 on
    the pair's first listened row, and ``w_off`` is +1 on its first row and -1 on its
    first listened row: summed over a prefix of a user's rows they give the units as of
    the prefix's end, and a user's as-of visible vector is a range sum (``_fold_in``).
    ``first_play``/``first_listen`` are sorted positions (``n``: never), ``*_ts`` their
    times (int64 max: never).
    """

    def __init__(self, ucode: np.ndarray, acode: np.ndarray, ts: np.ndarray, listened: np.ndarray) -> None:
        n = len(ucode)
        key = (ucode.astype(np.int64) << 32) | acode.astype(np.int64)
        order = np.argsort(key, kind="stable")  # (user, artist, time); values are user-sorted positions
        ks = key[order]
        new = np.ones(n, dtype=bool)
        new[1:] = ks[1:] != ks[:-1]
        pair = np.cumsum(new) - 1
        self.keys = ks[new]
        self.first_play = order[new]
        lo = listened[order]
        # A pair's first listened row: listened, and no listened row of the pair before it.
        c = np.cumsum(lo)
        gstart = np.flatnonzero(new)[pair] if n else np.zeros(0, dtype=np.int64)
        first = lo & (c - lo == c[gstart] - lo[gstart])
        self.first_listen = np.full(len(self.keys), n, dtype=np.int64)
        self.first_listen[pair[first]] = order[first]
        self.w_on = np.zeros(n, dtype=np.float32)
        self.w_on[order[first]] = 1.0
        self.w_off = -self.w_on
        self.w_off[self.first_play] += 1.0
        ts_pad = np.append(np.asarray(ts, dtype=np.int64), np.iinfo(np.int64).max)
        self.first_play_ts = ts_pad[self.first_play]
        self.first_listen_ts = ts_pad[self.first_listen]

    def lookup(self, ucode: np.ndarray, acode: np.ndarray) -> np.ndarray:
        """Index of each (user, artist) pair in ``keys``, -1 where the pair never occurs."""
        key = (ucode.astype(np.int64) << 32) | acode.astype(np.int64)
        if len(self.keys) == 0:
            return np.full(len(key), -1)
        p = np.minimum(np.searchsorted(self.keys, key), len(self.keys) - 1)
        return np.where((ucode >= 0) & (acode >= 0) & (self.keys[p] == key), p, -1)

    def state(self, ucode: np.ndarray, acode: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The (on, off) units of each (user, artist) pair from its rows at sorted positions ``< end``."""
        p = self.lookup(ucode, acode)
        ok = p >= 0
        q = np.maximum(p, 0)
        on = ok & (self.first_listen[q] < end) if len(self.keys) else ok
        off = ok & (self.first_play[q] < end) & ~on if len(self.keys) else ok
        return on.astype(np.float64), off.astype(np.float64)


def _train(x: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fit the RBM on the users x units matrix: ``(weights (hidden x visible), visible bias, hidden bias)``."""
    epochs = int(np.clip(round(TRAIN_PASSES / x.shape[0]), 1, MAX_EPOCHS))
    rbm = BernoulliRBM(
        n_components=N_HIDDEN, learning_rate=LEARNING_RATE, batch_size=BATCH_SIZE, n_iter=epochs, random_state=SEED
    )
    # One BLAS thread: small dense products, and a shared 2-core machine (see features/cf.py).
    with threadpool_limits(limits=1, user_api="blas"):
        rbm.fit(x)
    return (
        rbm.components_.astype(np.float64),
        rbm.intercept_visible_.astype(np.float64),
        rbm.intercept_hidden_.astype(np.float64),
    )


def _snapshot_matrix(pairs: _Pairs, t_snap: int, n_artists: int) -> tuple[np.ndarray, sp.csr_matrix] | None:
    """Visible columns and users x units matrix of the snapshot ``rows with ts < t_snap``.

    Returns ``(col, x)``: ``col[artist_code]`` is the artist's on unit (-1 if none; its
    off unit is ``col + n_visible_artists``); ``x`` has one row per snapshot user with a
    unit on, in a seeded shuffled order (BernoulliRBM walks the rows in order).  Columns
    and users are numbered among the snapshot's own pairs, so nothing at or after
    ``t_snap`` moves them.
    """
    on = pairs.first_listen_ts < t_snap
    off = (pairs.first_play_ts < t_snap) & ~on
    user = pairs.keys >> 32
    artist = pairs.keys & 0xFFFFFFFF
    listeners = np.bincount(artist[on], minlength=n_artists)
    # Top artists by listeners, ties by artist code (a stable sort of -count).
    top = np.argsort(-listeners, kind="stable")[:N_ARTISTS]
    top = np.sort(top[listeners[top] >= MIN_LISTENERS])
    if len(top) < 2:
        return None
    col = np.full(n_artists, -1, dtype=np.int64)
    col[top] = np.arange(len(top))
    n_vis = len(top)
    cp = col[artist]
    on &= cp >= 0
    off &= cp >= 0
    users, r = np.unique(np.concatenate([user[on], user[off]]), return_inverse=True)
    cc = np.concatenate([cp[on], cp[off] + n_vis])
    x = sp.csr_matrix((np.ones(len(r), dtype=np.float32), (r, cc)), shape=(len(users), 2 * n_vis))
    if x.shape[0] < 2:
        return None
    perm = np.random.default_rng(SEED).permutation(x.shape[0])[:TRAIN_PASSES]
    return col, x[perm]


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, x)


def rbm_features(history: History, targets: pd.DataFrame) -> pd.DataFrame:
    """RBM reconstruction of the candidate's artist from the user's as-of artists.

    Outputs (NaN where no snapshot was fit or the artist has no unit):

    - ``rbm_artist_p``: reconstructed probability of the candidate artist's on unit.
    - ``rbm_artist_user_logit``: its logit minus the unit's bias (the user-specific part).
    - ``rbm_artist_cond``: exact conditional log-odds of the on unit given the user's
      other units (free-energy difference, the candidate's own units left out).
    - ``rbm_known``: the candidate artist's on unit is already on for this user.
    - ``rbm_skip_p``, ``rbm_skip_cond``: the same for the off unit.
    """
    n_t = len(targets)
    res = {name: np.full(n_t, np.nan, dtype=np.float32) for name in _NAMES}
    if n_t == 0 or len(history) == 0:
        return pd.DataFrame(res)

    idx, start, end = history.locate(targets, "user_id")
    ucode_s = idx.codes_sorted
    ts_s = idx.ts_sorted
    artists, acode_s = _sorted_codes(history.col("artist_id")[idx.order])
    pairs = _Pairs(ucode_s, acode_s, ts_s, history.y[idx.order] > 0.5)

    t_art = targets["artist_id"].to_numpy()
    cand = np.minimum(np.searchsorted(artists, t_art), len(artists) - 1)
    cand = np.where(artists[cand] == t_art, cand, -1)
    t_user = targets["user_id"].to_numpy()
    tu = np.minimum(np.searchsorted(idx.uniq, t_user), len(idx.uniq) - 1)
    tu = np.where(idx.uniq[tu] == t_user, tu, -1)
    v_on, v_off = pairs.state(tu, cand, end)

    snap = _snapshot_number(targets["ts_listen"].to_numpy())
    for k in np.unique(snap):
        t_snap = int(_snapshot_time(k))
        if np.count_nonzero(ts_s < t_snap) < MIN_SNAPSHOT_ROWS:
            continue
        fit = _snapshot_matrix(pairs, t_snap, len(artists))
        if fit is None:
            continue
        col, x = fit
        sel = np.flatnonzero(snap == k)
        jc = np.where(cand[sel] >= 0, col[np.maximum(cand[sel], 0)], -1)
        sel, jc = sel[jc >= 0], jc[jc >= 0]
        if len(sel) == 0:
            continue
        w, b, c = _train(x)
        n_vis = int((col >= 0).sum())
        pre = np.zeros((len(sel), w.shape[0]))
        has = end[sel] > start[sel]
        if has.any():
            # One pass for both units: artist a's row of the factors is [W_on[a], W_off[a]].
            both = np.hstack([w[:, :n_vis].T, w[:, n_vis:].T])
            p_on, p_off = _fold_in(
                ucode_s, col[acode_s], [pairs.w_on, pairs.w_off], start[sel[has]], end[sel[has]], both
            )
            hid = w.shape[0]
            pre[has] = p_on[:, :hid] + p_off[:, hid:]
        res["rbm_known"][sel] = v_on[sel]
        _score(res, sel, pre, w, b, c, jc, jc + n_vis, v_on[sel], v_off[sel])
    return pd.DataFrame(res)


def _score(res, sel, pre, w, b, c, j_on, j_off, v_on, v_off) -> None:
    """Reconstruction and conditional log-odds of the candidates' units, into ``res[...][sel]``.

    ``pre = v W^T`` is the user's as-of visible vector through the weights, ``j_on`` and
    ``j_off`` the candidate artist's two units, ``v_on``/``v_off`` their as-of values.
    Reconstruction: ``h = sigmoid(pre + c)``, then ``sigmoid(h . W[:, j] + b[j])``.
    Conditional: with the candidate's own units removed (``a = pre + c - v_j W[:, j]``),
    ``log p(v_j=1 | rest) / p(v_j=0 | rest) = b[j] + sum_k softplus(a_k + W[k, j]) - softplus(a_k)``
    (the free-energy difference, exact for an RBM).
    """
    h = expit(pre + c)
    w_on, w_off = w[:, j_on].T, w[:, j_off].T
    user_logit = np.einsum("ij,ij->i", h, w_on)
    res["rbm_artist_user_logit"][sel] = user_logit
    res["rbm_artist_p"][sel] = expit(user_logit + b[j_on])
    res["rbm_skip_p"][sel] = expit(np.einsum("ij,ij->i", h, w_off) + b[j_off])
    a = pre + c - v_on[:, None] * w_on - v_off[:, None] * w_off
    res["rbm_artist_cond"][sel] = b[j_on] + (_softplus(a + w_on) - _softplus(a)).sum(axis=1)
    res["rbm_skip_cond"][sel] = b[j_off] + (_softplus(a + w_off) - _softplus(a)).sum(axis=1)
