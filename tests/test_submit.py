"""The submission writer's checks and files, and `make submit` on a tiny trained set."""

from __future__ import annotations

from datetime import UTC, datetime

import joblib
import numpy as np
import pandas as pd
import pytest

from core.errors import PipelineError
from core.settings import ModelSettings, SelectSettings
from pipeline import select, submit, train
from pipeline.data.dataset import Matrix

NOW = datetime(2017, 5, 1, 12, 0, 0, tzinfo=UTC)
IDS = np.array([3, 1, 2])


def _preds(ids, probs) -> pd.DataFrame:
    return pd.DataFrame({"sample_id": ids, "is_listened": probs})


@pytest.mark.parametrize(
    ("ids", "probs", "match"),
    [
        ([3, 1], [0.1, 0.2], "wrong count: 2 predictions for 3 test rows"),
        ([3, 1, 2, 4], [0.1, 0.2, 0.3, 0.4], "wrong count"),
        ([3, 1, 2], [0.1, np.nan, 0.3], "1 prediction\\(s\\) are NaN \\(first sample_id: 1\\)"),
        ([3, 1, 2], [0.1, 1.5, 0.3], "outside \\[0, 1\\]"),
        ([3, 1, 2], [-0.1, 0.5, 0.3], "outside \\[0, 1\\]"),
        ([1, 3, 2], [0.1, 0.2, 0.3], "wrong order: row 0 holds sample_id 1 where the test file has 3"),
        ([3, 3, 2], [0.1, 0.2, 0.3], "duplicated sample_id"),
        ([3, 1, 7], [0.1, 0.2, 0.3], "1 test sample_id\\(s\\) have no prediction \\(first: 2\\)"),
    ],
)
def test_writer_refuses_a_bad_submission(tmp_path, ids, probs, match) -> None:
    with pytest.raises(submit.SubmissionError, match=match):
        submit.write_submission(IDS, _preds(ids, probs), out_dir=tmp_path, model="m", now=NOW)
    assert not list(tmp_path.iterdir())  # nothing written, not even latest.csv


def test_writer_refuses_wrong_columns(tmp_path) -> None:
    frame = pd.DataFrame({"id": IDS, "p": [0.1, 0.2, 0.3]})
    with pytest.raises(submit.SubmissionError, match="columns must be sample_id,is_listened"):
        submit.write_submission(IDS, frame, out_dir=tmp_path, model="m", now=NOW)


def test_writer_writes_exactly_header_and_rows_and_never_overwrites(tmp_path) -> None:
    path = submit.write_submission(IDS, _preds(IDS, [0.1, 0.25, 1.0]), out_dir=tmp_path, model="lightgbm", now=NOW)
    assert path.name == "submission_lightgbm_20170501T120000Z.csv"
    expected = "sample_id,is_listened\n3,0.100000\n1,0.250000\n2,1.000000\n"
    assert path.read_text() == expected
    assert (tmp_path / "latest.csv").read_bytes() == path.read_bytes()
    # Same second again: a new name, the first file untouched, latest.csv follows the newest.
    second = submit.write_submission(IDS, _preds(IDS, [0.0, 0.5, 0.5]), out_dir=tmp_path, model="lightgbm", now=NOW)
    assert second.name == "submission_lightgbm_20170501T120000Z-2.csv"
    assert path.read_text() == expected
    assert (tmp_path / "latest.csv").read_text() == "sample_id,is_listened\n3,0.000000\n1,0.500000\n2,0.500000\n"


def test_unknown_model_lists_the_valid_names(tmp_path) -> None:
    with pytest.raises(
        PipelineError, match="unknown model 'nope'; valid names: logistic_regression, spline_logistic_regression, knn"
    ):
        submit.resolve_model("nope", tmp_path)
    with pytest.raises(PipelineError, match="run `make train` first"):
        submit.resolve_model(None, tmp_path)


