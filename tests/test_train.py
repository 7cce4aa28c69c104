"""`make train`: scoring arithmetic, run ids, the artifact layout, Optuna continuation, reproducibility."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from core import config
from core.errors import PipelineError
from core.io import read_json
from core.settings import ModelSettings, SelectSettings, TuneSettings
from features import FEATURE_GROUPS
from models.estimators import LATER_EXTRA, inner_holdout
from models.fitting import fit_model, predict_scores
from models.registry import MODELS
from pipeline import scoring, select, train, tune
from pipeline.data.dataset import Matrix
from pipeline.runstore import Fold, ModelScore, Ranking, RunMetrics, RunStore, new_run_id
from pipeline.winner import choose_winner

#: Small budgets: no Optuna clock (the trial cap decides), few trees, resamples and rows.
TUNE = TuneSettings(
    seed=0, optuna_seconds=0.0, optuna_max_trials=2, optuna_max_rounds=60, optuna_early_stopping=10,
    optuna_report_every=10,
)  # fmt: skip
SELECT = SelectSettings(seed=0, select_trees=20)
MODEL = ModelSettings(
    seed=0, bootstrap_rounds=40, ensemble_members=("lightgbm_tuned", "logistic_regression"),
    rows_knn=200, rows_svm=150, rows_rf=300, rows_rbm=200,
)  # fmt: skip


def _with(settings, **kw):
    return dataclasses.replace(settings, **kw)


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
    s = scoring.score_predictions(y, p, n_boot=50, seed=0)
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
    got = scoring._auc_from_counts(counts, ys, starts)
    want = [roc_auc_score(ys, ps, sample_weight=c) for c in counts]
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_bootstrap_is_seeded_and_brackets_the_auc() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    p = np.clip(y * 0.3 + rng.random(500) * 0.7, 0, 1)
    a = scoring.bootstrap_auc(y, p, n_boot=120, seed=3)
    np.testing.assert_array_equal(a, scoring.bootstrap_auc(y, p, n_boot=120, seed=3))
    assert a.shape == (120,) and not np.array_equal(a, scoring.bootstrap_auc(y, p, n_boot=120, seed=4))
    lo, hi = np.percentile(a, [2.5, 97.5])
    assert lo < roc_auc_score(y, p) < hi


def test_run_ids_never_repeat(tmp_path) -> None:
    now = datetime(2017, 4, 30, 23, 59, 1, tzinfo=UTC)
    ids = [new_run_id(tmp_path, now) for _ in range(3)]
    assert ids == ["20170430T235901Z", "20170430T235901Z-2", "20170430T235901Z-3"]
    assert all((tmp_path / i).is_dir() for i in ids)


# --- the stage ----------------------------------------------------------------------------


def test_train_needs_a_current_selection(tmp_path) -> None:
    matrix = _tiny_matrix()
    kw = {"matrix": matrix, "settings": MODEL, "models_dir": tmp_path, "runs_dir": tmp_path / "runs"}
    with pytest.raises(PipelineError, match="run `make select` first"):
        train.run(reports_dir=tmp_path, **kw)
    (tmp_path / "selection.json").write_text('{"selected": ["gone_feature"], "dropped": []}')
    with pytest.raises(PipelineError, match="run `make select` again"):
        train.run(reports_dir=tmp_path, **kw)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_train_writes_the_layout_and_make_tune_continues_the_study(tmp_path, monkeypatch) -> None:
    matrix = _tiny_matrix()
    _write_matrix(matrix, tmp_path / "data", monkeypatch)  # read back through load_matrix
    models_dir, runs_dir, reports = tmp_path / "models", tmp_path / "runs", tmp_path / "reports"
    select.run(out_dir=models_dir, settings=SELECT)
    first_tune = tune.run(settings=TUNE, models_dir=models_dir, run_id="tune-1")
    metrics = train.run(models_dir=models_dir, runs_dir=runs_dir, reports_dir=reports, settings=MODEL)

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
    assert on_disk == read_json(reports / "metrics.json") == metrics.to_json()
    assert RunMetrics.from_json(on_disk) == metrics
    assert on_disk["run_id"] == run_id == metrics.run_id
    ranking = on_disk["ranking"]
    aucs = [r["auc"] for r in ranking]
    assert aucs == sorted(aucs, reverse=True)
    assert {r["model"] for r in ranking} == set(MODELS)
    assert on_disk["models_covered"] == list(MODELS) == on_disk["models_all"]
    # The winner is the rule's choice on the saved validation scores, and its round-1 line is the ranking's.
    val = pd.read_parquet(run_dir / "val_predictions.parquet")
    choice = choose_winner(
        metrics.ranking, {m: val[m].to_numpy() for m in MODELS}, val["y"].to_numpy(), default="ensemble",
        models=list(MODELS), n_boot=40, seed=0,
    )  # fmt: skip
    won = next(r for r in ranking if r["model"] == on_disk["winner"])
    assert on_disk["winner"] == choice.model and on_disk["validation_auc_round1"] == won["auc"]
    assert on_disk["winner_rule"] == {"default": "ensemble", "reason": choice.reason}
    assert on_disk["notes"][0] == f"Winner: {choice.reason}."
    # 100 rows a round < VALIDATION_MIN_ROWS: the estimate runs to VALIDATION_MAX_ROUNDS (3) folds.
    folds = on_disk["validation_folds"]
    assert [f["round"] for f in folds] == [1, 2, 3] and folds[0]["auc"] == won["auc"]
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
    assert "selection_effect" not in on_disk  # make ablation measures it (tests/test_ablation.py)
    assert on_disk["optuna"]["n_trials_this_run"] == 2 and on_disk["optuna"]["n_trials_total"] == 2
    assert on_disk["optuna"] == first_tune["optuna"]
    assert on_disk["n_valid"] == 100 and on_disk["n_train"] == 400

    run_params = read_json(run_dir / "params.json")
    assert run_params["run_id"] == run_id and len(run_params["data_fingerprint"]) == 64
    assert run_params["model_params"]["BOOTSTRAP_ROUNDS"] == 40 and "ROUNDS" in run_params["feature_params"]
    val = pd.read_parquet(run_dir / "val_predictions.parquet")
    assert list(val.columns[:3]) == ["example_id", "user_id", "y"] and len(val) == 100
    assert set(val.columns[3:]) == set(MODELS)
    trials = pd.read_csv(run_dir / "optuna_trials.csv")
    assert list(trials.columns[:6]) == ["number", "value", "state", "datetime_start", "duration_seconds", "run_id"]
    assert (trials["run_id"] == "tune-1").all()
    imp = pd.read_csv(run_dir / "winner_importance.csv")
    assert list(imp.columns) == ["feature", "group", "gain"]

    winner = read_json(models_dir / "winner.json")
    assert winner == {"model": on_disk["winner"], "run_id": run_id, "validation_auc": on_disk["validation_auc"]}
    saved = joblib.load(models_dir / f"{winner['model']}.joblib")
    assert saved["features"] == read_json(models_dir / "selection.json")["selected"]
    assert saved["meta"]["run_id"] == run_id and saved["meta"]["n_rows"] == len(matrix.y)
    assert (models_dir / "optuna.sqlite3").exists()

    # The file rule again with nothing changed: the study already holds OPTUNA_MAX_TRIALS trials, none added.
    again = tune.run(settings=TUNE, models_dir=models_dir, run_id="tune-x")
    assert again["optuna"]["n_trials_this_run"] == 0 and again["optuna"]["n_trials_total"] == 2
    # `make tune`: the same study with more trials, then a second training run in a new folder.
    tune.run(settings=TUNE, models_dir=models_dir, run_id="tune-2", add=True)
    second = train.run(
        models_dir=models_dir,
        runs_dir=runs_dir,
        reports_dir=reports,
        settings=_with(MODEL, models=("lightgbm_tuned", "sgd")),
    )
    assert len(list(runs_dir.iterdir())) == 2 and second.run_id != run_id
    assert second.optuna["study_name"] == on_disk["optuna"]["study_name"]
    assert second.optuna["n_trials_total"] == 4 and second.optuna["n_trials_this_run"] == 2
    assert second.ranking.models == sorted(second.ranking.models, key=lambda m: -second.ranking.get(m).auc)
    assert set(second.ranking.models) == {"lightgbm_tuned", "sgd"} == set(second.extra["models_covered"])
    # Without the default winner (the stack) in the bake-off, the best round-1 AUC wins.
    assert second.winner == second.ranking.winner.model and "is not in this bake-off" in second.notes[0]
    trials = pd.read_csv(runs_dir / second.run_id / "optuna_trials.csv")
    assert list(trials["run_id"]) == ["tune-1", "tune-1", "tune-2", "tune-2"]
    # The continued study does not replay the first run's points (sampler seed = seed + trials so far).
    assert not np.allclose(trials["params_learning_rate"][:2], trials["params_learning_rate"][2:])
    assert read_json(models_dir / "winner.json")["run_id"] == second.run_id


def test_without_a_study_on_these_features_the_bake_off_leaves_the_tuned_lightgbm_out(tmp_path) -> None:
    """Tuning is `make tune`'s alone: no study (or one tuned on other features) means no lightgbm_tuned."""
    matrix = _tiny_matrix(seed=5)
    models_dir = tmp_path / "models"
    select.run(matrix=matrix, out_dir=models_dir, settings=SELECT)
    kw = {"matrix": matrix, "models_dir": models_dir, "runs_dir": tmp_path / "runs", "write_report": False}
    everything = _with(MODEL, models=(), ensemble_members=("lightgbm_tuned", "logistic_regression"))
    no_study = train.run(reports_dir=tmp_path / "r1", settings=everything, **kw)
    assert "lightgbm_tuned" not in no_study.ranking.models and "lightgbm_tuned" not in no_study.extra["models_covered"]
    assert set(no_study.ranking.models) == set(MODELS) - {"lightgbm_tuned"}
    assert "make tune" in no_study.extra["models_skipped"]["lightgbm_tuned"] and no_study.optuna == {}
    # The stack's LightGBM member has the fixed defaults: the bake-off's own lightgbm fit, reused.
    stack = no_study.ranking.get("ensemble")
    assert "fixed defaults stand in" in stack.note

    # A tuned.json whose key is of other features is not used either.
    tuned = tune.run(settings=TUNE, matrix=matrix, models_dir=models_dir)
    assert tuned["lightgbm_params"] is not None
    stale = {**tuned, "key": "0" * 16}
    (models_dir / "tuned.json").write_text(json.dumps(stale))
    with_stale = train.run(reports_dir=tmp_path / "r2", settings=everything, **kw)
    assert "lightgbm_tuned" in with_stale.extra["models_skipped"] and with_stale.optuna == {}
    assert [(r.model, r.auc) for r in with_stale.ranking] == [(r.model, r.auc) for r in no_study.ranking]

    # The study of these features: lightgbm_tuned is back, with the study's best parameters.
    (models_dir / "tuned.json").write_text(json.dumps(tuned))
    tuned_run = train.run(reports_dir=tmp_path / "r3", settings=everything, **kw)
    assert set(tuned_run.ranking.models) == set(MODELS) and tuned_run.extra["models_skipped"] == {}
    assert tuned_run.optuna == tuned["optuna"]
    saved = joblib.load(models_dir / f"{tuned_run.winner}.joblib")["meta"]
    assert saved["tuned_params"] == tuned["lightgbm_params"]

    # Asked for by name without a study, it is fit with the defaults and its note says so.
    (models_dir / "tuned.json").unlink()
    named = train.run(reports_dir=tmp_path / "r4", settings=_with(MODEL, models=("lightgbm", "lightgbm_tuned")), **kw)
    assert named.extra["models_skipped"] == {}
    assert named.ranking.get("lightgbm_tuned").auc == named.ranking.get("lightgbm").auc
    assert "fixed defaults stand in" in named.ranking.get("lightgbm_tuned").note


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '{"key": "k", "lightgbm_params": 3}'])
def test_an_unreadable_tuned_json_is_a_clear_error_before_anything_is_written(tmp_path, text) -> None:
    matrix = _tiny_matrix(seed=5)
    models_dir = tmp_path / "models"
    select.run(matrix=matrix, out_dir=models_dir, settings=SELECT)
    (models_dir / "tuned.json").write_text(text)
    with pytest.raises(PipelineError, match=r"tuned\.json .*`make tune`"):
        train.run(matrix=matrix, models_dir=models_dir, runs_dir=tmp_path / "runs", reports_dir=tmp_path / "r",
                  settings=_with(MODEL, models=("logistic_regression",)), write_report=False)  # fmt: skip
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
    assert not (models_dir / "winner.json").exists()


