"""Neighbours group: the user's listen rate on the artists most like the candidate's, from co-listening."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features import colisten
from features.asof import combine_keys, find_sorted, range_sum, smooth
from features.colisten import item_neighbours
from features.history import History
from features.snapshots import snapshot_number as _snapshot_number
from features.snapshots import snapshot_time as _snapshot_time
from features.snapshots import sorted_codes as _sorted_codes

__all__ = ["neighbours_features", "item_neighbours", "NeighbourLists", "neighbour_lists"]

#: Neighbours kept per artist (the most similar, ties broken by the lower artist id).
TOP_K = colisten.TOP_K
#: Each user's listener set keeps at most this many artists (their most listened, ties to the
#: lower id): the similarity product costs the sum of squared set sizes, so heavy users are capped.
USER_CAP = 50
#: An artist enters the similarity only with at least this many listeners in the snapshot.
MIN_LISTENERS = 3
#: A snapshot with fewer history rows than this is not fit: its targets get no neighbours.
MIN_SNAPSHOT_ROWS = 1000
#: Pseudo-plays (in similarity-weighted plays) pulling the neighbourhood rate toward the user's rate.
NEIGHBOUR_PRIOR_STRENGTH = 2.0
#: (name, column, min listeners, user cap) of each item kind.  Tracks work the same way
#: (``("media", "media_id", 5, 100)``) but did not pay: test AUC against the base features,
#: artists + tracks vs artists only, -0.0027 vs +0.0001 (demo1), +0.0016 vs +0.0022 (alt1),
#: +0.0000 vs +0.0004 (demo2), for 28 s more CPU and 1.4 GB more peak memory at full size.
KINDS = (("artist", "artist_id", MIN_LISTENERS, USER_CAP),)


def _neighbour_lists(
    history: History, targets: pd.DataFrame, column: str, *, min_listeners: int, user_cap: int
) -> tuple[np.ndarray, np.ndarray]:
    """Each target's ``TOP_K`` neighbours (ids of ``column``, -1 if none) and similarities, from its snapshot."""
    n_t = len(targets)
    nbr = np.full((n_t, TOP_K), -1, dtype=np.int64)
    sim = np.zeros((n_t, TOP_K))
    if n_t == 0 or len(history) == 0:
        return nbr, sim
    idx = history.index("user_id")
    ts_s = idx.ts_sorted
    items, icode_s = _sorted_codes(history.col(column)[idx.order])
    y_s = history.y[idx.order] > 0.5
    t_item = targets[column].to_numpy()
    cand = np.minimum(np.searchsorted(items, t_item), len(items) - 1)
    cand = np.where(items[cand] == t_item, cand, -1)
    snap = _snapshot_number(targets["ts_listen"].to_numpy())
    for snap_k in np.unique(snap):
        past = ts_s < _snapshot_time(snap_k)
        if past.sum() < MIN_SNAPSHOT_ROWS:
            continue
        sel = np.flatnonzero(snap == snap_k)
        uc, inv = np.unique(cand[sel], return_inverse=True)
        nb, sm = item_neighbours(
            idx.codes_sorted[past],
            icode_s[past],
            y_s[past],
            len(idx.uniq),
            len(items),
            uc,
            min_listeners=min_listeners,
            user_cap=user_cap,
            top_k=TOP_K,
        )
        nbr[sel] = np.where(nb >= 0, items[np.maximum(nb, 0)], -1)[inv]
        sim[sel] = sm[inv]
    return nbr, sim