def _tiny(seed: int = 0, users: int = 80, rounds: int = 4) -> tuple[Matrix, Matrix]:
    rng = np.random.default_rng(seed)
    n = users * rounds
    ex = pd.DataFrame(
        {
            "example_id": np.arange(n, dtype=np.int64),
            "round": np.repeat(np.arange(1, rounds + 1, dtype=np.int16), users),
            "user_id": np.tile(np.arange(users, dtype=np.int32), rounds),
            # round k is k days before the end of the history
            "ts_listen": (1_480_000_000 - 86_400 * np.repeat(np.arange(1, rounds + 1), users)).astype(np.int32),
            "sample_id": np.int32(-1),
        }
    )
    X = pd.DataFrame(rng.normal(size=(n, 4)).astype(np.float32), columns=["u_a", "u_b", "t_c", "t_d"])
    ex["is_listened"] = (X["u_a"].to_numpy() + rng.normal(0, 1, n) > 0).astype(np.int8)
    groups = {"u_a": "user", "u_b": "user", "t_c": "time", "t_d": "time"}
    test_ex = pd.DataFrame(
        {
            "example_id": np.arange(users, dtype=np.int64),
            "round": np.int16(0),
            "user_id": np.arange(users, dtype=np.int32),
            "sample_id": rng.permutation(users).astype(np.int32),
        }
    )
    test_X = pd.DataFrame(rng.normal(size=(users, 4)).astype(np.float32), columns=X.columns)
    return Matrix(ex, X, groups), Matrix(test_ex, test_X, groups)


def test_submit_uses_the_winner_and_refits_and_caches_other_models(tmp_path, monkeypatch, caplog) -> None:
    settings = ModelSettings(bootstrap_rounds=20, models=("logistic_regression", "decision_tree"))
    trainm, testm = _tiny()
    dirs = {"models_dir": tmp_path / "models", "runs_dir": tmp_path / "runs"}
    select.run(matrix=trainm, out_dir=dirs["models_dir"], settings=SelectSettings(seed=0))
    metrics = train.run(matrix=trainm, settings=settings, reports_dir=tmp_path, **dirs)
    ids = testm.examples["sample_id"].to_numpy()
    kw = {"train": trainm, "test": testm, "expected_ids": ids, "out_dir": tmp_path / "subs", **dirs}

    path = submit.run(now=NOW, **kw)
    assert path.name == f"submission_{metrics.winner}_20170501T120000Z.csv"
    written = pd.read_csv(path)
    assert list(written.columns) == ["sample_id", "is_listened"]
    np.testing.assert_array_equal(written["sample_id"].to_numpy(), ids)
    assert written["is_listened"].between(0, 1).all()

    # A model that is not the winner: refit on all train examples, cached, then reused.
    other = "decision_tree" if metrics.winner != "decision_tree" else "logistic_regression"
    assert not (dirs["models_dir"] / f"{other}.joblib").exists()
    first = submit.run(model=other, now=NOW, **kw)
    cached = joblib.load(dirs["models_dir"] / f"{other}.joblib")
    assert cached["meta"]["refit_by"] == "submit" and cached["meta"]["n_rows"] == len(trainm.y)
    assert cached["meta"]["run_id"] == metrics.run_id
    caplog.clear()
    with caplog.at_level("INFO", logger="submit"):
        again = submit.run(model=other, now=NOW, **kw)
    assert any("loaded" in r.getMessage() for r in caplog.records)
    assert again.name.endswith("-2.csv") and again.read_bytes() == first.read_bytes()
    assert (tmp_path / "subs" / "latest.csv").read_bytes() == again.read_bytes()

    # Different data: the cached model is stale and gets refit rather than silently reused.
    changed = Matrix(trainm.examples, trainm.X * 2, trainm.groups)
    caplog.clear()
    with caplog.at_level("WARNING", logger="submit"):
        submit.run(model=other, now=NOW, **{**kw, "train": changed})
    assert any("stale" in r.getMessage() for r in caplog.records)