def test_same_data_and_trial_cap_reproduce_the_run(tmp_path) -> None:
    matrix = _tiny_matrix(seed=3)
    settings = _with(MODEL, seed=1, models=("lightgbm_tuned", "random_forest", "ensemble"))
    outs = []
    for k in ("a", "b"):
        d = tmp_path / k
        select.run(matrix=matrix, out_dir=d / "models", settings=_with(SELECT, seed=1))
        tune.run(settings=_with(TUNE, seed=1), matrix=matrix, models_dir=d / "models")
        outs.append(
            train.run(
                matrix=matrix,
                settings=settings,
                models_dir=d / "models",
                runs_dir=d / "runs",
                reports_dir=d / "reports",
            )
        )
    a, b = outs
    assert a.optuna["best_params"] == b.optuna["best_params"]
    assert [(r.model, r.auc, r.log_loss, r.auc_lo) for r in a.ranking] == [
        (r.model, r.auc, r.log_loss, r.auc_lo) for r in b.ranking
    ]
    va = pd.read_parquet(tmp_path / "a" / "runs" / a.run_id / "val_predictions.parquet")
    vb = pd.read_parquet(tmp_path / "b" / "runs" / b.run_id / "val_predictions.parquet")
    pd.testing.assert_frame_equal(va, vb, check_exact=True)


