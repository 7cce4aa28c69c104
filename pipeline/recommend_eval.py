"""How good are the recommendations? Hit rate and NDCG at 10 on the validation round, against popularity.

For a seeded sample of users with a round-1 example (their last Flow session start in
train), the candidate pool is built as of that moment (plays before the user's day
only, :func:`pipeline.recommend.candidate_pool`), their actual next Flow track is added
if the pool missed it, and every candidate is scored as that Flow session's first track:
features past-only, in the session's real context, by the winner refit on the training
rounds -- a model that never saw round 1.  The same candidates ranked by plays in the
last ``RECENT_DAYS`` are the popularity baseline.  Two readings: every user, and the
users who then listened to that track (the track Flow proposed was not always a good one).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core import config
from core.errors import PipelineError
from core.settings import FeatureSettings, ModelSettings, load
from features.history import History
from models.fitting import fit_model, one_blas_thread, predict_scores
from models.registry import MODELS
from pipeline.build_features import compute_group
from pipeline.data.dataset import Split, load_matrix, load_selection
from pipeline.pool import candidate_pool, catalogue, pool_context
from pipeline.runstore import RunStore

log = logging.getLogger("recommend")

__all__ = ["run_evaluation", "rank_metrics"]

_DAY = 86_400
K = 10


def rank_metrics(ranks: np.ndarray, k: int = K) -> dict[str, float]:
    """Hit rate at ``k`` and NDCG at ``k`` of 1-based ranks of the one relevant item per user."""
    ranks = np.asarray(ranks, dtype=np.float64)
    if len(ranks) == 0:
        return {"hit_at_10": float("nan"), "ndcg_at_10": float("nan"), "users": 0}
    hit = ranks <= k
    return {
        "hit_at_10": float(hit.mean()),
        "ndcg_at_10": float(np.where(hit, 1.0 / np.log2(ranks + 1.0), 0.0).mean()),
        "users": int(len(ranks)),
    }


def _rank_of_truth(scores: np.ndarray, is_truth: np.ndarray, ids: np.ndarray) -> int:
    """1-based rank of the true item when candidates are sorted by score (ties: the lower id first)."""
    order = np.lexsort((ids, -scores))
    return int(np.flatnonzero(is_truth[order])[0]) + 1


@one_blas_thread()
def _winner_without_round1(models_dir: Path) -> tuple[Any, list[str]]:
    """The winner refit on the training rounds only (round 1 held out), with its selected features."""
    winner = json.loads((models_dir / "winner.json").read_text())
    name = winner["model"]
    matrix = load_matrix("train")
    selection = load_selection(models_dir / "selection.json", matrix)
    split = Split.of(matrix, list(selection["selected"]))
    # The parameters the winner's run used (none when it had no Optuna study on these features).
    tuned = RunStore(config.RUNS).tuned_params(winner.get("run_id"))
    model = fit_model(MODELS[name].build(load(ModelSettings), tuned=tuned), split.X_train, split.y_train,
                      rounds=split.r_train)  # fmt: skip
    return model, split.features


def run_evaluation(*, users: int, seed: int, models_dir: Path) -> dict[str, Any]:
    t0 = time.perf_counter()
    if not (models_dir / "winner.json").exists():
        raise PipelineError("no trained model: run `make features train submit` first")
    examples = pd.read_parquet(config.EXAMPLES_TRAIN)
    val = examples[examples["round"] == 1]
    if val.empty:
        raise PipelineError("the examples have no validation round (round 1)")
    rng = np.random.default_rng(seed)
    val = val.iloc[np.sort(rng.choice(len(val), size=min(users, len(val)), replace=False))]
    df = pd.read_parquet(config.TRAIN_PARQUET)
    history = History(df, settings=load(FeatureSettings), store=config.HISTORY_CACHE)
    cat = catalogue(df)
    model, features = _winner_without_round1(models_dir)
    by_user = df.groupby("user_id", sort=False)

    targets, meta, contexts = [], [], {}
    # In time order, so the users of one day come together and share its pool context.
    for row in val.sort_values("ts_listen", kind="stable").itertuples(index=False):
        day_start = int(row.ts_listen) // _DAY * _DAY  # the pool as of the user's day: plays before it only
        mine = by_user.get_group(row.user_id) if row.user_id in by_user.groups else df.iloc[:0]
        if day_start not in contexts:  # users of one day share the pool's common part; keep one day only
            contexts = {day_start: pool_context(df, day_start)}
        pool = candidate_pool(df, cat, mine, now=day_start, context=contexts[day_start])
        pop = contexts[day_start].recent_plays  # the popularity ranking: plays in the last RECENT_DAYS
        truth = int(row.media_id)
        ids = pool.index.to_numpy()
        if truth not in set(ids.tolist()):
            ids = np.append(ids, truth)
        base = {c: getattr(row, c) for c in examples.columns if c not in ("example_id", "is_listened")}
        cand = cat.reindex(ids)
        frame = pd.DataFrame({**base, "media_id": ids}, index=range(len(ids)))
        for c in ("album_id", "artist_id", "genre_id", "release_date", "media_duration"):
            known = cand[c].notna().to_numpy()
            # The true track may be new to the catalogue: its own row's metadata then.
            frame[c] = np.where(known, cand[c].fillna(0).to_numpy(), getattr(row, c)).astype(np.int64)
        targets.append(frame)
        meta.append((ids, ids == truth, pop.reindex(ids).fillna(0).to_numpy(), int(row.is_listened)))
    all_targets = pd.concat(targets, ignore_index=True)
    all_targets.insert(0, "example_id", np.arange(len(all_targets), dtype=np.int64))
    all_targets = all_targets.astype({c: examples[c].dtype for c in examples.columns if c in all_targets.columns})
    groups = sorted(_groups_of(features))
    frames = [compute_group(g, history, all_targets).drop(columns="example_id") for g in groups]
    X = pd.concat(frames, axis=1)[features]
    p = predict_scores(model, X)

    ranks_model, ranks_pop, listened, sizes = [], [], [], []
    start = 0
    for ids, is_truth, pop, y in meta:
        s = p[start : start + len(ids)]
        start += len(ids)
        ranks_model.append(_rank_of_truth(s, is_truth, ids))
        ranks_pop.append(_rank_of_truth(pop, is_truth, ids))
        listened.append(y == 1)
        sizes.append(len(ids))
    ranks_model, ranks_pop, listened = np.array(ranks_model), np.array(ranks_pop), np.array(listened)
    result = {
        "users": int(len(meta)),
        "pool_size_mean": float(np.mean(sizes)),
        "model": rank_metrics(ranks_model),
        "popularity": rank_metrics(ranks_pop),
        "listened_only": {
            "model": rank_metrics(ranks_model[listened]),
            "popularity": rank_metrics(ranks_pop[listened]),
        },
        "seconds": round(time.perf_counter() - t0, 1),
        "seconds_per_user": round((time.perf_counter() - t0) / max(len(meta), 1), 3),
    }
    m, q = result["model"], result["popularity"]
    result["summary"] = (
        f"validation round, {result['users']} users, pools of {result['pool_size_mean']:.0f} tracks: "
        f"hit rate@10 {m['hit_at_10']:.3f} (popularity {q['hit_at_10']:.3f}), "
        f"NDCG@10 {m['ndcg_at_10']:.3f} (popularity {q['ndcg_at_10']:.3f})"
    )
    log.info(result["summary"])
    return result


def _groups_of(features: list[str]) -> set[str]:
    from features import FEATURE_GROUPS

    return {g for g in FEATURE_GROUPS if any(f.startswith(f"{g}_") for f in features)}
