"""From "will this user listen?" to "what should Flow play this user next?" (`make recommend`, `make similar`).

The trained winner scores candidate tracks for a user as if each were the first track of
a new Flow session *now* -- the end of the data (the latest train or test timestamp,
plus a session gap) -- with every feature computed past-only, through the same feature
groups and the same winner as a test row.  The top ``N`` come with their predicted
listen probability, artist, album, genre and *why*: the features that pushed the
probability up most for that track (LightGBM's per-row contributions), in words.

**The candidate pool** (documented, and the same for every user):

* the ``RECENT_TOP`` most played tracks of the last ``RECENT_DAYS`` days;
* for each of the user's ``USER_TOP_ARTISTS`` most listened artists, its ``NEIGHBOURS``
  nearest artists by co-listening (:func:`features.neighbours.item_neighbours` on all of
  the history) and the ``TRACKS_PER_ARTIST`` most played tracks of those artists and of
  the user's artists themselves;
* minus the tracks the user has already heard (any play), unless ``include_heard``.

A user the train history does not know gets the **cold-start list**: the same pool
scored for a new user of the given age and gender (the demographics group uses them),
with a clear message, not an error.

:func:`similar` gives the tracks closest to a track in the learned taste space: the
track vectors of the collaborative-filtering snapshot SVD (:mod:`features.cf`), by
cosine.

:func:`evaluate` measures the recommender on the validation round: for a seeded sample
of users, the pool as of each user's round-1 time plus their actual next Flow track,
ranked by the model fit WITHOUT round 1 and by popularity (plays in the last
``RECENT_DAYS``): hit rate at 10 and NDCG at 10.
"""

from __future__ import annotations

import argparse
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd

from core import config
from core.errors import PipelineError, run_cli
from core.io import read_json, write_json
from core.schema import FEATURE_COLUMNS
from core.settings import FeatureSettings, load
from features import FEATURE_GROUPS
from features.history import History
from models.fitting import predict_scores
from pipeline.build_features import compute_group
from pipeline.recommend_why import explain

log = logging.getLogger("recommend")

__all__ = [
    "Recommendation",
    "Recommender",
    "candidate_pool",
    "pool_context",
    "similar",
    "evaluate",
    "sample_recommendations",
    "main",
]

RECENT_DAYS = 14
RECENT_TOP = 300
USER_TOP_ARTISTS = 10
NEIGHBOURS = 5
TRACKS_PER_ARTIST = 3
#: Users whose history is scored in the validation-round evaluation (a seeded sample).
EVAL_USERS = 200
_DAY = 86_400


@dataclass(frozen=True)
class Recommendation:
    """The top tracks for one user, best first."""

    user_id: int
    known_user: bool
    now: int
    tracks: pd.DataFrame  # media_id, p_listen, artist_id, album_id, genre_id, source, why
    history: pd.DataFrame = field(repr=False)  # the user's latest plays (for the report)
    seconds: float = 0.0


def _catalogue(df: pd.DataFrame) -> pd.DataFrame:
    """One row per track: its metadata (as last seen) and how often it was played."""
    last = df.sort_values("ts_listen", kind="stable").drop_duplicates("media_id", keep="last")
    meta = last.set_index("media_id")[["album_id", "artist_id", "genre_id", "release_date", "media_duration"]]
    meta["plays"] = df["media_id"].value_counts().reindex(meta.index).to_numpy()
    return meta


