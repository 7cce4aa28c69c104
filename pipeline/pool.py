"""The moment "now" and the candidate pools of the recommender, without any model.

:class:`Scene` loads the train history once and answers what every recommendation needs
before a model is involved: *now* (after every known play, past the session gap, so each
candidate opens a new Flow session), each user's plays, their candidate pool and the
example rows that put each candidate in front of the user at *now*.  The recommender
(:mod:`pipeline.recommend`) adds the winner on top; the feature stage uses the scene alone
to write the sample users' candidates (:func:`sample_examples`), whose features are then
computed in the same pass as the test rows' (one pass of each group over the history for
both; see ``pipeline/build_features.py``).

**The candidate pool** (documented, and the same for every user):

* the ``RECENT_TOP`` most played tracks of the last ``RECENT_DAYS`` days;
* for each of the user's ``USER_TOP_ARTISTS`` most listened artists, its ``NEIGHBOURS``
  nearest artists by co-listening (:func:`features.colisten.item_neighbours` on all of
  the history) and the ``TRACKS_PER_ARTIST`` most played tracks of those artists and of
  the user's artists themselves;
* minus the tracks the user has already heard (any play), unless ``include_heard``.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from core import config
from core.errors import PipelineError, run_cli
from core.io import write_parquet
from core.schema import SAMPLE_ID, TEST_COLUMNS
from core.settings import FeatureSettings, load
from features.asof import find_sorted
from features.history import History
from pipeline.data.examples import build_test_examples

log = logging.getLogger("pool")

__all__ = [
    "RECENT_DAYS",
    "RECENT_TOP",
    "USER_TOP_ARTISTS",
    "NEIGHBOURS",
    "TRACKS_PER_ARTIST",
    "NearTable",
    "PoolContext",
    "Scene",
    "catalogue",
    "candidate_pool",
    "candidate_rows",
    "pool_context",
    "sample_examples",
]

RECENT_DAYS = 14
RECENT_TOP = 300
USER_TOP_ARTISTS = 10
NEIGHBOURS = 5
TRACKS_PER_ARTIST = 3
_DAY = 86_400

#: The report's sample users: a heavy, a median and a light listener (quantile of train plays).
SAMPLE_QUANTILES = (("heavy", 0.95), ("median", 0.5), ("light", 0.1))


def catalogue(df: pd.DataFrame) -> pd.DataFrame:
    """One row per track: its metadata (as last seen) and how often it was played."""
    last = df.sort_values("ts_listen", kind="stable").drop_duplicates("media_id", keep="last")
    meta = last.set_index("media_id")[["album_id", "artist_id", "genre_id", "release_date", "media_duration"]]
    meta["plays"] = df["media_id"].value_counts().reindex(meta.index).to_numpy()
    return meta


class NearTable(Mapping):
    """Artists' neighbours as two arrays: sorted artist ids and their neighbours (-1: none).

    A read-only ``near`` of a :class:`PoolContext` whose every artist was warmed; an artist
    not in it has no neighbours (as :meth:`PoolContext.warm` finds for an artist without plays).
    """

    def __init__(self, near: Mapping[int, np.ndarray]) -> None:
        self.ids = np.array(sorted(near), dtype=np.int64)
        width = max([NEIGHBOURS, *(len(v) for v in near.values())])
        self.table = np.full((len(self.ids), width), -1, dtype=np.int64)
        for i, a in enumerate(self.ids):
            v = near[int(a)]
            self.table[i, : len(v)] = v

    def _pos(self, artist: int) -> int:
        pos, found = find_sorted(self.ids, np.array([artist], dtype=np.int64))
        return int(pos[0]) if found[0] else -1

    def __getitem__(self, artist: int) -> np.ndarray:
        pos = self._pos(int(artist))
        if pos < 0:
            return np.array([], dtype=np.int64)
        row = self.table[pos]
        return row[row >= 0]

    def __contains__(self, artist: object) -> bool:
        return isinstance(artist, (int, np.integer)) and self._pos(int(artist)) >= 0

    def __iter__(self) -> Iterator[int]:
        return iter(int(a) for a in self.ids)

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class PoolContext:
    """What every user's pool shares at one moment ``now``: built once, then each user's pool is cheap."""

    now: int
    #: Plays of each track in the last ``RECENT_DAYS`` days, most played first (ties: lower id).
    recent_plays: pd.Series
    #: The ``TRACKS_PER_ARTIST`` most played tracks of every artist (artist_id, media_id).
    best: pd.DataFrame
    #: Co-listening inputs of :func:`features.colisten.item_neighbours` over the plays before ``now``.
    items: np.ndarray
    ucode: np.ndarray
    acode: np.ndarray
    listened: np.ndarray
    n_users: int
    #: Each artist's ``NEIGHBOURS`` nearest artists, filled on demand (:meth:`warm`).
    near: dict[int, np.ndarray] | NearTable = field(default_factory=dict)

    def complete(self) -> None:
        """Find every artist's neighbours, then drop the plays: a context that never needs them again.

        ``near`` becomes a :class:`NearTable` (two arrays instead of a dict of small ones: the
        recommender's saved state loads in a fraction of the time).
        """
        self.warm(self.items)
        self.near = NearTable(self.near)
        self.ucode = self.acode = np.zeros(0, dtype=np.int64)
        self.listened = np.zeros(0, dtype=bool)

    def warm(self, artists: np.ndarray) -> None:
        """Find the neighbours of every artist of ``artists`` not yet known, in one pass over the plays.

        An artist's neighbours do not depend on the others asked with it
        (:func:`features.colisten.item_neighbours`), so many users' pools share one pass.
        """
        if isinstance(self.near, NearTable):  # complete: every artist of the plays is in it
            return
        todo = np.unique(np.asarray([a for a in artists if int(a) not in self.near], dtype=np.int64))
        if len(todo) == 0:
            return
        cand, found = find_sorted(self.items, todo)
        for a in todo[~found]:
            self.near[int(a)] = np.array([], dtype=np.int64)
        if not found.any():
            return
        from features.colisten import item_neighbours  # the co-listening similarity of the neighbours group

        nb, _ = item_neighbours(
            self.ucode, self.acode, self.listened, self.n_users, len(self.items), cand[found], min_listeners=3,
            user_cap=50,
        )  # fmt: skip
        for a, row in zip(todo[found], nb[:, :NEIGHBOURS], strict=True):
            self.near[int(a)] = self.items[row[row >= 0]]

    @property
    def popular(self) -> list[int]:
        """The ``RECENT_TOP`` most played tracks of the last ``RECENT_DAYS`` days, most played first."""
        return [int(m) for m in self.recent_plays.index[:RECENT_TOP]]


def pool_context(history: pd.DataFrame, now: int) -> PoolContext:
    """The user-independent part of :func:`candidate_pool` as of ``now`` (plays strictly before it)."""
    ts = history["ts_listen"].to_numpy()
    past = history[ts < now]
    recent = past[past["ts_listen"].to_numpy() >= now - RECENT_DAYS * _DAY]
    popular = recent["media_id"].value_counts().sort_index().sort_values(ascending=False, kind="stable")
    plays = past.groupby(["artist_id", "media_id"]).size().rename("n").reset_index()
    plays = plays.sort_values(["artist_id", "n", "media_id"], ascending=[True, False, True], kind="stable")
    users, ucode = np.unique(past["user_id"].to_numpy(), return_inverse=True)
    items, acode = np.unique(past["artist_id"].to_numpy(), return_inverse=True)
    return PoolContext(
        now=now,
        recent_plays=popular,
        best=plays.groupby("artist_id", sort=False).head(TRACKS_PER_ARTIST)[["artist_id", "media_id"]],
        items=items,
        ucode=ucode,
        acode=acode,
        listened=past["is_listened"].to_numpy() == 1,
        n_users=len(users),
    )


def candidate_pool(
    history: pd.DataFrame | None,
    catalogue: pd.DataFrame,
    user_rows: pd.DataFrame,
    *,
    now: int,
    include_heard: bool = False,
    context: PoolContext | None = None,
) -> pd.DataFrame:
    """The documented pool for a user as of ``now`` (rows of ``catalogue`` plus a ``source`` column).

    Only plays strictly before ``now`` are used, so the pool of a past moment (the
    evaluation) is built exactly as it was then.  ``context`` (:func:`pool_context` at the
    same ``now``) saves rebuilding the part every user shares.
    """
    if context is None or context.now != now:
        if history is None:
            raise ValueError(f"no pool context at now={now} and no history to build one")
        context = pool_context(history, now)
    picked: dict[int, str] = dict.fromkeys(context.popular, "popular lately")
    mine = user_rows[user_rows["ts_listen"].to_numpy() < now]
    if len(mine):
        mine_top = top_artists(mine)
        near = _near_artists(context, mine_top)
        best = context.best
        for source, artists in (("your artists", mine_top), ("artists like yours", near)):
            for m in best[best["artist_id"].isin(artists)]["media_id"].tolist():
                picked.setdefault(int(m), source)
    ids = np.array(sorted(picked), dtype=np.int64)
    if not include_heard and len(mine):
        ids = ids[~np.isin(ids, mine["media_id"].to_numpy())]
    ids = ids[np.isin(ids, catalogue.index.to_numpy())]
    out = catalogue.loc[ids].copy()
    out["source"] = [picked[int(m)] for m in ids]
    return out


def top_artists(mine: pd.DataFrame) -> np.ndarray:
    """The user's ``USER_TOP_ARTISTS`` most listened artists (most first, ties to the lower id)."""
    liked = mine[mine["is_listened"] == 1]["artist_id"].value_counts().sort_index()
    return liked.sort_values(ascending=False, kind="stable").index[:USER_TOP_ARTISTS].to_numpy()


def _near_artists(context: PoolContext, artists: np.ndarray) -> np.ndarray:
    """The ``NEIGHBOURS`` nearest artists of each of ``artists`` by co-listening, minus ``artists``."""
    if len(artists) == 0 or len(context.items) == 0:
        return np.array([], dtype=np.int64)
    context.warm(artists)
    near = [context.near[int(a)] for a in artists]
    return np.setdiff1d(np.concatenate(near).astype(context.items.dtype), artists)


def candidate_rows(
    user_id: int, rows: pd.DataFrame, pool: pd.DataFrame, now: int, *, age: int | None, gender: int | None
) -> pd.DataFrame:
    """Example rows for (user, candidate) at ``now``: a Flow session start on the user's usual device.

    ``rows`` are the user's history rows (empty for a new user: platform 0, age 24, gender 0
    unless ``age``/``gender`` say otherwise); ``pool`` is rows of the catalogue.
    """
    if len(rows):
        last = rows.sort_values("ts_listen", kind="stable").iloc[-1]
        flow = rows[rows["listen_type"] == 1]
        context = int(flow["context_type"].mode().iloc[0]) if len(flow) else 1
        person = {c: int(last[c]) for c in ("platform_name", "platform_family", "user_age", "user_gender")}
    else:
        context = 1
        person = {"platform_name": 0, "platform_family": 0, "user_age": 24, "user_gender": 0}
    if age is not None:
        person["user_age"] = age
    if gender is not None:
        person["user_gender"] = gender
    n = len(pool)
    # Test-file rows (sample_id -1: no submission row), laid out by the test split's own builder.
    out = pd.DataFrame(
        {
            SAMPLE_ID: -1,
            "genre_id": pool["genre_id"].to_numpy(),
            "ts_listen": np.full(n, now),
            "media_id": pool.index.to_numpy(),
            "album_id": pool["album_id"].to_numpy(),
            "context_type": context,
            "release_date": pool["release_date"].to_numpy(),
            "platform_name": person["platform_name"],
            "platform_family": person["platform_family"],
            "media_duration": pool["media_duration"].to_numpy(),
            "listen_type": 1,
            "user_gender": person["user_gender"],
            "user_id": user_id,
            "artist_id": pool["artist_id"].to_numpy(),
            "user_age": person["user_age"],
        },
        index=range(n),
    )
    return build_test_examples(out.astype(TEST_COLUMNS))


class Scene:
    """The train history, the catalogue and "now", loaded once; pools and example rows per user."""

    def __init__(self, *, history_path: Path | None = None, test_path: Path | None = None) -> None:
        path = Path(history_path or config.TRAIN_PARQUET)
        if not path.exists():
            raise PipelineError(f"{path} is missing: run `make features` first")
        self.test_path = Path(test_path or config.TEST_PARQUET)
        self.settings = load(FeatureSettings)
        df = pd.read_parquet(path)
        self.history = History(df, settings=self.settings, store=config.HISTORY_CACHE)
        self.catalogue = catalogue(df)
        ts = df["ts_listen"].to_numpy()
        last = int(ts.max()) if len(ts) else 0
        if self.test_path.exists():
            last = max(last, int(pd.read_parquet(self.test_path, columns=["ts_listen"])["ts_listen"].max()))
        #: "Now": after every known play, past the session gap, so each candidate opens a new session.
        self.now = last + int(self.settings.gap_seconds) + 60
        self._pool_context: PoolContext | None = None

    @property
    def new_user(self) -> int:
        """The id a user unknown to the history is scored as (one past the largest known id)."""
        return int(self.history.df["user_id"].max()) + 1

    def user_rows(self, user_id: int) -> pd.DataFrame:
        idx = self.history.index("user_id")
        pos = np.searchsorted(idx.uniq, user_id)
        if pos >= len(idx.uniq) or idx.uniq[pos] != user_id:
            return self.history.df.iloc[:0]
        start = np.searchsorted(idx.codes_sorted, pos, side="left")
        end = np.searchsorted(idx.codes_sorted, pos, side="right")
        return self.history.df.iloc[idx.order[start:end]]

    @property
    def pool_context(self) -> PoolContext:
        if self._pool_context is None:
            self._pool_context = pool_context(self.history.df, self.now)
        return self._pool_context

    def pool(self, user_id: int, *, include_heard: bool = False) -> pd.DataFrame:
        context = self.pool_context  # built before, so a scene without its history (NowScene) has it
        return candidate_pool(
            None, self.catalogue, self.user_rows(user_id), now=self.now, include_heard=include_heard, context=context
        )  # fmt: skip

    def warm_pools(self, user_ids: list[int]) -> None:
        """Find the artist neighbours every one of ``user_ids``' pools needs in one pass (same pools)."""
        mine = [top_artists(self.user_rows(u)) for u in user_ids]
        self.pool_context.warm(np.concatenate(mine) if mine else np.array([], dtype=np.int64))

    def targets(self, user_id: int, pool: pd.DataFrame, *, age: int | None, gender: int | None) -> pd.DataFrame:
        """Example rows for (user, candidate) at ``now``: a Flow session start on the user's usual device."""
        return candidate_rows(user_id, self.user_rows(user_id), pool, self.now, age=age, gender=gender)

    def sample_users(self) -> dict[str, int]:
        """A heavy, a median and a light listener (by train plays) among the test's users, for the report."""
        counts = self.history.df["user_id"].value_counts().sort_index()
        if self.test_path.exists():
            test_users = pd.read_parquet(self.test_path, columns=["user_id"])["user_id"].unique()
            counts = counts[counts.index.isin(test_users)] if counts.index.isin(test_users).any() else counts
        out = {}
        for label, q in SAMPLE_QUANTILES:
            target = counts.quantile(q, interpolation="nearest")
            out[label] = int((counts - target).abs().sort_values(kind="stable").index[0])
        return out


def sample_examples(scene: Scene) -> pd.DataFrame:
    """The report's sample users' candidates at ``now``, as example rows plus ``sample`` and ``source``.

    One row per (sample user, candidate), in the order of :data:`SAMPLE_QUANTILES` and of each
    pool; ``example_id`` numbers them all.  A user who is two samples at once (a tiny history)
    is listed once per label.
    """
    # Typed and empty, so the layout holds when every pool is empty.
    frames = [build_test_examples(pd.DataFrame({c: pd.Series(dtype=dt) for c, dt in TEST_COLUMNS.items()}))]
    frames[0]["sample"], frames[0]["source"] = pd.Series(dtype=str), pd.Series(dtype=str)
    users = scene.sample_users()
    scene.warm_pools(list(users.values()))
    for label, user_id in users.items():
        pool = scene.pool(user_id)
        if pool.empty:  # no recent plays at all: nothing to show for this user (the report says so)
            log.warning("sample user %d (%s) has an empty candidate pool", user_id, label)
            continue
        t = scene.targets(user_id, pool, age=None, gender=None)
        t["sample"] = label
        t["source"] = pool["source"].to_numpy()
        frames.append(t)
    out = pd.concat(frames, ignore_index=True)
    out["example_id"] = np.arange(len(out), dtype=np.int64)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description="Write the report's sample users' candidates at now, as example rows.")
    ap.add_argument("--history", type=Path, default=config.TRAIN_PARQUET)
    ap.add_argument("--test", type=Path, default=config.TEST_PARQUET)
    ap.add_argument("--out", type=Path, default=config.EXAMPLES_NOW)
    args = ap.parse_args()
    scene = Scene(history_path=args.history, test_path=args.test)
    out = sample_examples(scene)
    counts = out.groupby("sample", sort=False).size()
    log.info("sample candidates at now=%d: %s", scene.now, ", ".join(f"{k} {v}" for k, v in counts.items()))
    write_parquet(out, args.out)


if __name__ == "__main__":
    run_cli(main)
