"""`make train`: scoring arithmetic, run ids, the artifact layout, Optuna continuation, reproducibility."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from core import config
from core.errors import PipelineError
from core.io import read_json
from features import FEATURE_GROUPS
from models import params
from pipeline import select, train
from pipeline.data.dataset import Matrix


@pytest.fixture(autouse=True)
def _small_budgets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(params, "OPTUNA_SECONDS", 0.0)  # no time limit: the trial cap decides
    monkeypatch.setattr(params, "OPTUNA_MAX_TRIALS", 2)
    monkeypatch.setattr(params, "OPTUNA_MAX_ROUNDS", 60)
    monkeypatch.setattr(params, "OPTUNA_EARLY_STOPPING", 10)
    monkeypatch.setattr(params, "OPTUNA_REPORT_EVERY", 10)
    monkeypatch.setattr(params, "BOOTSTRAP_ROUNDS", 40)
    monkeypatch.setattr(params, "SELECT_TREES", 20)
    monkeypatch.setattr(params, "ENSEMBLE_MEMBERS", ("lightgbm_tuned", "logistic_regression"))
    for name, rows in (("knn", 200), ("svm", 150), ("random_forest", 300), ("rbm", 200)):
        monkeypatch.setitem(params.ROW_BUDGETS, name, rows)


def _tiny_matrix(seed: int = 0, users: int = 100, rounds: int = 4) -> Matrix:
    """Rounds 1..``rounds`` per user plus one extra row (round -1); two features per feature group."""
    rng = np.random.default_rng(seed)
    parts = [np.repeat(np.arange(1, rounds + 1), users), np.full(users, -1)]
    rnd = np.concatenate(parts).astype(np.int16)
    n = len(rnd)
    examples = pd.DataFrame(
        {
            "example_id": np.arange(n, dtype=np.int64),
            "round": rnd,
            "user_id": np.tile(np.arange(users, dtype=np.int32), rounds + 1),
            # round k is k days before the end; the extra rows come before every round
            "ts_listen": (1_480_000_000 - 86_400 * np.where(rnd > 0, rnd, rounds + 1).astype(np.int64)).astype(
                np.int32
            ),
            "sample_id": np.int32(-1),
        }
    )
    cols, groups = {}, {}
    for g in FEATURE_GROUPS:
        for j in range(2):
            cols[f"{g}_f{j}"] = rng.normal(size=n).astype(np.float32)
            groups[f"{g}_f{j}"] = g
    X = pd.DataFrame(cols)
    X.iloc[rng.random(n) < 0.1, 1] = np.nan
    logit = 1.2 * X.iloc[:, 0].to_numpy() + 0.8 * X.iloc[:, 2].to_numpy()
    examples["is_listened"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int8)
    return Matrix(examples=examples, X=X, groups=groups)


def _write_matrix(matrix: Matrix, data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Write the matrix as examples + one parquet per feature group and point core.config at it."""
    processed = data / "processed"
    (processed / "features" / "train").mkdir(parents=True)
    matrix.examples.to_parquet(processed / "examples_train.parquet", index=False)
    for g in FEATURE_GROUPS:
        cols = [c for c, owner in matrix.groups.items() if owner == g]
        frame = pd.concat([matrix.examples[["example_id"]], matrix.X[cols]], axis=1)
        frame.to_parquet(processed / "features" / "train" / f"{g}.parquet", index=False)
    monkeypatch.setattr(config, "FEATURES_DIR", processed / "features")
    monkeypatch.setattr(config, "EXAMPLES_TRAIN", processed / "examples_train.parquet")


# --- scoring ---------------------------------------------------------------------------


def test_score_predictions_hand_computed() -> None:
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.4, 0.35, 0.8])
    s = train.score_predictions(y, p, n_boot=50, seed=0)
    assert s["auc"] == pytest.approx(0.75)  # pairs (pos > neg): .35>.1, .8>.1, .8>.4 -> 3 of 4
    assert s["accuracy"] == pytest.approx(0.75)  # predicted 0, 0, 0, 1
    assert s["brier"] == pytest.approx((0.01 + 0.16 + 0.4225 + 0.04) / 4)
    expected_ll = -(np.log(0.9) + np.log(0.6) + np.log(0.35) + np.log(0.8)) / 4
    assert s["log_loss"] == pytest.approx(expected_ll)
    assert s["auc_lo"] <= s["auc_hi"]