class Recommender:
    """The winner, the history and the catalogue, loaded once; ``recommend(user)`` per request."""

    def __init__(self, *, models_dir: Path | None = None, history_path: Path | None = None) -> None:
        models_dir = Path(models_dir or config.MODELS_DIR)
        winner_path = models_dir / "winner.json"
        if not winner_path.exists():
            raise PipelineError(f"{winner_path} is missing: run `make features train submit` first")
        self.winner = read_json(winner_path)["model"]
        artifact = joblib.load(models_dir / f"{self.winner}.joblib")
        self.model, self.features = artifact["model"], list(artifact["features"])
        path = Path(history_path or config.TRAIN_PARQUET)
        if not path.exists():
            raise PipelineError(f"{path} is missing: run `make features` first")
        self.settings = load(FeatureSettings)
        df = pd.read_parquet(path)
        self.history = History(df, settings=self.settings, store=config.HISTORY_CACHE)
        self.catalogue = _catalogue(df)
        ts = df["ts_listen"].to_numpy()
        last = int(ts.max()) if len(ts) else 0
        if config.TEST_PARQUET.exists():
            last = max(last, int(pd.read_parquet(config.TEST_PARQUET, columns=["ts_listen"])["ts_listen"].max()))
        #: "Now": after every known play, past the session gap, so each candidate opens a new session.
        self.now = last + int(self.settings.gap_seconds) + 60
        self.groups = sorted({g for g in FEATURE_GROUPS if any(f.startswith(f"{g}_") for f in self.features)})
        self._pool_context: PoolContext | None = None

    # --- candidates -------------------------------------------------------------------------

    def user_rows(self, user_id: int) -> pd.DataFrame:
        idx = self.history.index("user_id")
        pos = np.searchsorted(idx.uniq, user_id)
        if pos >= len(idx.uniq) or idx.uniq[pos] != user_id:
            return self.history.df.iloc[:0]
        start = np.searchsorted(idx.codes_sorted, pos, side="left")
        end = np.searchsorted(idx.codes_sorted, pos, side="right")
        return self.history.df.iloc[idx.order[start:end]]

    def pool(self, user_id: int, *, include_heard: bool = False) -> pd.DataFrame:
        if self._pool_context is None:
            self._pool_context = pool_context(self.history.df, self.now)
        return candidate_pool(
            self.history.df, self.catalogue, self.user_rows(user_id), now=self.now, include_heard=include_heard,
            context=self._pool_context,
        )  # fmt: skip

    # --- scoring ----------------------------------------------------------------------------

    def targets(self, user_id: int, pool: pd.DataFrame, *, age: int | None, gender: int | None) -> pd.DataFrame:
        """Example rows for (user, candidate) at ``now``: a Flow session start on the user's usual device."""
        rows = self.user_rows(user_id)
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
        out = pd.DataFrame(
            {
                "example_id": np.arange(n, dtype=np.int64),
                "row_id": np.full(n, -1, dtype=np.int64),
                "round": np.zeros(n, dtype=np.int16),
                "genre_id": pool["genre_id"].to_numpy(),
                "ts_listen": np.full(n, self.now),
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
                "sample_id": np.full(n, -1, dtype=np.int32),
            }
        )
        return out.astype({c: dt for c, dt in FEATURE_COLUMNS.items()})

    def matrix(self, targets: pd.DataFrame) -> pd.DataFrame:
        """The winner's features for ``targets``, computed past-only by the same groups as a test row."""
        frames = [compute_group(g, self.history, targets).drop(columns="example_id") for g in self.groups]
        X = pd.concat(frames, axis=1) if frames else pd.DataFrame(index=targets.index)
        missing = [f for f in self.features if f not in X.columns]
        if missing:
            raise PipelineError(f"the winner needs features no group computes ({', '.join(missing[:5])}): make train")
        return X[self.features]

    def recommend(
        self,
        user_id: int,
        *,
        n: int = 10,
        include_heard: bool = False,
        age: int | None = None,
        gender: int | None = None,
    ) -> Recommendation:
        """The ``n`` candidates with the highest predicted listen probability, best first, with reasons."""
        return self.recommend_many([user_id], n=n, include_heard=include_heard, age=age, gender=gender)[0]

    def recommend_many(
        self,
        user_ids: list[int],
        *,
        n: int = 10,
        include_heard: bool = False,
        age: int | None = None,
        gender: int | None = None,
    ) -> list[Recommendation]:
        """:meth:`recommend` for several users, their candidates scored in one pass of the feature groups."""
        t0 = time.perf_counter()
        new_user = int(self.history.df["user_id"].max()) + 1
        plans = []
        for user_id in user_ids:
            known = len(self.user_rows(user_id)) > 0
            scored_as = user_id if known else new_user
            pool = self.pool(scored_as, include_heard=include_heard)
            if pool.empty:
                raise PipelineError("the candidate pool is empty: the history has no recent plays")
            plans.append((user_id, known, pool, self.targets(scored_as, pool, age=age, gender=gender)))
        targets = pd.concat([t for *_, t in plans], ignore_index=True)
        targets["example_id"] = np.arange(len(targets), dtype=np.int64)
        X_all = self.matrix(targets)
        p_all = predict_scores(self.model, X_all)
        out, start = [], 0
        for user_id, known, pool, t in plans:
            X, p = X_all.iloc[start : start + len(t)].reset_index(drop=True), p_all[start : start + len(t)]
            start += len(t)
            order = np.lexsort((pool.index.to_numpy(), -p))[:n]
            top = pool.iloc[order]
            tracks = pd.DataFrame(
                {
                    "media_id": top.index.to_numpy(),
                    "p_listen": p[order],
                    "artist_id": top["artist_id"].to_numpy(),
                    "album_id": top["album_id"].to_numpy(),
                    "genre_id": top["genre_id"].to_numpy(),
                    "source": top["source"].to_numpy(),
                    "why": explain(self.model, X, order, pool),
                }
            )
            recent = self.user_rows(user_id).sort_values("ts_listen", kind="stable").tail(10)
            seconds = (time.perf_counter() - t0) / len(user_ids)
            out.append(Recommendation(user_id, known, self.now, tracks, recent, seconds))
        return out

    def sample_users(self) -> dict[str, int]:
        """A heavy, a median and a light listener (by train plays) among the test's users, for the report."""
        counts = self.history.df["user_id"].value_counts().sort_index()
        if config.TEST_PARQUET.exists():
            test_users = pd.read_parquet(config.TEST_PARQUET, columns=["user_id"])["user_id"].unique()
            counts = counts[counts.index.isin(test_users)] if counts.index.isin(test_users).any() else counts
        out = {}
        for label, q in (("heavy", 0.95), ("median", 0.5), ("light", 0.1)):
            target = counts.quantile(q, interpolation="nearest")
            out[label] = int((counts - target).abs().sort_values(kind="stable").index[0])
        return out