@dataclass(frozen=True)
class NeighbourLists:
    """Every item's neighbours in one snapshot: what the group needs of other users' plays."""

    snapshot: int
    #: Per kind name: sorted item ids, their ``TOP_K`` neighbour ids (-1: none) and similarities.
    lists: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]

    def lookup(self, name: str, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Neighbours and similarities of ``items`` (none for an item not in the lists)."""
        ids, nbr, sim = self.lists[name]
        pos, found = find_sorted(ids, items)
        out_n = np.full((len(items), TOP_K), -1, dtype=np.int64)
        out_s = np.zeros((len(items), TOP_K))
        out_n[found], out_s[found] = nbr[pos[found]], sim[pos[found]]
        return out_n, out_s


def neighbour_lists(history: History, at: int) -> NeighbourLists:
    """The neighbours of every item of the history in the snapshot in force at time ``at``.

    An item's neighbours are its own row of the similarity product, whatever else is asked
    with it, so these are the lists the group finds for any target in that snapshot's week.
    """
    out = {}
    for name, column, min_l, cap in KINDS:
        ids = np.unique(history.col(column)).astype(np.int64)
        targets = pd.DataFrame({column: ids, "ts_listen": np.full(len(ids), at, dtype=np.int64)})
        nbr, sim = _neighbour_lists(history, targets, column, min_listeners=min_l, user_cap=cap)
        out[name] = (ids, nbr, sim)
    return NeighbourLists(snapshot=int(_snapshot_number(np.array([at]))[0]), lists=out)


def _user_on_neighbours(
    history: History, targets: pd.DataFrame, column: str, nbr: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The target user's plays and listens of each neighbour strictly before the target (as-of pair index)."""
    n_t = len(targets)
    t = np.repeat(targets["ts_listen"].to_numpy().astype(np.int64), TOP_K)
    u = np.repeat(targets["user_id"].to_numpy().astype(np.int64), TOP_K)
    ok = nbr.ravel() >= 0
    pidx = history.index("user_id", column)
    q = combine_keys(u, np.maximum(nbr.ravel(), 0))
    qo = np.argsort(q, kind="stable")  # sorted queries: each binary search starts from the last one
    s, e = np.empty(len(q), dtype=np.int64), np.empty(len(q), dtype=np.int64)
    s[qo], e[qo] = pidx.locate(q[qo], t[qo])
    e = np.where(ok, e, s)
    plays = (e - s).astype(np.float64).reshape(n_t, TOP_K)
    listens = range_sum(history.y[pidx.order], s, e).reshape(n_t, TOP_K)
    return plays, listens


def neighbours_features(
    history: History, targets: pd.DataFrame, *, lists: NeighbourLists | None = None
) -> pd.DataFrame:
    """The user's listen rate, before the target, on the artists (and tracks) most like the candidate's.

    A track or artist the user never met says nothing through the user_item group; its
    neighbours may: a user who keeps listening to the artists whose audience overlaps the
    candidate's probably likes the candidate too, and one who skips them probably not.

    Item similarity comes from co-listening on a weekly calendar snapshot (all rows with
    ``ts < T_s``, the grid of :mod:`features.cf`; a target at ``t`` uses the latest
    ``T_s <= t``): the cosine of two items' listener sets (users who listened at least once),
    each user's set capped to their ``USER_CAP`` most listened items and weighted
    ``1 / sqrt(set size)``, so heavy users neither dominate the similarity nor blow up the
    product; only items with ``MIN_LISTENERS`` listeners take part, and a candidate keeps its
    ``TOP_K`` most similar items (never itself).  The user side is exact as of ``t``: the
    user's plays and listens of each neighbour strictly before ``t``, from the as-of
    (user, item) index.  For ``<k>`` in ``KINDS`` (artists; tracks did not pay):

    - ``neighbours_<k>_rate``: similarity-weighted listen rate over the neighbours,
      ``sum(s * listens) / sum(s * plays)``, smoothed with ``NEIGHBOUR_PRIOR_STRENGTH``
      similarity-weighted pseudo-plays toward the user's own as-of rate (``user_rate``).
    - ``neighbours_<k>_lift``: that rate minus the user's rate -- how the user takes this
      neighbourhood compared with everything they play.
    - ``neighbours_<k>_log_plays``: log1p of ``sum(s * plays)``, the evidence behind the rate.
    - ``neighbours_<k>_met``: 1 if the user played any neighbour before.

    Without a snapshot (fewer than ``MIN_SNAPSHOT_ROWS`` rows before ``T_s``), neighbours or
    plays of them, the rate is the user's rate and the counts are 0.

    Past-only: the similarity uses only rows before ``T_s <= t``; a candidate's neighbours
    are its own row of the similarity product (ties to the lower id), so they depend neither
    on later rows nor on the other targets of the batch; the user's counts are as-of ranges
    ending strictly before ``t``.

    ``lists`` (:func:`neighbour_lists` of the full history) stands in for the other users'
    plays when ``history`` holds only the target user's rows (every target in its snapshot's week).
    """
    user_rate, _ = history.user_rate(targets)
    out = {}
    for name, column, min_l, cap in KINDS:
        if lists is None:
            nbr, sim = _neighbour_lists(history, targets, column, min_listeners=min_l, user_cap=cap)
        else:
            if not (_snapshot_number(targets["ts_listen"].to_numpy()) == lists.snapshot).all():
                raise ValueError(f"targets outside the neighbour lists' snapshot {lists.snapshot}")
            nbr, sim = lists.lookup(name, targets[column].to_numpy().astype(np.int64))
        plays, listens = _user_on_neighbours(history, targets, column, nbr)
        w_plays = (sim * plays).sum(axis=1)
        w_listens = (sim * listens).sum(axis=1)
        rate = smooth(w_listens, w_plays, user_rate, NEIGHBOUR_PRIOR_STRENGTH)
        out[f"neighbours_{name}_rate"] = rate
        out[f"neighbours_{name}_lift"] = rate - user_rate
        out[f"neighbours_{name}_log_plays"] = np.log1p(w_plays)
        out[f"neighbours_{name}_met"] = (plays > 0).any(axis=1).astype(np.float64)
    return pd.DataFrame({c: np.asarray(v, dtype=np.float32) for c, v in out.items()})