def test_a_second_run_reads_unchanged_fits_back_without_changing_a_bit(tmp_path, caplog) -> None:
    matrix = _tiny_matrix(seed=4)
    models_dir = tmp_path / "models"
    select.run(matrix=matrix, out_dir=models_dir, settings=SELECT)
    kw = {"matrix": matrix, "models_dir": models_dir, "runs_dir": tmp_path / "runs", "write_report": False}
    settings = _with(MODEL, models=("logistic_regression", "knn", "ensemble"))
    first = train.run(settings=settings, reports_dir=tmp_path / "r1", **kw)
    with caplog.at_level("INFO", logger="train"):
        second = train.run(settings=settings, reports_dir=tmp_path / "r2", **kw)
    cached = [r.getMessage() for r in caplog.records if "(cached)" in r.getMessage()]
    assert len(cached) == 3  # every model of the bake-off was read back
    assert [(r.model, r.auc, r.log_loss) for r in first.ranking] == [
        (r.model, r.auc, r.log_loss) for r in second.ranking
    ]
    v1 = pd.read_parquet(tmp_path / "runs" / first.run_id / "val_predictions.parquet")
    v2 = pd.read_parquet(tmp_path / "runs" / second.run_id / "val_predictions.parquet")
    pd.testing.assert_frame_equal(v1, v2, check_exact=True)
    # A changed row budget refits that model only.
    caplog.clear()
    with caplog.at_level("INFO", logger="train"):
        train.run(settings=_with(settings, rows_knn=150), reports_dir=tmp_path / "r3", **kw)
    fresh = [r.getMessage() for r in caplog.records if "AUC" in r.getMessage() and "[" in r.getMessage()]
    assert [m.split(":")[0] for m in fresh if "(cached)" not in m] == ["[2/3] knn"]


