"""Recommendations: three sample users' recent plays beside their top 10, and how the recommender scores."""

from __future__ import annotations

import pandas as pd

from pipeline.report.artifacts import Artifacts
from pipeline.report.html import esc, fmt, not_available, table

__all__ = ["recommendations_section"]

_LABELS = {"heavy": "a heavy listener", "median": "a median listener", "light": "a light listener"}


def _evaluation(ev: dict | None) -> str:
    if not ev:
        return not_available("The hit rate on the validation round (reports/recommend_eval.json)", "recommend-eval")
    m, q = ev.get("model") or {}, ev.get("popularity") or {}
    lm, lq = (ev.get("listened_only") or {}).get("model") or {}, (ev.get("listened_only") or {}).get("popularity") or {}
    shown = pd.DataFrame(
        {
            "ranking": ["the winner", "popularity (plays in the last 14 days)"],
            "hit rate @10": [fmt(m.get("hit_at_10"), ".3f"), fmt(q.get("hit_at_10"), ".3f")],
            "NDCG @10": [fmt(m.get("ndcg_at_10"), ".3f"), fmt(q.get("ndcg_at_10"), ".3f")],
            "hit rate @10, listened only": [fmt(lm.get("hit_at_10"), ".3f"), fmt(lq.get("hit_at_10"), ".3f")],
        }
    )
    return (
        f"<p><b>Measured on the validation round</b> ({esc(ev.get('users'))} users, pools of "
        f"{fmt(ev.get('pool_size_mean'), '.0f')} tracks): each user's actual next Flow track among the pool as of "
        "that moment, ranked by the winner refit without round 1, and by popularity.</p>" + table(shown, "reco-eval")
    )


def recommendations_section(art: Artifacts) -> str:
    """Recent history beside the top 10 of a heavy, a median and a light listener (reports/recommendations.json)."""
    rec = art.recommendations
    parts = [
        "<p>The winner turned into a recommender (<code>make recommend USER=&lt;id&gt;</code>): candidate tracks "
        "scored as the first track of a new Flow session now, every feature past-only. Does the list make "
        "sense next to what the user played?</p>"
    ]
    if not rec or not rec.get("users"):
        parts.append(not_available("The sample recommendations (reports/recommendations.json)", "train"))
    else:
        for label, u in rec["users"].items():
            recent = pd.DataFrame(u.get("recent") or [])
            top = pd.DataFrame(u.get("top") or [])
            parts.append(
                f"<h3>User {esc(u.get('user_id'))}: {esc(_LABELS.get(label, label))} "
                f"({esc(u.get('plays'))} plays in train)</h3>"
            )
            if not recent.empty:
                recent = recent.assign(
                    listened=recent["is_listened"].map({1: "listened", 0: "skipped"}),
                    flow=recent["listen_type"].map({1: "Flow", 0: ""}),
                )[["media_id", "artist_id", "genre_id", "flow", "listened"]]
                parts.append("<p>Latest plays (oldest first):</p>" + table(recent, f"recent-{label}"))
            if not top.empty:
                top = top.assign(p_listen=[fmt(v, ".3f") for v in top["p_listen"]])[
                    ["media_id", "p_listen", "artist_id", "genre_id", "source", "why"]
                ]
                parts.append("<p>Top 10 now:</p>" + table(top, f"top-{label}"))
    parts.append(_evaluation(art.recommend_eval))
    return "\n".join(parts)