def test_vectorised_auc_equals_weighted_roc_auc_with_ties() -> None:
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 200).astype(np.float64)
    p = np.round(rng.random(200), 1)  # many ties
    order = np.argsort(p, kind="stable")
    ps, ys = p[order], y[order]
    starts = np.flatnonzero(np.r_[True, ps[1:] != ps[:-1]])
    counts = rng.integers(0, 4, size=(6, 200))
    got = train._auc_from_counts(counts, ys, starts)
    want = [roc_auc_score(ys, ps, sample_weight=c) for c in counts]
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_bootstrap_is_seeded_and_brackets_the_auc() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    p = np.clip(y * 0.3 + rng.random(500) * 0.7, 0, 1)
    a = train.bootstrap_auc(y, p, n_boot=120, seed=3)
    np.testing.assert_array_equal(a, train.bootstrap_auc(y, p, n_boot=120, seed=3))
    assert a.shape == (120,) and not np.array_equal(a, train.bootstrap_auc(y, p, n_boot=120, seed=4))
    lo, hi = np.percentile(a, [2.5, 97.5])
    assert lo < roc_auc_score(y, p) < hi


def test_run_ids_never_repeat(tmp_path) -> None:
    now = datetime(2017, 4, 30, 23, 59, 1, tzinfo=UTC)
    ids = [train.new_run_id(tmp_path, now) for _ in range(3)]
    assert ids == ["20170430T235901Z", "20170430T235901Z-2", "20170430T235901Z-3"]
    assert all((tmp_path / i).is_dir() for i in ids)


# --- the stage ----------------------------------------------------------------------------