def test_an_interrupted_run_leaves_the_runs_and_winner_untouched(tmp_path, monkeypatch) -> None:
    matrix = _tiny_matrix(seed=5)
    models_dir, runs_dir, reports = tmp_path / "models", tmp_path / "runs", tmp_path / "reports"
    select.run(matrix=matrix, out_dir=models_dir, settings=SELECT)
    kw = {
        "matrix": matrix,
        "settings": _with(MODEL, models=("lightgbm_tuned", "sgd")),
        "models_dir": models_dir,
        "runs_dir": runs_dir,
        "reports_dir": reports,
        "write_report": False,
    }
    first = train.run(**kw)
    winner_before = (models_dir / "winner.json").read_bytes()

    def killed(*args, **kwargs):  # SIGTERM arrives as KeyboardInterrupt (core.errors.run_cli)
        raise KeyboardInterrupt

    # Killed in the middle of the bake-off.
    monkeypatch.setattr(train, "bakeoff", killed)
    with pytest.raises(KeyboardInterrupt):
        train.run(**kw)
    assert (models_dir / "winner.json").read_bytes() == winner_before
    assert [p.name for p in runs_dir.iterdir()] == [first.run_id]
    assert not [p for p in models_dir.iterdir() if p.name.startswith(".tmp-")]


