"""Collaborative filtering: users and tracks as latent vectors, fit on the past only.

Artist factors come from a truncated SVD of the user x artist play matrix, and media
(tracks) are folded into the same latent space from the user x media matrix, both fit
on a *snapshot* of history: all rows with ``ts < T_s``, where the snapshot times
``T_s`` lie on a fixed calendar grid (every ``SNAPSHOT_DAYS`` days from Monday
1970-01-05 00:00 UTC), so the grid never depends on the data.  A target at time ``t``
uses the latest snapshot ``T_s <= t``; only snapshots some target needs are fit.  The
user side is folded in exactly as of ``t``: the user's own rows strictly before ``t``
are projected onto the snapshot's item factors, so a user's taste moves with every
play while the (expensive) factors are refreshed weekly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.decomposition import TruncatedSVD
from sklearn.preprocessing import normalize
from threadpoolctl import threadpool_limits

from features.asof import find_sorted
from features.history import History, code_hash
from features.snapshots import GRID_ORIGIN, SNAPSHOT_DAYS  # noqa: F401 (the grid, re-exported)
from features.snapshots import compact as _compact
from features.snapshots import fold_in as _fold_in
from features.snapshots import snapshot_number as _snapshot_number
from features.snapshots import snapshot_time as _snapshot_time
from features.snapshots import sorted_codes as _sorted_codes

__all__ = ["cf_features", "track_vectors", "TasteSpace", "taste_space"]

#: Latent dimensions of the SVD (fewer when a snapshot has fewer users or items).
N_COMPONENTS = 24
#: Power iterations of the randomized SVD, and its seed.
SVD_N_ITER = 4
SVD_SEED = 0
#: A snapshot with fewer history rows than this is not fit: its targets get NaN.
MIN_SNAPSHOT_ROWS = 1000
#: Singular values below this fraction of the largest are treated as zero.
_RANK_TOL = 1e-8

#: (feature prefix, history column) of each item kind; the first is factorized, the
#: others are folded into its latent space.
_ITEMS = (("artist", "artist_id"), ("media", "media_id"))
_CODE = code_hash(__file__)


def _telescoped_weights(user: np.ndarray, item: np.ndarray, flag: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-row weights whose sum over a user's first rows of an item is ``log1p(count)``.

    Rows must be in time order within each user.  The r-th flagged row of a (user, item)
    pair gets ``log1p(r) - log1p(r - 1) = log1p(1 / r)``, so summing over any prefix of
    the user's rows gives ``log1p`` of the flagged count so far: the as-of profile of a
    user becomes additive, and a range sum gives it at any time.  Returns the weights
    for the flagged rows (listens) and for the others (skips).
    """
    n = len(flag)
    key = (user.astype(np.int64) << 32) | item.astype(np.int64)
    # A stable sort by (user, item) keeps each pair's rows in time order.
    order = np.argsort(key, kind="stable")
    ks = key[order]
    new = np.ones(n, dtype=bool)
    new[1:] = ks[1:] != ks[:-1]
    pos = np.arange(n)
    gstart = np.maximum.accumulate(np.where(new, pos, 0)) if n else pos
    f = flag[order].astype(np.int64)
    c = np.cumsum(f)
    rank_on = c - c[gstart] + f[gstart]  # flagged rows of the pair so far, this one included
    rank_off = pos - gstart + 1 - rank_on
    out = []
    for rank, mask in ((rank_on, f == 1), (rank_off, f == 0)):
        w = np.zeros(n, dtype=np.float32)
        w[order[mask]] = np.log1p(1.0 / rank[mask])
        out.append(w)
    return out[0], out[1]


def _weighted_matrix(row: np.ndarray, col: np.ndarray, n_rows: int, n_cols: int) -> tuple[sp.csr_matrix, np.ndarray]:
    """User x item ``log1p(plays) * idf`` with unit-length user rows, and the items' idf.

    ``idf = log1p(n_users / users_of_item)`` damps items everybody plays.
    """
    x = sp.csr_matrix((np.ones(len(row)), (row, col)), shape=(n_rows, n_cols))
    x.sum_duplicates()
    idf = np.log1p(n_rows / np.maximum(np.bincount(x.indices, minlength=n_cols), 1))
    x.data = np.log1p(x.data) * idf[x.indices]
    return normalize(x), idf


