"""Where the winner is right and wrong: validation AUC by segment, and every model against the winner.

* **Segments** of the validation round (round 1), read from the rows' own past-only
  features: the user's history length (plays before the row, in bands), whether this
  user heard the candidate track and its artist before, and whether it is a new release.
  Taste features should help most where the user never met the track or the artist.
* **Paired differences**: each model's AUC minus the winner's on the same rows, with a
  95% interval from the SAME bootstrap resamples for both (:func:`pipeline.scoring.paired_auc_delta`):
  a difference whose interval holds 0 is noise.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from pipeline.scoring import paired_auc_delta

__all__ = ["HISTORY_BANDS", "segments_of", "segment_table", "paired_deltas"]

#: Plays before the row: (label, lower bound inclusive); the last band is open.
HISTORY_BANDS = (("no history", 0), ("1-49 plays", 1), ("50-199", 50), ("200-999", 200), ("1,000+", 1000))
#: (feature column, segment): the row is in "yes" where the column is positive.
_YES_NO = (
    ("user_item_media_played", "track heard before"),
    ("user_item_artist_log_plays", "artist heard before"),
    ("media_new_release", "new release"),
)


def segments_of(X: pd.DataFrame) -> dict[str, np.ndarray]:
    """Segment labels of each row, from the feature columns present (a missing column: no such segment)."""
    out: dict[str, np.ndarray] = {}
    if "user_log_plays" in X.columns:
        plays = np.expm1(np.nan_to_num(X["user_log_plays"].to_numpy(dtype=np.float64), nan=0.0)).round()
        bounds = np.array([b for _, b in HISTORY_BANDS], dtype=np.float64)
        band = np.searchsorted(bounds, plays, side="right") - 1
        out["user history"] = np.array([HISTORY_BANDS[i][0] for i in band], dtype=object)
    for column, kind in _YES_NO:
        if column in X.columns:
            yes = np.nan_to_num(X[column].to_numpy(dtype=np.float64), nan=0.0) > 0
            out[kind] = np.where(yes, "yes", "no").astype(object)
    return out


def segment_table(y: np.ndarray, p: np.ndarray, segments: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """Rows, listen rate and AUC of ``p`` in each segment (AUC is None where one class is missing)."""
    y, p = np.asarray(y), np.asarray(p, dtype=np.float64)
    rows = []
    for kind, labels in segments.items():
        order = [lab for lab, _ in HISTORY_BANDS] if kind == "user history" else ["no", "yes"]
        for level in [lv for lv in order if lv in set(labels.tolist())]:
            m = labels == level
            auc = float(roc_auc_score(y[m], p[m])) if len(np.unique(y[m])) == 2 else None
            rows.append(
                {"segment": kind, "level": level, "rows": int(m.sum()), "listen_rate": float(y[m].mean()), "auc": auc}
            )
    return rows


def paired_deltas(
    y: np.ndarray, preds: dict[str, np.ndarray], winner: str, *, n_boot: int, seed: int
) -> list[dict[str, Any]]:
    """Each model's AUC minus the winner's, with the 95% interval of the difference (same resamples)."""
    out = []
    for name, p in preds.items():
        if name == winner:
            continue
        delta, lo, hi = paired_auc_delta(y, p, preds[winner], n_boot=n_boot, seed=seed)
        out.append({"model": name, "delta_auc": delta, "lo": lo, "hi": hi})
    return sorted(out, key=lambda r: (-r["delta_auc"], r["model"]))
