"""Segments of the validation round and paired differences from the winner, checked by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.diagnostics import paired_deltas, segment_table, segments_of


def test_segments_are_read_from_the_rows_own_features() -> None:
    X = pd.DataFrame(
        {
            "user_log_plays": np.log1p([0, 3, 60, 250, 5000, np.nan]),
            "user_item_media_played": [0, 1, 0, np.nan, 1, 0],
            "user_item_artist_log_plays": [0, np.log1p(2), 0, 0, np.log1p(9), 0],
            "media_new_release": [1, 0, 0, 0, 0, 1],
        }
    )
    seg = segments_of(X)
    assert seg["user history"].tolist() == ["no history", "1-49 plays", "50-199", "200-999", "1,000+", "no history"]
    assert seg["track heard before"].tolist() == ["no", "yes", "no", "no", "yes", "no"]
    assert seg["artist heard before"].tolist() == ["no", "yes", "no", "no", "yes", "no"]
    assert seg["new release"].tolist() == ["yes", "no", "no", "no", "no", "yes"]
    assert segments_of(pd.DataFrame({"other": [1.0]})) == {}


def test_segment_table_counts_rates_and_aucs() -> None:
    y = np.array([0, 1, 0, 1, 1, 0])
    p = np.array([0.2, 0.9, 0.6, 0.4, 0.8, 0.1])
    seg = {"track heard before": np.array(["no", "no", "no", "no", "yes", "yes"], dtype=object)}
    rows = segment_table(y, p, seg)
    assert [(r["level"], r["rows"]) for r in rows] == [("no", 4), ("yes", 2)]
    # "no": positives .9 .4, negatives .2 .6 -> pairs won: (.9>.2) (.9>.6) (.4>.2) = 3 of 4
    assert rows[0]["auc"] == pytest.approx(0.75) and rows[0]["listen_rate"] == 0.5
    assert rows[1]["auc"] == 1.0
    one_class = segment_table(y[:1], p[:1], {"new release": np.array(["yes"], dtype=object)})
    assert one_class == [{"segment": "new release", "level": "yes", "rows": 1, "listen_rate": 0.0, "auc": None}]


def test_paired_deltas_leave_out_the_winner_and_sort_best_first() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    good = y + rng.normal(0, 0.8, 400)
    preds = {"winner": good, "copy": good.copy(), "noise": rng.random(400)}
    rows = paired_deltas(y, preds, "winner", n_boot=100, seed=0)
    assert [r["model"] for r in rows] == ["copy", "noise"]
    assert rows[0] == {"model": "copy", "delta_auc": 0.0, "lo": 0.0, "hi": 0.0}
    assert rows[1]["hi"] < 0 < rows[0]["hi"] + 1e-12  # noise is worse beyond its interval