def test_train_needs_a_current_selection(tmp_path) -> None:
    matrix = _tiny_matrix()
    with pytest.raises(PipelineError, match="run `make select` first"):
        train.run(matrix=matrix, models_dir=tmp_path, runs_dir=tmp_path / "runs", reports_dir=tmp_path)
    (tmp_path / "selection.json").write_text('{"selected": ["gone_feature"], "dropped": []}')
    with pytest.raises(PipelineError, match="run `make select` again"):
        train.run(matrix=matrix, models_dir=tmp_path, runs_dir=tmp_path / "runs", reports_dir=tmp_path)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_train_writes_the_layout_and_a_second_run_continues_the_study(tmp_path, monkeypatch) -> None:
    matrix = _tiny_matrix()
    _write_matrix(matrix, tmp_path / "data", monkeypatch)  # read back through load_matrix
    models_dir, runs_dir, reports = tmp_path / "models", tmp_path / "runs", tmp_path / "reports"
    select.run(out_dir=models_dir, seed=0)
    metrics = train.run(models_dir=models_dir, runs_dir=runs_dir, reports_dir=reports, seed=0)

    (run_id,) = [p.name for p in runs_dir.iterdir()]
    run_dir = runs_dir / run_id
    for name in (
        "params.json",
        "metrics.json",
        "val_predictions.parquet",
        "optuna_trials.csv",
        "winner_importance.csv",
        "timings.json",
    ):
        assert (run_dir / name).exists(), name
    on_disk = read_json(run_dir / "metrics.json")
    assert on_disk == read_json(reports / "metrics.json")
    assert on_disk["run_id"] == run_id == metrics["run_id"]
    ranking = on_disk["ranking"]
    aucs = [r["auc"] for r in ranking]
    assert aucs == sorted(aucs, reverse=True)
    assert {r["model"] for r in ranking} == set(train.MODELS)
    assert on_disk["winner"] == ranking[0]["model"] and on_disk["validation_auc_round1"] == ranking[0]["auc"]
    # 100 rows a round < VALIDATION_MIN_ROWS: the estimate runs to VALIDATION_MAX_ROUNDS (3) folds.
    folds = on_disk["validation_folds"]
    assert [f["round"] for f in folds] == [1, 2, 3] and folds[0]["auc"] == ranking[0]["auc"]
    assert [f["train_rows"] for f in folds] == [400, 300, 200]
    assert on_disk["validation_auc"] == pytest.approx(np.mean([f["auc"] for f in folds]))
    for r in ranking:
        assert 0 <= r["auc_lo"] <= r["auc_hi"] <= 1
        assert set(r) >= {
            "log_loss",
            "brier",
            "accuracy",
            "fit_seconds",
            "predict_seconds",
            "rows_used",
            "row_budget",
            "n_features",
            "note",
        }
    knn = next(r for r in ranking if r["model"] == "knn")
    assert knn["row_budget"] == 200 and knn["rows_used"] == 200
    assert set(on_disk["selection_effect"]) >= {"model", "auc_selected", "auc_all_features"}
    assert on_disk["optuna"]["n_trials_this_run"] == 2 and on_disk["optuna"]["n_trials_total"] == 2
    assert on_disk["n_valid"] == 100 and on_disk["n_train"] == 400

    run_params = read_json(run_dir / "params.json")
    assert run_params["run_id"] == run_id and len(run_params["data_fingerprint"]) == 64
    assert run_params["model_params"]["OPTUNA_MAX_TRIALS"] == 2 and "ROUNDS" in run_params["feature_params"]
    val = pd.read_parquet(run_dir / "val_predictions.parquet")
    assert list(val.columns[:3]) == ["example_id", "user_id", "y"] and len(val) == 100
    assert set(val.columns[3:]) == set(train.MODELS)
    trials = pd.read_csv(run_dir / "optuna_trials.csv")
    assert list(trials.columns[:6]) == ["number", "value", "state", "datetime_start", "duration_seconds", "run_id"]
    assert (trials["run_id"] == run_id).all()
    imp = pd.read_csv(run_dir / "winner_importance.csv")
    assert list(imp.columns) == ["feature", "group", "gain"]

    winner = read_json(models_dir / "winner.json")
    assert winner == {"model": on_disk["winner"], "run_id": run_id, "validation_auc": on_disk["validation_auc"]}
    saved = joblib.load(models_dir / f"{winner['model']}.joblib")
    assert saved["features"] == read_json(models_dir / "selection.json")["selected"]
    assert saved["meta"]["run_id"] == run_id and saved["meta"]["n_rows"] == len(matrix.y)
    assert (models_dir / "optuna.sqlite3").exists()

    # A second run: a new folder, the same study with more trials.
    second = train.run(
        models_dir=models_dir, runs_dir=runs_dir, reports_dir=reports, seed=0, names=["lightgbm_tuned", "sgd"]
    )
    assert len(list(runs_dir.iterdir())) == 2 and second["run_id"] != run_id
    assert second["optuna"]["study_name"] == on_disk["optuna"]["study_name"]
    assert second["optuna"]["n_trials_total"] == 4 and second["optuna"]["n_trials_this_run"] == 2
    trials = pd.read_csv(runs_dir / second["run_id"] / "optuna_trials.csv")
    assert list(trials["run_id"]) == [run_id, run_id, second["run_id"], second["run_id"]]
    # The continued study does not replay the first run's points (sampler seed = seed + trials so far).
    assert not np.allclose(trials["params_learning_rate"][:2], trials["params_learning_rate"][2:])
    assert read_json(models_dir / "winner.json")["run_id"] == second["run_id"]


def test_same_data_and_trial_cap_reproduce_the_run(tmp_path) -> None:
    matrix = _tiny_matrix(seed=3)
    names = ["lightgbm_tuned", "random_forest", "ensemble"]
    outs = []
    for k in ("a", "b"):
        d = tmp_path / k
        select.run(matrix=matrix, out_dir=d / "models", seed=1)
        outs.append(
            train.run(
                matrix=matrix,
                names=names,
                seed=1,
                models_dir=d / "models",
                runs_dir=d / "runs",
                reports_dir=d / "reports",
            )
        )
    a, b = outs
    assert a["optuna"]["best_params"] == b["optuna"]["best_params"]
    assert [(r["model"], r["auc"], r["log_loss"], r["auc_lo"]) for r in a["ranking"]] == [
        (r["model"], r["auc"], r["log_loss"], r["auc_lo"]) for r in b["ranking"]
    ]
    va = pd.read_parquet(tmp_path / "a" / "runs" / a["run_id"] / "val_predictions.parquet")
    vb = pd.read_parquet(tmp_path / "b" / "runs" / b["run_id"] / "val_predictions.parquet")
    pd.testing.assert_frame_equal(va, vb, check_exact=True)