def _fit_snapshot(
    ucode: np.ndarray, icodes: list[np.ndarray], n_users: int, n_items: list[int]
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]] | None:
    """Item factors of one snapshot, for each item kind, from its rows' (user, item) codes.

    Returns, per kind, ``(col, factors, idf)``: ``col[item_code]`` is the item's row
    in ``factors`` (-1 for items the snapshot has not seen) and ``idf`` the items'
    weights.  The first kind (artists) is factorized by a randomized truncated SVD
    ``X ~ U S V^T`` and its factors are ``V`` (orthonormal columns).  The other kinds
    (media: 450k columns, mostly played by a handful of users) are *folded into* the
    same latent space, ``V_m = X_m^T U S^-1`` (which gives back ``V`` for the artist
    matrix itself): a track sits where the taste of its audience sits, at the cost of
    one sparse product instead of a second SVD.  Rows and columns are numbered in id
    order among the snapshot's own rows, so nothing after the snapshot can move them.
    """
    row, n_rows = _compact(ucode, n_users)
    r = row[ucode]
    mats = []
    for icode, n in zip(icodes, n_items, strict=True):
        col, n_cols = _compact(icode, n)
        x, idf = _weighted_matrix(r, col[icode], n_rows, n_cols)
        mats.append((col, x, idf))
    col, x, idf = mats[0]
    k = min(N_COMPONENTS, n_rows - 1, x.shape[1] - 1)
    if k < 1:
        return None
    svd = TruncatedSVD(n_components=k, algorithm="randomized", n_iter=SVD_N_ITER, random_state=SVD_SEED)
    # One BLAS thread: the matrices are tall and thin, and on a shared 2-core machine
    # OpenBLAS threads spinning against other work made the fit 10x slower.
    with threadpool_limits(limits=1, user_api="blas"):
        us = svd.fit_transform(x)
    sv = svd.singular_values_
    # Drop null directions (rank-deficient snapshots): S^-1 would blow them up.
    keep = sv > _RANK_TOL * sv[0] if sv[0] > 0 else np.zeros(len(sv), dtype=bool)
    if not keep.any():
        return None
    us, sv = us[:, keep], sv[keep]
    out = [(col, svd.components_[keep].T.copy(), idf)]
    for col_m, x_m, idf_m in mats[1:]:
        out.append((col_m, np.asarray(x_m.T @ us) / (sv * sv), idf_m))
    return out