@dataclass
class PoolContext:
    """What every user's pool shares at one moment ``now``: built once, then each user's pool is cheap."""

    now: int
    #: Plays of each track in the last ``RECENT_DAYS`` days, most played first (ties: lower id).
    recent_plays: pd.Series
    #: The ``TRACKS_PER_ARTIST`` most played tracks of every artist (artist_id, media_id).
    best: pd.DataFrame
    #: Co-listening inputs of :func:`features.neighbours.item_neighbours` over the plays before ``now``.
    items: np.ndarray
    ucode: np.ndarray
    acode: np.ndarray
    listened: np.ndarray
    n_users: int

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
    history: pd.DataFrame,
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
        context = pool_context(history, now)
    picked: dict[int, str] = dict.fromkeys(context.popular, "popular lately")
    mine = user_rows[user_rows["ts_listen"].to_numpy() < now]
    if len(mine):
        liked = mine[mine["is_listened"] == 1]["artist_id"].value_counts().sort_index()
        top_artists = liked.sort_values(ascending=False, kind="stable").index[:USER_TOP_ARTISTS].to_numpy()
        near = _near_artists(context, top_artists)
        best = context.best
        for source, artists in (("your artists", top_artists), ("artists like yours", near)):
            for m in best[best["artist_id"].isin(artists)]["media_id"].tolist():
                picked.setdefault(int(m), source)
    ids = np.array(sorted(picked), dtype=np.int64)
    if not include_heard and len(mine):
        ids = ids[~np.isin(ids, mine["media_id"].to_numpy())]
    ids = ids[np.isin(ids, catalogue.index.to_numpy())]
    out = catalogue.loc[ids].copy()
    out["source"] = [picked[int(m)] for m in ids]
    return out


