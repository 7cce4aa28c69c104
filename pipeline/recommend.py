"""From "will this user listen?" to "what should Flow play this user next?" (`make recommend`, `make similar`).

The trained winner scores candidate tracks for a user as if each were the first track of
a new Flow session *now* -- the end of the data (the latest train or test timestamp,
plus a session gap) -- with every feature computed past-only, through the same feature
groups and the same winner as a test row.  The top ``N`` come with their predicted
listen probability, artist, album, genre and *why*: the features that pushed the
probability up most for that track (LightGBM's per-row contributions), in words.

The candidate pool, "now" and the example rows come from :mod:`pipeline.pool` (the
:class:`~pipeline.pool.Scene` this module's :class:`Recommender` builds on).  A request
reads the recommender's state at now (:mod:`pipeline.recommend_state`, written by ``make
features``) and the user's own plays, and computes the candidates' features from them
(:mod:`features.now`: the numbers a pass of the groups over the history gives, without the
pass): ~3 s for a user at full size, start-up included.  Without a current state it makes
that pass (about a minute at full size) and says why.

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

:func:`sample_recommendations` (the report's three sample users) reads the features the
feature stage computed for their candidates in the test rows' pass
(``data/processed/features/now/``): no pass over the history of its own.
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
from features import FEATURE_GROUPS
from features.now import now_features
from models.fitting import predict_scores
from pipeline.build_features import compute_group
from pipeline.pool import Scene, candidate_pool, pool_context
from pipeline.recommend_state import NowScene, RecommendState, load_state
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

#: Users whose history is scored in the validation-round evaluation (a seeded sample).
EVAL_USERS = 200


@dataclass(frozen=True)
class Recommendation:
    """The top tracks for one user, best first."""

    user_id: int
    known_user: bool
    now: int
    tracks: pd.DataFrame  # media_id, p_listen, artist_id, album_id, genre_id, source, why
    history: pd.DataFrame = field(repr=False)  # the user's latest plays (for the report)
    seconds: float = 0.0


class Recommender:
    """The winner on top of a :class:`~pipeline.pool.Scene`; ``recommend(user)`` per request.

    The scene is the saved state at now (:class:`pipeline.recommend_state.NowScene`: one
    user's plays read per request, features from :mod:`features.now`) when it is there and
    current, else the full history (a pass of the feature groups per call: about a minute at
    full size).  ``full_pass=True`` asks for the latter (the report's sample users are chosen
    from the full history).
    """

    def __init__(
        self,
        *,
        models_dir: Path | None = None,
        history_path: Path | None = None,
        test_path: Path | None = None,
        state_dir: Path | None = None,
        full_pass: bool = False,
    ) -> None:
        models_dir = Path(models_dir or config.MODELS_DIR)
        winner_path = models_dir / "winner.json"
        if not winner_path.exists():
            raise PipelineError(f"{winner_path} is missing: run `make features train submit` first")
        self.winner = read_json(winner_path)["model"]
        artifact = joblib.load(models_dir / f"{self.winner}.joblib")
        self.model, self.features = artifact["model"], list(artifact["features"])
        self.groups = sorted({g for g in FEATURE_GROUPS if any(f.startswith(f"{g}_") for f in self.features)})
        self.state: RecommendState | None = None
        if not full_pass:
            self.state, why = load_state(state_dir, history_path=history_path, test_path=test_path)
            slow = self.state.features.missing(self.groups) if self.state is not None else []
            if slow:
                self.state, why = None, f"the winner reads {', '.join(slow)}, which have no state at now"
            if self.state is None:
                log.warning("scoring by a pass over the whole history (about a minute at full size): %s", why)
        if self.state is not None:
            state_dir = Path(state_dir or config.RECOMMEND_STATE)
            self.scene: Scene = NowScene(self.state, state_dir / "plays_by_user.parquet")
        else:
            self.scene = Scene(history_path=history_path, test_path=test_path)
        self.now = self.scene.now

    # --- scoring ----------------------------------------------------------------------------

    def matrix(self, targets: pd.DataFrame) -> pd.DataFrame:
        """The winner's features for ``targets``, computed past-only by the same groups as a test row.

        From the state at now, one user at a time (:func:`features.now.now_features`: the same
        numbers); else by a pass of each group over the history.
        """
        if self.state is None:
            frames = [compute_group(g, self.scene.history, targets) for g in self.groups]
            return self._winner_columns(frames, targets.index)
        parts = []
        for user_id, rows in targets.groupby("user_id", sort=False):
            frames = now_features(self.state.features, self.scene.user_rows(int(user_id)), rows, self.groups)
            parts.append(self._winner_columns(frames, rows.index).set_axis(rows.index))
        return pd.concat(parts).loc[targets.index] if parts else self._winner_columns([], targets.index)

    def _winner_columns(self, frames: list[pd.DataFrame], index: pd.Index) -> pd.DataFrame:
        """The winner's features, in its order, from its groups' outputs (``example_id`` dropped)."""
        X = pd.concat([f.drop(columns="example_id") for f in frames], axis=1) if frames else pd.DataFrame(index=index)
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
        scene = self.scene
        new_user = scene.new_user
        scene.warm_pools([u for u in user_ids if len(scene.user_rows(u))])
        plans = []
        for user_id in user_ids:
            known = len(scene.user_rows(user_id)) > 0
            scored_as = user_id if known else new_user
            pool = scene.pool(scored_as, include_heard=include_heard)
            if pool.empty:
                raise PipelineError("the candidate pool is empty: the history has no recent plays")
            plans.append((user_id, known, pool, scene.targets(scored_as, pool, age=age, gender=gender)))
        targets = pd.concat([t for *_, t in plans], ignore_index=True)
        targets["example_id"] = np.arange(len(targets), dtype=np.int64)
        return self.rank([(u, k, pool) for u, k, pool, _ in plans], self.matrix(targets), n=n, t0=t0)

    def rank(
        self, plans: list[tuple[int, bool, pd.DataFrame]], X_all: pd.DataFrame, *, n: int, t0: float
    ) -> list[Recommendation]:
        """Score the stacked pools of ``plans`` (user, known, pool) whose features are ``X_all``; top ``n`` each."""
        p_all = predict_scores(self.model, X_all)
        out, start = [], 0
        for user_id, known, pool in plans:
            X, p = X_all.iloc[start : start + len(pool)].reset_index(drop=True), p_all[start : start + len(pool)]
            start += len(pool)
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
            recent = self.scene.user_rows(user_id).sort_values("ts_listen", kind="stable").tail(10)
            seconds = (time.perf_counter() - t0) / len(plans)
            out.append(Recommendation(user_id, known, self.now, tracks, recent, seconds))
        return out

    def precomputed(self, examples_path: Path, features_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame] | None:
        """The sample candidates and their features from the feature stage, or None if absent or not of this now."""
        paths = [features_dir / f"{g}.parquet" for g in self.groups]
        if not examples_path.exists() or not all(p.exists() for p in paths):
            return None
        rows = pd.read_parquet(examples_path)
        if len(rows) and int(rows["ts_listen"].iloc[0]) != self.now:
            return None
        frames = [pd.read_parquet(p) for p in paths]
        if any(not np.array_equal(f["example_id"].to_numpy(), rows["example_id"].to_numpy()) for f in frames):
            return None  # written for other candidates: recompute
        return rows, self._winner_columns(frames, rows.index)


def similar(
    media_id: int,
    *,
    n: int = 10,
    history_path: Path | None = None,
    test_path: Path | None = None,
    state_dir: Path | None = None,
) -> pd.DataFrame:
    """The ``n`` tracks nearest to ``media_id`` in the CF taste space (cosine of snapshot track vectors).

    The space the recommender scores in: the cf group's snapshot in force at now, read from the
    recommender's state when it is current, else fit (or read from the memo) on the history.
    """
    from features.cf import taste_space

    state, _ = load_state(state_dir, history_path=history_path, test_path=test_path)
    if state is not None:
        space, cat_all = state.features.space, state.catalogue
    else:
        scene = Scene(history_path=history_path, test_path=test_path)
        space, cat_all = taste_space(scene.history, scene.now), scene.catalogue
    ids, vectors = space.track_vectors()
    pos = np.searchsorted(ids, media_id)
    if pos >= len(ids) or ids[pos] != media_id:
        known = media_id in cat_all.index
        why = "it has too few listeners to be placed" if known else "no play of it is in the train history"
        raise PipelineError(f"unknown track: media_id {media_id} has no taste vector ({why})")
    norms = np.linalg.norm(vectors, axis=1)
    cos = vectors @ vectors[pos] / np.maximum(norms * norms[pos], 1e-12)
    cos[pos] = -np.inf
    order = np.lexsort((ids, -cos))[:n]
    cat = cat_all.reindex(ids[order])
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


def sample_recommendations(
    *, n: int = 10, examples_path: Path | None = None, features_dir: Path | None = None
) -> dict[str, Any]:
    """The report's recommendations: a heavy, a median and a light listener's recent plays beside their top ``n``.

    Their candidates' features come from the feature stage (``make features`` computes them in
    the test rows' pass); without those files they are computed here, the same way.
    """
    t0 = time.perf_counter()
    rec = Recommender(full_pass=True)
    found = rec.precomputed(
        Path(examples_path or config.EXAMPLES_NOW), Path(features_dir or config.FEATURES_DIR / "now")
    )  # fmt: skip
    if found is None:
        users = rec.scene.sample_users()
        results = rec.recommend_many(list(users.values()), n=n)
    else:
        rows, X = found
        users, plans = {}, []
        for label, part in rows.groupby("sample", sort=False):
            user_id = int(part["user_id"].iloc[0])
            pool = part.set_index("media_id")[["album_id", "artist_id", "genre_id", "source"]]
            users[str(label)] = user_id
            plans.append((user_id, True, pool))
        results = rec.rank(plans, X.reset_index(drop=True), n=n, t0=t0)
    out: dict[str, Any] = {"now": rec.now, "winner": rec.winner, "users": {}}
    for (label, user_id), r in zip(users.items(), results, strict=True):
        hist = r.history[["ts_listen", "media_id", "artist_id", "genre_id", "listen_type", "is_listened"]]
        out["users"][label] = {
            "user_id": user_id,
            "plays": int(len(rec.scene.user_rows(user_id))),
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
    what = "model and state at now" if recommender.state is not None else "model, history and catalogue"
    print(f"({what} loaded once in {loaded:.1f}s; several users: USER=<id>,<id>,...)")


if __name__ == "__main__":
    run_cli(main)