def _cosine(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Row-wise cosine, NaN where either vector is zero."""
    dot = np.einsum("ij,ij->i", u, v)
    nu = np.sqrt(np.einsum("ij,ij->i", u, u))
    nv = np.sqrt(np.einsum("ij,ij->i", v, v))
    ok = (nu > 0) & (nv > 0)
    out = np.full(len(u), np.nan)
    out[ok] = dot[ok] / (nu[ok] * nv[ok])
    return out


def _snapshot(
    history: History, k: int, ucode_s: np.ndarray, ts_s: np.ndarray, icodes_s: list[np.ndarray], n_items: list[int]
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]] | None:
    """The factors of snapshot ``k`` (rows before its Monday), or None when it has too few rows.

    A snapshot depends on the history alone: it is fit once per history (:meth:`History.memo`)
    and shared by the train and test builds and by ``make similar``.
    """
    past = ts_s < _snapshot_time(k)
    if past.sum() < MIN_SNAPSHOT_ROWS:
        return None
    return history.memo(
        f"cf-snapshot-{k}",
        lambda: _fit_snapshot(ucode_s[past], [c[past] for c in icodes_s], int(ucode_s.max()) + 1, n_items),
        code=_CODE,
    )


def _kind_codes(history: History, idx) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per item kind: the sorted item ids and each history row's item code, in the user index's order."""
    return [_sorted_codes(history.col(column)[idx.order]) for _, column in _ITEMS]


def track_vectors(history: History, *, at: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Track ids and their vectors in the taste space of the snapshot in force at ``at`` (default: after the data).

    The space the cf group scores in: tracks sit where the taste of their audience sits, so
    nearby tracks are played by the same people (``make similar``).  Empty when no snapshot fits.
    """
    at = int(history.col("ts_listen").max()) + 1 if at is None else at
    return taste_space(history, at).track_vectors()


@dataclass(frozen=True)
class TasteSpace:
    """One snapshot's item factors with the item ids of the history they were fit on.

    All that :func:`cf_features` needs of other users' plays for targets in that snapshot's
    week: with it, the group runs on a history holding only the target user's rows
    (:mod:`features.now`), their items numbered as in the full history.
    """

    snapshot: int
    #: Per item kind (``_ITEMS``): the full history's sorted item ids.
    items: tuple[np.ndarray, ...]
    #: :func:`_fit_snapshot`'s result for the snapshot (None: too few rows to fit).
    fit: list[tuple[np.ndarray, np.ndarray, np.ndarray]] | None

    def track_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """Ids of the tracks the snapshot placed and their vectors (empty when no snapshot fits)."""
        if self.fit is None:
            return np.array([], dtype=np.int64), np.zeros((0, 0))
        col, factors, _ = self.fit[1]
        known = col >= 0
        return self.items[1][known].astype(np.int64), factors[col[known]]

    def codes(self, history: History, idx) -> list[tuple[np.ndarray, np.ndarray]]:
        """:func:`_kind_codes` of ``history``'s rows, in the full history's item numbering."""
        out = []
        for items, (_, column) in zip(self.items, _ITEMS, strict=True):
            code, found = find_sorted(items, history.col(column)[idx.order])
            if not found.all():
                raise ValueError(f"{column}: rows whose items the taste space does not know")
            out.append((items, code.astype(np.int32)))
        return out


def taste_space(history: History, at: int) -> TasteSpace:
    """The :class:`TasteSpace` of the snapshot in force at time ``at`` (fit once per history, memoised)."""
    idx = history.index("user_id")
    kinds = _kind_codes(history, idx)
    k = int(_snapshot_number(np.array([at]))[0])
    fit = _snapshot(history, k, idx.codes_sorted, idx.ts_sorted, [c for _, c in kinds], [len(i) for i, _ in kinds])
    return TasteSpace(snapshot=k, items=tuple(items for items, _ in kinds), fit=fit)


def cf_features(history: History, targets: pd.DataFrame, *, space: TasteSpace | None = None) -> pd.DataFrame:
    """Latent-factor taste match between the user and the candidate's artist and track.

    Implicit-feedback collaborative filtering (PureSVD-style): a weekly snapshot SVD of
    the user x artist play matrix (``log1p`` plays, idf-weighted, users normalized)
    gives artist vectors where artists played by the same people are close; tracks
    are placed in the same space by their audience.  The user's plays strictly before
    the target are folded in (``log1p`` counts x idf, projected onto the item factors),
    separately for what they listened to and what they skipped, so the model sees
    "like what this user keeps" and "like what this user skips", also for tracks and
    artists the user never met.

    - ``cf_artist_listen_cos``: cosine between the user's as-of *listened* artist
      profile and the candidate artist's vector.
    - ``cf_artist_skip_cos``: the same with the user's *skipped* artist profile.
    - ``cf_artist_norm``: length of the candidate artist's vector (how much of the
      artist the top factors explain: well-known, well-placed artists are long).
    - ``cf_media_listen_cos``, ``cf_media_skip_cos``: the same two cosines at the
      track level (the user's tracks against the candidate track).

    NaN where the snapshot was not fit (fewer than ``MIN_SNAPSHOT_ROWS`` rows before
    it), the candidate is not in the snapshot, or the user has no such past plays.

    ``space`` (:func:`taste_space` of the full history) stands in for the other users' plays
    when ``history`` holds only the target user's rows (every target in its snapshot's week).
    """
    n_t = len(targets)
    names = ["cf_artist_listen_cos", "cf_artist_skip_cos", "cf_artist_norm", "cf_media_listen_cos", "cf_media_skip_cos"]
    res = {name: np.full(n_t, np.nan, dtype=np.float32) for name in names}
    if n_t == 0 or (len(history) == 0 and space is None):
        return pd.DataFrame(res)

    idx, start, end = history.locate(targets, "user_id")
    ucode_s = idx.codes_sorted
    ts_s = idx.ts_sorted
    y_s = history.y[idx.order] > 0.5

    snap = _snapshot_number(targets["ts_listen"].to_numpy())

    if space is not None and not (snap == space.snapshot).all():
        raise ValueError(f"targets outside the taste space's snapshot {space.snapshot}")
    codes = _kind_codes(history, idx) if space is None else space.codes(history, idx)
    kinds = []
    for (prefix, column), (items, icode_s) in zip(_ITEMS, codes, strict=True):
        w_listen, w_skip = _telescoped_weights(ucode_s, icode_s, y_s)
        t_items = targets[column].to_numpy()
        cand = np.minimum(np.searchsorted(items, t_items), len(items) - 1)
        cand = np.where(items[cand] == t_items, cand, -1)
        kinds.append((prefix, len(items), icode_s, w_listen, w_skip, cand))

    for k in np.unique(snap):
        if space is None:
            fit = _snapshot(history, int(k), ucode_s, ts_s, [kd[2] for kd in kinds], [kd[1] for kd in kinds])
        else:
            fit = space.fit
        if fit is None:
            continue
        sel = np.flatnonzero(snap == k)
        has = end[sel] > start[sel]
        s_sel = sel[has]
        for (prefix, _, icode_s, w_listen, w_skip, cand), (col, factors, idf) in zip(kinds, fit, strict=True):
            cand_col = np.where(cand[sel] >= 0, col[cand[sel]], -1)
            known = cand_col >= 0
            v = np.zeros((len(sel), factors.shape[1]))
            v[known] = factors[cand_col[known]]
            if f"cf_{prefix}_norm" in res:
                res[f"cf_{prefix}_norm"][sel[known]] = np.sqrt(np.einsum("ij,ij->i", v, v))[known]
            if not has.any():
                continue
            u_listen, u_skip = _fold_in(
                ucode_s, col[icode_s], [w_listen, w_skip], start[s_sel], end[s_sel], factors * idf[:, None]
            )
            res[f"cf_{prefix}_listen_cos"][s_sel] = _cosine(u_listen, v[has])
            res[f"cf_{prefix}_skip_cos"][s_sel] = _cosine(u_skip, v[has])
    return pd.DataFrame(res)