def test_an_interrupted_tuning_leaves_the_study_untouched(tmp_path, monkeypatch) -> None:
    matrix = _tiny_matrix(seed=5)
    models_dir = tmp_path / "models"
    select.run(matrix=matrix, out_dir=models_dir, settings=SELECT)
    tune.run(settings=TUNE, matrix=matrix, models_dir=models_dir)
    study_before = (models_dir / "optuna.sqlite3").read_bytes()
    tuned_before = (models_dir / "tuned.json").read_bytes()
    real = tune.tune_lightgbm

    def killed_after_trials(*args, **kwargs):  # the trials ran, then the stage was killed
        real(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(tune, "tune_lightgbm", killed_after_trials)
    with pytest.raises(KeyboardInterrupt):
        tune.run(settings=TUNE, matrix=matrix, models_dir=models_dir, add=True)
    assert (models_dir / "optuna.sqlite3").read_bytes() == study_before, "the killed run's trials must not count"
    assert (models_dir / "tuned.json").read_bytes() == tuned_before
    assert not [p for p in models_dir.iterdir() if p.name.startswith(".tmp-")]


def test_typed_results_round_trip_and_rank_best_first() -> None:
    def score(model: str, auc: float) -> ModelScore:
        return ModelScore(model, auc, auc - 0.1, auc + 0.1, 0.6, 0.2, 0.7, 1.0, 0.1, 10, None, 3, "probability")

    ranking = Ranking.of([score("b", 0.7), score("a", 0.7), score("c", 0.9)])
    assert ranking.models == ["c", "a", "b"] and ranking.winner.model == "c" and ranking.get("zz") is None
    assert Ranking.from_json(ranking.to_json()) == ranking
    with pytest.raises(PipelineError, match="ranking is empty"):
        Ranking.of([])
    m = RunMetrics(
        run_id="r", validation_auc=0.8, validation_auc_round1=0.9, validation_folds=(Fold(1, 10, 0.9, 40),),
        winner="c", ranking=ranking, optuna={}, timings={"total": 1.0}, n_train=40,
        n_valid=10, valid_positive_rate=0.5, importance_source="c", demo=False, notes=("n",),
        extra={"models_covered": ["c"]},
    )  # fmt: skip
    assert RunMetrics.from_json(m.to_json()) == m and m.to_json()["models_covered"] == ["c"]


def test_run_store_stages_commits_and_discards(tmp_path) -> None:
    store = RunStore(tmp_path)
    with store.stage(datetime(2017, 5, 1, tzinfo=UTC)) as staged:
        staged.write_json("metrics.json", {"run_id": staged.run_id, "ranking": []})
        assert not (tmp_path / staged.run_id / "metrics.json").exists()  # not before the commit
        staged.commit()
    assert store.ids() == ["20170501T000000Z"] and store.tuned_params("20170501T000000Z") is None
    with store.stage(datetime(2017, 5, 1, tzinfo=UTC)) as unfinished:
        unfinished.write_json("metrics.json", {})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["20170501T000000Z"]  # no -2, no .tmp-


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


def test_a_users_rows_after_their_earliest_example_up_to_round_k_stay_out_of_fold_k() -> None:
    # User 2 has rounds 2 and 1 (t=200, 300) but no round 3, extras at t=150 and t=250.
    m = _fold_matrix()
    ex = pd.concat(
        [
            m.examples,
            pd.DataFrame(
                {
                    "example_id": np.arange(7, 11, dtype=np.int64),
                    "round": np.array([2, 1, -1, -1], dtype=np.int16),
                    "user_id": np.array([2, 2, 2, 2], dtype=np.int32),
                    "ts_listen": np.array([200, 300, 150, 250], dtype=np.int32),
                    "is_listened": np.array([1, 0, 1, 0], dtype=np.int8),
                }
            ),
        ],
        ignore_index=True,
    )
    m = Matrix(examples=ex, X=pd.DataFrame({"f": np.arange(11, dtype=np.float32)}), groups={"f": "time"})
    train3, valid3 = m.fold_masks(3)
    assert valid3.tolist() == [True] + [False] * 10
    # user 0: the extra at t=50 only (before their round 3 at t=100); user 1: the extra (no
    # round 2 or 3: cut at round 1, t=400); user 2: the extra at t=150, not t=250 (after their
    # round 2, their earliest example of rounds 1..3)
    assert np.flatnonzero(train3).tolist() == [3, 6, 9]
    # Fold 3's rows are exactly those fold 2's stack fits its members on (its inner holdout
    # is round 3): that fit is read back, not fit again.
    train2, _ = m.fold_masks(2)
    inner = m.inner_rounds(train2)
    inner_fit = np.flatnonzero(train2)[(inner != 3) & (inner != LATER_EXTRA)]
    assert inner_fit.tolist() == np.flatnonzero(train3).tolist()


def test_inner_rounds_keep_each_users_later_extras_out_of_the_inner_fit() -> None:
    m = _fold_matrix()
    train = m.training_mask()  # rows 0, 1, 3, 4, 6
    # The inner holdout scores round 2 (user 0 at t=200): user 0's extra at t=250 is later, the
    # one at t=50 is not; user 1 has no round 2, so their extra stays (as in fold_masks(2)).
    assert m.inner_rounds(train).tolist() == [3, 2, -1, LATER_EXTRA, -1]
    # Every row: the holdout would be round 1, and every extra is before its user's round 1.
    assert m.inner_rounds(np.ones(7, dtype=bool)).tolist() == m.rounds.tolist()
    rounds = np.array([2, 2, 3, 3, -1, LATER_EXTRA, -1, 2])
    fit, hold = inner_holdout(rounds, np.array([0, 1, 0, 1, 1, 0, 0, 1]), seed=0)
    assert fit.tolist() == [2, 3, 4, 6] and hold.tolist() == [0, 1, 7]


def _later_extras_matrix(flip: np.ndarray | None = None) -> tuple[Matrix, np.ndarray]:
    """_tiny_matrix with the even users' extra row moved between their round 2 and round 1."""
    m = _tiny_matrix(seed=7, users=100, rounds=4)
    ex = m.examples.copy()
    later = (ex["round"].to_numpy() == -1) & (ex["user_id"].to_numpy() % 2 == 0)
    ts = ex["ts_listen"].to_numpy().astype(np.int64)
    ts[later] = 1_480_000_000 - 86_400 * 3 // 2  # round k is k days before the end
    ex["ts_listen"] = ts.astype(np.int32)
    if flip is not None:
        ex["is_listened"] = np.where(flip, 1 - ex["is_listened"].to_numpy(), ex["is_listened"].to_numpy())
    return Matrix(examples=ex, X=m.X, groups=m.groups), later


def test_a_stacks_weights_never_see_a_users_later_rows_and_its_rolling_folds_reuse_its_fits(
    tmp_path, monkeypatch
) -> None:
    m, later = _later_extras_matrix()
    feats = list(m.X.columns)
    names = ["logistic_regression", "lightgbm", "ensemble"]  # the stack: lightgbm_tuned (untuned) + LR
    settings = _with(MODEL, validation_min_rows=250, validation_max_rounds=3)

    def stack(matrix: Matrix) -> tuple[Any, dict[str, Any]]:
        split = train.Split.of(matrix, feats)
        cache = train.FitCache(tmp_path / "off", code="x", enabled=False)
        ranking, fitted, _ = train.bakeoff(split, names, settings=settings, tuned=None, cache=cache, t_start=0.0)
        return ranking, fitted

    assert (train.Split.of(m, feats).r_train == LATER_EXTRA).sum() == later.sum() == 50
    ranking, fitted = stack(m)
    weights = fitted["ensemble"][-1].weights_
    # Changing the labels of rows after each user's held-out round-2 example moves no weight...
    _, moved = stack(_later_extras_matrix(flip=later)[0])
    assert moved["ensemble"][-1].weights_ == weights
    # ...changing those of the rows before it does.
    earlier = (m.rounds == -1) & ~later
    _, moved = stack(_later_extras_matrix(flip=earlier)[0])
    assert moved["ensemble"][-1].weights_ != weights

    folds_seen: dict[str, Any] = {}
    real_fit = train._fit

    def spy(cache, kind, name, *a, **kw):
        out = real_fit(cache, kind, name, *a, **kw)
        folds_seen[kind] = out[0]
        return out

    monkeypatch.setattr(train, "_fit", spy)
    cache = train.FitCache(tmp_path / "c1", code="x", enabled=False)
    auc1 = ranking.get("ensemble").auc
    reused = train.rolling_validation(
        m, feats, "ensemble", auc1, settings=settings, tuned=None, cache=cache, fitted=fitted
    )
    # Fold 2 fits on the rows before each user's round 2: the bake-off stack's inner rows;
    # fold 3 on fold 2's inner rows.  Every final member of both is a fit read back.
    for k in ("fold2", "fold3"):
        assert folds_seen[k][-1].reused_ == folds_seen[k][-1].kept_ != [], k
    fresh = train.rolling_validation(m, feats, "ensemble", auc1, settings=settings, tuned=None, cache=cache)
    assert fresh == reused and [f.round for f in reused[1]] == [1, 2, 3]


def test_rolling_validation_refits_on_earlier_rows_and_weights_by_rows(tmp_path) -> None:
    from pipeline.fitcache import FitCache

    cache = FitCache(tmp_path, code="test", enabled=False)
    settings = _with(MODEL, validation_min_rows=250, validation_max_rounds=3)
    m = _tiny_matrix(users=100, rounds=4)
    feats = list(m.X.columns)
    auc, folds = train.rolling_validation(
        m, feats, "logistic_regression", 0.6, settings=settings, tuned=None, cache=cache
    )
    # 100 rows a round: rounds 1, 2, 3 reach 300 >= 250 rows
    assert [f.round for f in folds] == [1, 2, 3]
    assert folds[0].auc == 0.6
    tr, va = m.fold_masks(3)
    model = fit_model(MODELS["logistic_regression"].build(settings), m.X.loc[tr, feats], m.y[tr], rounds=m.rounds[tr])
    expected = roc_auc_score(m.y[va], predict_scores(model, m.X.loc[va, feats]))
    assert folds[2].auc == pytest.approx(expected)
    assert auc == pytest.approx((0.6 + folds[1].auc + expected) / 3)
    one = _with(settings, validation_min_rows=100)  # round 1 alone is enough
    assert train.rolling_validation(m, feats, "logistic_regression", 0.6, settings=one, tuned=None, cache=cache) == (
        0.6,
        (Fold(round=1, rows=100, auc=0.6, train_rows=400),),
    )


def test_paired_auc_delta_is_the_difference_with_an_interval_over_the_same_resamples() -> None:
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.4, 0.35, 0.8])  # AUC 0.75
    q = np.array([0.1, 0.2, 0.35, 0.8])  # AUC 1.0
    delta, lo, hi = scoring.paired_auc_delta(y, p, q, n_boot=200, seed=0)
    assert delta == pytest.approx(-0.25)
    assert lo <= delta <= hi <= 0  # p never beats q on any resample
    same = scoring.paired_auc_delta(y, p, p, n_boot=50, seed=0)
    assert same == (0.0, 0.0, 0.0)


def test_side_by_side_fits_give_the_same_scores_as_one_after_the_other(tmp_path, monkeypatch) -> None:
    matrix = _tiny_matrix()
    split = train.Split.of(matrix, list(matrix.X.columns))
    names = ["logistic_regression", "sgd", "decision_tree", "lightgbm"]
    cache = train.FitCache(tmp_path / "c", code="x", enabled=False)
    together = train.bakeoff(split, names, settings=MODEL, tuned=None, cache=cache, t_start=0.0)
    monkeypatch.setattr(train, "SIDE_BY_SIDE_ORDER", ())
    alone = train.bakeoff(split, names, settings=MODEL, tuned=None, cache=cache, t_start=0.0)
    for name in names:
        assert np.array_equal(together[2][name], alone[2][name]), name
    assert [s.model for s in together[0].scores] == [s.model for s in alone[0].scores]