def _near_artists(context: PoolContext, artists: np.ndarray) -> np.ndarray:
    """The ``NEIGHBOURS`` nearest artists of each of ``artists`` by co-listening (features.neighbours)."""
    if len(artists) == 0 or len(context.items) == 0:
        return np.array([], dtype=np.int64)
    from features.neighbours import item_neighbours  # the co-listening similarity of the neighbours group

    items = context.items
    cand = np.searchsorted(items, artists)
    cand = cand[(cand < len(items)) & (items[np.minimum(cand, len(items) - 1)] == artists)]
    nb, _ = item_neighbours(
        context.ucode, context.acode, context.listened, context.n_users, len(items), cand, min_listeners=3,
        user_cap=50,
    )  # fmt: skip
    nb = nb[:, :NEIGHBOURS]
    return np.setdiff1d(items[nb[nb >= 0]], artists)


def similar(media_id: int, *, n: int = 10, history_path: Path | None = None) -> pd.DataFrame:
    """The ``n`` tracks nearest to ``media_id`` in the CF taste space (cosine of snapshot track vectors)."""
    from features.cf import track_vectors

    path = Path(history_path or config.TRAIN_PARQUET)
    if not path.exists():
        raise PipelineError(f"{path} is missing: run `make features` first")
    df = pd.read_parquet(path)
    history = History(df, settings=load(FeatureSettings), store=config.HISTORY_CACHE)
    ids, vectors = track_vectors(history)
    pos = np.searchsorted(ids, media_id)
    if pos >= len(ids) or ids[pos] != media_id:
        known = media_id in set(df["media_id"].unique().tolist())
        why = "it has too few listeners to be placed" if known else "no play of it is in the train history"
        raise PipelineError(f"unknown track: media_id {media_id} has no taste vector ({why})")
    norms = np.linalg.norm(vectors, axis=1)
    cos = vectors @ vectors[pos] / np.maximum(norms * norms[pos], 1e-12)
    cos[pos] = -np.inf
    order = np.lexsort((ids, -cos))[:n]
    cat = _catalogue(df).reindex(ids[order])
    return pd.DataFrame(
        {
            "media_id": ids[order],
            "similarity": cos[order],
            "artist_id": cat["artist_id"].to_numpy(),
            "album_id": cat["album_id"].to_numpy(),
            "genre_id": cat["genre_id"].to_numpy(),
        }
    )


def evaluate(*, users: int = EVAL_USERS, seed: int = 0, models_dir: Path | None = None) -> dict[str, Any]:
    """Hit rate at 10 and NDCG at 10 of the model and of popularity, on the validation round.

    For a seeded sample of round-1 users: the pool as of their round-1 time (plays before
    it only) plus their actual next Flow track, ranked by the winner as fit on the
    training rounds (it never saw round 1) and by plays in the last ``RECENT_DAYS``.
    """
    from pipeline.recommend_eval import run_evaluation

    return run_evaluation(users=users, seed=seed, models_dir=Path(models_dir or config.MODELS_DIR))


# --- CLI ---------------------------------------------------------------------------------


def sample_recommendations(*, n: int = 10) -> dict[str, Any]:
    """The report's recommendations: a heavy, a median and a light listener's recent plays beside their top ``n``."""
    rec = Recommender()
    users = rec.sample_users()
    results = rec.recommend_many(list(users.values()), n=n)
    out: dict[str, Any] = {"now": rec.now, "winner": rec.winner, "users": {}}
    for (label, user_id), r in zip(users.items(), results, strict=True):
        hist = r.history[["ts_listen", "media_id", "artist_id", "genre_id", "listen_type", "is_listened"]]
        out["users"][label] = {
            "user_id": user_id,
            "plays": int(len(rec.user_rows(user_id))),
            "recent": hist.to_dict(orient="records"),
            "top": r.tracks.to_dict(orient="records"),
            "seconds": round(r.seconds, 2),
        }
    return out


