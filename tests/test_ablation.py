"""The drop-one-group ablation and the selection effect it reports (``make ablation``)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from core import config
from core.settings import AblationSettings
from pipeline import ablation
from pipeline.data.dataset import Matrix


def _matrix(n_users: int = 300) -> Matrix:
    """Rounds 1..3 per user; group "a" carries the signal, "b" is noise, "c" a weaker signal."""
    rng = np.random.default_rng(0)
    rnd = np.repeat([1, 2, 3], n_users).astype(np.int16)
    n = len(rnd)
    a, b, c = rng.normal(size=n), rng.normal(size=n), rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(2.0 * a + 0.7 * c)))).astype(np.int8)
    examples = pd.DataFrame(
        {
            "example_id": np.arange(n, dtype=np.int64),
            "round": rnd,
            "user_id": np.tile(np.arange(n_users, dtype=np.int32), 3),
            "ts_listen": (1_480_000_000 - 86_400 * rnd.astype(np.int64)).astype(np.int32),
            "is_listened": y,
        }
    )
    X = pd.DataFrame({"a_x": a, "b_x": b, "b_y": rng.normal(size=n), "c_x": c}).astype(np.float32)
    return Matrix(examples=examples, X=X, groups={"a_x": "a", "b_x": "b", "b_y": "b", "c_x": "c"})


def test_ablation_ranks_the_signal_group_first_and_reports_the_selection_effect(tmp_path, monkeypatch):
    m = _matrix()
    monkeypatch.setattr(ablation, "load_matrix", lambda split: m)
    monkeypatch.setattr(ablation, "data_fingerprint", lambda matrix: "fp")
    (tmp_path / "selection.json").write_text(json.dumps({"selected": ["a_x", "c_x"], "dropped": ["b_x", "b_y"]}))
    out = ablation.run(
        settings=AblationSettings(seed=0, ablation_rows=None, ablation_trees=40),
        out=tmp_path / "ablation.json",
        selection=tmp_path / "selection.json",
    )
    assert json.loads((tmp_path / "ablation.json").read_text()) == json.loads(json.dumps(out))
    groups = [r["group"] for r in out["rows"]]
    assert groups[0] == "a" and set(groups) == {"a", "b", "c"}
    delta = {r["group"]: r["delta"] for r in out["rows"]}
    assert delta["a"] > 0.1 > abs(delta["b"])  # the signal matters, the noise does not
    se = out["selection_effect"]
    assert se["n_selected"] == 2 and se["n_all"] == 4 and se["auc_all_features"] == out["full_auc"]
    assert abs(se["auc_selected"] - se["auc_all_features"]) < 0.03  # dropping noise costs next to nothing
    assert out["model"].endswith("40 trees") and out["data_fingerprint"] == "fp"


def test_no_selection_yet_means_no_selection_effect(tmp_path, monkeypatch):
    m = _matrix(100)
    monkeypatch.setattr(ablation, "load_matrix", lambda split: m)
    monkeypatch.setattr(config, "REPORTS", tmp_path)
    out = ablation.run(settings=AblationSettings(seed=0, ablation_trees=20), selection=tmp_path / "none.json")
    assert out["selection_effect"] == {} and (tmp_path / "ablation.json").exists()
