"""Item-item similarity from co-listening: shared by the neighbours feature group and the recommender's pool.

Its own module so that the recommender's candidate pool (``pipeline/pool.py``, built by
``make features``) depends on the similarity only, not on the neighbours group's feature
code: editing ``features/neighbours.py`` rebuilds that group alone.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from features.snapshots import compact as _compact

__all__ = ["item_neighbours", "TOP_K", "USER_WEIGHT_POWER"]

#: Neighbours kept per item by default (the most similar, ties broken by the lower item code).
TOP_K = 20
#: User-row weight: ``1 / n_items ** USER_WEIGHT_POWER`` (0: every listener counts the same).
#: Correlation of ``neighbours_artist_lift`` with the base features' out-of-fold error (demo1 /
#: alt1): power 1 0.009 / 0.011, power 0.5 0.013 / 0.012, power 0 0.015 / 0.012; 50 neighbours
#: instead of 20 or a cap of 200 artists instead of 50 moved it by no more than its noise (0.004).
USER_WEIGHT_POWER = 0.5
#: Candidate rows, and product entries, of the similarity computed at once (bounds its memory;
#: the rows must stay below 2**11 for the ranking key).
_CHUNK = 2000
_CHUNK_NNZ = 4_000_000
#: Similarities are quantized to multiples of ``1 / _Q`` for the neighbour ranking (and output).
_Q = 1 << 31


def item_neighbours(
    ucode: np.ndarray,
    acode: np.ndarray,
    listened: np.ndarray,
    n_users: int,
    n_items: int,
    cand: np.ndarray,
    *,
    min_listeners: int,
    user_cap: int,
    top_k: int = TOP_K,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``top_k`` co-listening neighbours of the items ``cand`` (codes), from one snapshot's rows.

    ``ucode``, ``acode``, ``listened`` are the snapshot's rows.  A user's set is the items
    with ``min_listeners`` listeners they listened to at least once (capped to their
    ``user_cap`` most listened, ties to the lower code); the similarity of items a, b is the
    cosine of their listener sets with each user weighted by ``1 / set_size **
    USER_WEIGHT_POWER`` (a user who listens to everything says little about any pair).
    Returns ``(nbr, sim)`` of shape ``(len(cand), top_k)``: item codes (-1 where fewer
    neighbours) and similarities (0 there), most similar first; an item is never its own
    neighbour.
    """
    if max(n_users, n_items) >= 1 << 21:  # the sort keys below pack a code into 21 bits
        raise ValueError(f"{n_users} users, {n_items} items: more than the neighbour ranking supports (2**21)")
    nc = len(cand)
    nbr = np.full((nc, top_k), -1, dtype=np.int64)
    sim = np.zeros((nc, top_k))
    key = (ucode[listened].astype(np.int64) << 32) | acode[listened].astype(np.int64)
    if len(key) == 0:
        return nbr, sim
    pairs, plays = np.unique(key, return_counts=True)
    pu, pa = pairs >> 32, pairs & 0xFFFFFFFF
    # Keep items with enough listeners, then each user's user_cap most listened of them.
    ok = np.bincount(pa, minlength=n_items)[pa] >= min_listeners
    pu, pa, plays = pu[ok], pa[ok], plays[ok]
    # One int64 sort key: user, then most listened first, then the lower item code.
    fewer = (1 << 21) - 1 - np.minimum(plays, (1 << 21) - 1)
    order = np.argsort((pu << 42) | (fewer << 21) | pa)
    pu, pa = pu[order], pa[order]
    first = np.ones(len(pu), dtype=bool)
    first[1:] = pu[1:] != pu[:-1]
    pos = np.arange(len(pu))
    rank = pos - np.maximum.accumulate(np.where(first, pos, 0))
    keep = rank < user_cap
    pu, pa = pu[keep], pa[keep]
    if len(pu) == 0:
        return nbr, sim
    row, n_rows = _compact(pu, n_users)
    col, n_cols = _compact(pa, n_items)
    n_per_user = np.bincount(row[pu], minlength=n_rows).astype(np.float64)
    w = 1.0 / n_per_user**USER_WEIGHT_POWER
    x = sp.csr_matrix((np.ones(len(pu)), (row[pu], col[pa])), shape=(n_rows, n_cols))
    norm = np.sqrt(np.asarray(x.T @ w).ravel())
    c_col = np.where(cand >= 0, col[np.maximum(cand, 0)], -1)
    has = c_col >= 0
    if not has.any():
        return nbr, sim
    xt = (x.T @ sp.diags(w)).tocsr()  # items x users, weighted
    item_of_col = np.flatnonzero(col >= 0)
    rows_has = np.flatnonzero(has)
    # Candidates in chunks of at most _CHUNK rows and about _CHUNK_NNZ product entries (a row
    # has at most the summed set sizes of the item's listeners): popular artists' rows are long.
    bound = np.cumsum(np.asarray(x.T @ n_per_user).ravel()[c_col[rows_has]])
    c0 = 0
    while c0 < len(rows_has):
        c1 = int(np.searchsorted(bound, (bound[c0 - 1] if c0 else 0.0) + _CHUNK_NNZ, side="right"))
        c1 = min(max(c1, c0 + 1), c0 + _CHUNK)
        rows_c = rows_has[c0:c1]
        c0 = c1
        cc = c_col[rows_c]
        s = (xt[cc] @ x).tocsr()
        i = np.repeat(np.arange(len(cc), dtype=np.int64), np.diff(s.indptr))
        j = s.indices.astype(np.int64)
        v = s.data / (norm[cc][i] * norm[j])
        notself = j != cc[i]
        i, j, v = i[notself], j[notself], v[notself]
        # One int64 sort key: row, then similarity descending (quantized to 2**-31, a function of
        # the value alone), then the lower item code, so a candidate's neighbours never depend on
        # the other candidates of the batch.
        q = np.clip(((1.0 - v) * _Q).astype(np.int64), 0, _Q - 1)
        key = np.sort((i << 52) | (q << 21) | j)
        i, j = key >> 52, key & ((1 << 21) - 1)
        v = 1.0 - ((key >> 21) & (_Q - 1)) / _Q
        first = np.ones(len(i), dtype=bool)
        first[1:] = i[1:] != i[:-1]
        pos = np.arange(len(i))
        r = pos - np.maximum.accumulate(np.where(first, pos, 0)) if len(i) else pos
        top = r < top_k
        nbr[rows_c[i[top]], r[top]] = item_of_col[j[top]]
        sim[rows_c[i[top]], r[top]] = v[top]
    return nbr, sim
