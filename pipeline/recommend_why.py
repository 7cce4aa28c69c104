"""Why a track is recommended: the features that raised its predicted listen probability most, in words.

The contributions are LightGBM's own per-row decomposition of the log-odds
(``pred_contrib``, exact TreeSHAP values): of the winner when it is a LightGBM, else of
the LightGBM member of a stacked winner.  What sets a track apart is its contribution
*minus the pool's average* for the same feature: a feature of the user alone (how much
they skip lately) moves every candidate alike and explains none of them.  A model
without trees (e.g. a logistic regression winner) gets the same sentences for the
features furthest above the pool's median instead.  Each feature family has a sentence
template; the two strongest reasons are given.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["explain", "contributions", "REASONS"]


def _plays(v: float) -> str:
    return f"{np.expm1(v):.0f}"


#: Feature name (exact, or a prefix ending in "*") -> sentence for its value.
REASONS: dict[str, Callable[[float], str]] = {
    "user_item_artist_log_plays": lambda v: f"you played this artist {_plays(v)} times",
    "user_item_artist_rate": lambda v: f"you keep {v:.0%} of this artist's tracks",
    "user_item_album_rate": lambda v: f"you keep {v:.0%} of this album's tracks",
    "user_item_genre_rate": lambda v: f"you keep {v:.0%} of this genre",
    "user_item_genre_share": lambda v: f"{v:.0%} of your plays are in this genre",
    "user_item_artist_share": lambda v: f"{v:.0%} of your plays are this artist",
    "genre_user_rate": lambda v: f"you keep {v:.0%} of this artist's genre",
    "genre_user_share": lambda v: f"{v:.0%} of your plays are in this artist's genre",
    "user_item_media_rate": lambda v: f"you kept it {v:.0%} of the times you heard it",
    "item_media_rate": lambda v: f"listeners keep it {v:.0%} of the time",
    "item_media_flow_rate": lambda v: f"in Flow, listeners keep it {v:.0%} of the time",
    "item_artist_rate": lambda v: f"listeners keep this artist {v:.0%} of the time",
    "item_album_rate": lambda v: f"listeners keep this album {v:.0%} of the time",
    "item_media_pop": lambda v: "it is popular right now",
    "item_media_log_plays": lambda v: f"played {_plays(v)} times by everyone",
    "quality_*": lambda v: "listeners keep it more than their own habits predict",
    "neighbours_*": lambda v: "it sits among artists you keep listening to",
    "cf_*": lambda v: "users like you keep it",
    "fm_*": lambda v: "it matches the taste learned from your listens and skips",
    "rbm_*": lambda v: "listeners with your artists also listen to this one",
    "content_*": lambda v: "it is close to your usual genres and artists",
    "demographics_*": lambda v: "listeners of your age and gender keep this genre",
    "media_new_release": lambda v: "a new release",
    "media_days_since_release": lambda v: "recently released",
    "user_*": lambda v: "you listen to most of what Flow plays you",
    "sequence_*": lambda v: "you have been listening more than skipping lately",
    "time_*": lambda v: "you listen a lot at this time of day",
}


def _sentence(feature: str, value: float) -> str | None:
    fn = REASONS.get(feature)
    if fn is None:
        fn = next((f for k, f in REASONS.items() if k.endswith("*") and feature.startswith(k[:-1])), None)
    if fn is None or value is None or not np.isfinite(value):
        return None
    return fn(float(value))


#: Candidates whose contributions stand for the pool's average in :func:`explain` (TreeSHAP on
#: every candidate of a full-size pool took ~0.8 s, most of a request's scoring).
MEAN_ROWS = 100


def _booster(model: Any) -> Any | None:
    """The LightGBM booster to decompose: the model's own, or the first LightGBM member of a stack."""
    last = model[-1] if hasattr(model, "steps") else model
    if hasattr(last, "booster_"):
        return last.booster_
    for est in getattr(last, "estimators_", []) or []:
        inner = est[-1] if hasattr(est, "steps") else est
        if hasattr(inner, "booster_"):
            return inner.booster_
    return None


def contributions(model: Any, X: pd.DataFrame) -> pd.DataFrame | None:
    """Per-row log-odds contribution of each feature (TreeSHAP), or None for a model without trees."""
    booster = _booster(model)
    if booster is None:
        return None
    names = booster.feature_name()
    if list(names) != list(X.columns):
        X = X.reindex(columns=names)
    raw = booster.predict(X.to_numpy(dtype=np.float64), pred_contrib=True)
    return pd.DataFrame(np.asarray(raw)[:, :-1], columns=names, index=X.index)


def explain(model: Any, X: pd.DataFrame, top: np.ndarray, pool: pd.DataFrame, *, k: int = 2) -> list[str]:
    """One short sentence for each row ``top`` of the pool ``X``: its ``k`` strongest reasons.

    A reason is a feature whose contribution for the track is above its average over the pool
    (``MEAN_ROWS`` candidates spread evenly over it stand for the pool).
    """
    X = X.reset_index(drop=True)
    spread = np.unique(np.linspace(0, len(X) - 1, min(MEAN_ROWS, len(X))).round().astype(np.int64))
    rows = np.union1d(spread, np.asarray(top, dtype=np.int64))
    contrib = contributions(model, X.iloc[rows])
    if contrib is None:
        contrib = ((X - X.median()) / X.std().replace(0, 1.0)).fillna(0.0)
    # Relative to the pool: what makes this track stand out among the user's candidates.
    relative = contrib - contrib.loc[spread].mean()
    out = []
    for i in top:
        row = relative.loc[i].sort_values(ascending=False, kind="stable")
        reasons: list[str] = []
        for feature, c in row.items():
            if c <= 0 or len(reasons) >= k:
                break
            s = _sentence(str(feature), X.iloc[i][feature])
            if s and s not in reasons:
                reasons.append(s)
        if not reasons:
            reasons.append(str(pool.iloc[i]["source"]))
        out.append("; ".join(reasons))
    return out