def test_an_interrupted_run_leaves_the_study_runs_and_winner_untouched(tmp_path, monkeypatch) -> None:
    matrix = _tiny_matrix(seed=5)
    models_dir, runs_dir, reports = tmp_path / "models", tmp_path / "runs", tmp_path / "reports"
    select.run(matrix=matrix, out_dir=models_dir, seed=0)
    names = ["lightgbm_tuned", "sgd"]
    kw = {
        "matrix": matrix,
        "names": names,
        "seed": 0,
        "models_dir": models_dir,
        "runs_dir": runs_dir,
        "reports_dir": reports,
        "write_report": False,
    }
    first = train.run(**kw)
    study_before = (models_dir / "optuna.sqlite3").read_bytes()
    winner_before = (models_dir / "winner.json").read_bytes()

    def killed(*args, **kwargs):  # SIGTERM arrives as KeyboardInterrupt (core.errors.run_cli)
        raise KeyboardInterrupt

    # Killed after its Optuna trials ran, in the middle of the bake-off.
    monkeypatch.setattr(train, "bakeoff", killed)
    with pytest.raises(KeyboardInterrupt):
        train.run(**kw)
    assert (models_dir / "optuna.sqlite3").read_bytes() == study_before, "the killed run's trials must not count"
    assert (models_dir / "winner.json").read_bytes() == winner_before
    assert [p.name for p in runs_dir.iterdir()] == [first["run_id"]]
    assert not [p for p in models_dir.iterdir() if p.name.startswith(".tmp-")]


def _fold_matrix() -> Matrix:
    """User 0: rounds 3, 2, 1 at t=100, 200, 300, extras at t=50 and t=250; user 1: round 1 and an extra."""
    examples = pd.DataFrame(
        {
            "example_id": np.arange(7, dtype=np.int64),
            "round": np.array([3, 2, 1, -1, -1, 1, -1], dtype=np.int16),
            "user_id": np.array([0, 0, 0, 0, 0, 1, 1], dtype=np.int32),
            "ts_listen": np.array([100, 200, 300, 50, 250, 400, 10], dtype=np.int32),
            "is_listened": np.array([1, 0, 1, 0, 1, 1, 0], dtype=np.int8),
        }
    )
    return Matrix(examples=examples, X=pd.DataFrame({"f": np.arange(7, dtype=np.float32)}), groups={"f": "time"})


def test_fold_masks_keep_only_each_users_earlier_rows() -> None:
    m = _fold_matrix()
    train, valid = m.fold_masks(1)
    assert valid.tolist() == [False, False, True, False, False, True, False]
    assert train.tolist() == m.training_mask().tolist()
    train, valid = m.fold_masks(2)
    assert valid.tolist() == [False, True, False, False, False, False, False]
    # user 0: round 3 and the extra at t=50 (t=250 is after their round 2); user 1 has no
    # round 2, so their extra row stays (nothing of theirs is validated in this fold)
    assert train.tolist() == [True, False, False, True, False, False, True]


def test_rolling_validation_refits_on_earlier_rows_and_weights_by_rows(monkeypatch) -> None:
    from models.registry import MODELS, fit_model, predict_scores

    monkeypatch.setattr(params, "VALIDATION_MIN_ROWS", 250)
    monkeypatch.setattr(params, "VALIDATION_MAX_ROUNDS", 3)
    m = _tiny_matrix(users=100, rounds=4)
    feats = list(m.X.columns)
    out = train.rolling_validation(m, feats, "logistic_regression", 0.6, seed=0, tuned=None)
    # 100 rows a round: rounds 1, 2, 3 reach 300 >= 250 rows
    assert [f["round"] for f in out["folds"]] == [1, 2, 3]
    assert out["folds"][0]["auc"] == 0.6
    tr, va = m.fold_masks(3)
    model = fit_model(MODELS["logistic_regression"](0), m.X.loc[tr, feats], m.y[tr], rounds=m.rounds[tr])
    expected = roc_auc_score(m.y[va], predict_scores(model, m.X.loc[va, feats]))
    assert out["folds"][2]["auc"] == pytest.approx(expected)
    assert out["auc"] == pytest.approx((0.6 + out["folds"][1]["auc"] + expected) / 3)
    monkeypatch.setattr(params, "VALIDATION_MIN_ROWS", 100)  # round 1 alone is enough
    assert train.rolling_validation(m, feats, "logistic_regression", 0.6, seed=0, tuned=None) == {
        "model": "logistic_regression",
        "auc": 0.6,
        "folds": [{"round": 1, "rows": 100, "auc": 0.6, "train_rows": 400}],
    }