def _int(value: str, what: str) -> int:
    try:
        return int(value)
    except ValueError:
        example = "make similar MEDIA=<media_id>" if what == "MEDIA" else "make recommend USER=<user_id>"
        raise PipelineError(f"{what}={value!r} is not an integer id ({example})") from None


def _print_recommendation(rec: Recommendation) -> None:
    if not rec.known_user:
        print(
            f"User {rec.user_id} has no play in the train history: here is the cold-start list "
            "(what a new user of that age and gender would most likely listen to)."
        )
    print(f"Top {len(rec.tracks)} for user {rec.user_id}, as the first track of a new Flow session now:")
    for k, r in enumerate(rec.tracks.itertuples(index=False), 1):
        print(
            f"{k:>3}. track {r.media_id:<10} p={r.p_listen:.3f}  artist {r.artist_id}  album {r.album_id}  "
            f"genre {r.genre_id}  [{r.source}]"
        )
        print(f"      why: {r.why}")
    print(f"({rec.seconds:.1f}s per user to score the pool)")


def main() -> None:
    ap = argparse.ArgumentParser(description="Recommend tracks to a user, or tracks similar to a track.")
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--user", help="user_id to recommend to (comma-separated: several, scored in one pass)")
    mode.add_argument("--similar", help="media_id whose nearest tracks to list")
    mode.add_argument("--evaluate", action="store_true", help="hit rate and NDCG on the validation round")
    mode.add_argument("--samples", action="store_true", help="top 10 of a heavy, a median and a light user (report)")
    ap.add_argument("--n", default="10", help="how many tracks (default 10)")
    ap.add_argument("--include-heard", action="store_true", help="keep tracks the user already heard")
    ap.add_argument("--age", default=None, help="for a new user: age in years (the demographics group uses it)")
    ap.add_argument("--gender", default=None, help="for a new user: 0 or 1")
    ap.add_argument("--out", type=Path, default=None, help="with --evaluate: JSON to write")
    args = ap.parse_args()
    n = _int(args.n, "N")
    if not 1 <= n <= 500:
        raise PipelineError(f"N must be between 1 and 500, got {n}")
    if args.similar is not None:
        table = similar(_int(args.similar, "MEDIA"), n=n)
        print(f"Tracks closest to track {args.similar} in the taste space:")
        print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
        return
    if args.evaluate:
        result = evaluate()
        write_json(result, args.out or config.REPORTS / "recommend_eval.json")
        print(result["summary"])
        return
    if args.samples:
        write_json(sample_recommendations(n=n), args.out or config.REPORTS / "recommendations.json")
        return
    age = _int(args.age, "AGE") if args.age not in (None, "") else None
    gender = _int(args.gender, "GENDER") if args.gender not in (None, "") else None
    if gender is not None and gender not in (0, 1):
        raise PipelineError(f"GENDER must be 0 or 1, got {gender}")
    users = [_int(u.strip(), "USER") for u in str(args.user).split(",") if u.strip()]
    if not users:
        raise PipelineError("USER is empty: make recommend USER=<user_id> (or USER=<id>,<id>,... for several)")
    if len(set(users)) != len(users):
        raise PipelineError(f"USER={args.user!r} names a user twice")
    t0 = time.perf_counter()
    recommender = Recommender()
    loaded = time.perf_counter() - t0
    recs = recommender.recommend_many(users, n=n, include_heard=args.include_heard, age=age, gender=gender)
    for rec in recs:
        _print_recommendation(rec)
    print(f"(model, history and catalogue loaded once in {loaded:.1f}s; several users: USER=<id>,<id>,...)")


if __name__ == "__main__":
    run_cli(main)
