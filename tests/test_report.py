"""The HTML report: built from a tiny fake artifact set written into tmp_path."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.errors import PipelineError
from core.io import write_text
from pipeline import report
from pipeline.report import explore, plots
from pipeline.report.page import TEMPLATES, Section, render_page

MODELS = ["lightgbm", "logistic_regression", "random_forest", "user_rate_baseline"]
RUN_IDS = ["20161201T120000Z", "20161202T090000Z"]  # the second is the newest
GROUPS = ["time", "media", "user", "item", "user_item"]
N_BROKEN = 7  # broken-clock rows in the fake train.parquet
IMG = '<img src="data:image/png;base64,'


def _write_json(obj, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, sort_keys=True))


def _fake_train(n_rows: int, rng: np.random.Generator) -> pd.DataFrame:
    n_users = max(n_rows // 25, 5)
    ts = rng.integers(1477958400, 1480550400, n_rows)  # November 2016
    ts[:N_BROKEN] = [1, 8, 79, 865, 316000000, 316000500, 1200000000][:N_BROKEN]
    flow = (rng.random(n_rows) < 0.3).astype("int8")
    genre = rng.choice([0, 7, 10, 25, 27, 50, 76, 81, 95, 113, 2744], n_rows, p=[0.4] + [0.06] * 10)
    logit = 0.8 - 0.9 * flow + 0.1 * (genre % 3) + rng.normal(0, 1, n_rows)
    return pd.DataFrame(
        {
            "genre_id": genre.astype("int32"),
            "ts_listen": ts.astype("int32"),
            "media_id": rng.integers(0, n_rows // 3 + 1, n_rows).astype("int32"),
            "album_id": rng.integers(0, 500, n_rows).astype("int32"),
            "context_type": rng.choice([0, 1, 5, 20, 23], n_rows).astype("int16"),
            "release_date": rng.choice([19000101, 20161020, 20150301, 20001212, 30000101, 20161231], n_rows).astype(
                "int32"
            ),
            "platform_name": rng.integers(0, 3, n_rows).astype("int8"),
            "platform_family": rng.integers(0, 3, n_rows).astype("int8"),
            "media_duration": rng.choice([0, 95, 150, 222, 260, 330, 600], n_rows).astype("int32"),
            "listen_type": flow,
            "user_gender": rng.integers(0, 2, n_rows).astype("int8"),
            "user_id": rng.integers(0, n_users, n_rows).astype("int32"),
            "artist_id": rng.integers(0, 300, n_rows).astype("int32"),
            "user_age": rng.integers(18, 31, n_rows).astype("int16"),
            "is_listened": (logit > 0).astype("int8"),
        }
    )


def make_fake_artifacts(root: Path, *, demo: bool = False, n_rows: int = 3000, seed: int = 0) -> dict[str, Path]:
    """A complete, small artifact set under ``root``; returns the roots report.build_report takes."""
    rng = np.random.default_rng(seed)
    runs, models_dir, reports_dir, interim = (
        root / "runs",
        root / "models" / "artifacts",
        root / "reports",
        root / "data" / "interim",
    )
    features = [f"{g}_f{i}" for g in GROUPS for i in range(8)]
    selected = sorted(set(features[::2] + features[1:6]), key=features.index)
    dropped = [f for f in features if f not in selected]

    n_valid = 400
    y = (rng.random(n_valid) < 0.45).astype("int8")
    for k, run_id in enumerate(RUN_IDS):
        run = runs / run_id
        preds = {
            m: np.clip(0.45 + (0.25 - 0.05 * i) * (y - 0.45) + rng.normal(0, 0.2, n_valid), 0, 1)
            for i, m in enumerate(MODELS)
        }
        vp = pd.DataFrame({"example_id": np.arange(n_valid), "user_id": np.arange(n_valid), "y": y, **preds})
        run.mkdir(parents=True, exist_ok=True)
        vp.to_parquet(run / "val_predictions.parquet", index=False)
        ranking = []
        for i, m in enumerate(MODELS):
            auc = 0.70 - 0.03 * i + 0.002 * k
            ranking.append(
                {
                    "model": m,
                    "auc": auc,
                    "auc_lo": auc - 0.02,
                    "auc_hi": auc + 0.02,
                    "log_loss": 0.62 + 0.01 * i,
                    "brier": 0.21 + 0.01 * i,
                    "accuracy": 0.66 - 0.01 * i,
                    "fit_seconds": [12.0, 1.5, 30.0, 0.1][i],
                    "predict_seconds": [0.2, 0.01, 0.5, 0.01][i],
                    "rows_used": [90000, 90000, 50000, 90000][i],
                    "row_budget": [None, None, 50000, None][i],
                    "n_features": len(selected),
                    "note": "score from decision_function" if m == "logistic_regression" else "",
                }
            )
        timings = {"select": 20.5, "tune": 300.0, "bakeoff": 80.2, "refit": 25.0, "total": 425.7}
        _write_json(
            {
                "validation_auc": ranking[0]["auc"],
                "winner": "lightgbm",
                "ranking": ranking,
                "diagnostics": {
                    "segments": [
                        {"segment": "history length", "level": lv, "rows": 200, "listen_rate": 0.5, "auc": 0.7}
                        for lv in ("< 100 plays", ">= 100 plays")
                    ],
                    "paired": [
                        {"model": m, "delta_auc": -0.01 * i, "lo": -0.01 * i - 0.01, "hi": -0.01 * i + 0.01}
                        for i, m in enumerate(MODELS)
                    ],
                },
                "selection_effect": {
                    "model": "lightgbm",
                    "auc_selected": ranking[0]["auc"],
                    "auc_all_features": ranking[0]["auc"] - 0.001,
                },
                "optuna": {
                    "study_name": "lightgbm",
                    "n_trials_total": 20 * (k + 1),
                    "n_trials_this_run": 20,
                    "best_value": 0.70,
                    "best_params": {"num_leaves": 31},
                },
                "timings": timings,
                "n_train": 90000,
                "n_valid": n_valid,
                "valid_positive_rate": float(y.mean()),
            },
            run / "metrics.json",
        )
        _write_json(
            {
                "run_id": run_id,
                "seed": 42,
                "feature_params": {"ROUNDS": 5},
                "model_params": {"n_trials": 20},
                "data_fingerprint": "ab" * 32,
                "demo": demo,
                "versions": {"python": "3.11.9", "numpy": "2.4.6", "pandas": "3.1.1"},
                "selection": {"n_all": len(features), "n_selected": len(selected)},
            },
            run / "params.json",
        )
        _write_json(timings, run / "timings.json")
        n_trials = 20 * (k + 1)
        pd.DataFrame(
            {
                "number": np.arange(n_trials),
                "value": 0.65 + 0.05 * rng.random(n_trials),
                "state": ["COMPLETE"] * (n_trials - 2) + ["PRUNED", "FAIL"],
                "datetime_start": "2016-12-01 12:00:00",
                "duration_seconds": 10.0,
                "run_id": [RUN_IDS[min(i // 20, k)] for i in range(n_trials)],
                "params_num_leaves": rng.integers(8, 128, n_trials),
            }
        ).to_csv(run / "optuna_trials.csv", index=False)
        pd.DataFrame(
            {
                "feature": selected,
                "group": [f.split("_f")[0] for f in selected],
                "gain": rng.random(len(selected)) * 100,
            }
        ).to_csv(run / "winner_importance.csv", index=False)

    rf = pd.DataFrame(
        {
            "feature": features,
            "group": [f.split("_f")[0] for f in features],
            "impurity": rng.random(len(features)) / 10,
            "permutation_mean": rng.normal(0.005, 0.004, len(features)),
            "permutation_std": rng.random(len(features)) / 500,
            "selected": [f in selected for f in features],
        }
    ).sort_values("impurity", ascending=False)
    models_dir.mkdir(parents=True, exist_ok=True)
    rf.to_parquet(models_dir / "rf_importances.parquet", index=False)
    _write_json(
        {
            "rule": "permutation importance > 0",
            "threshold": 0.0,
            "selected": selected,
            "dropped": dropped,
            "n_all": len(features),
            "n_selected": len(selected),
            "rf_params": {"n_estimators": 200},
            "rows_used": 50000,
        },
        models_dir / "selection.json",
    )
    _write_json({"model": "lightgbm", "run_id": RUN_IDS[-1], "validation_auc": 0.702}, models_dir / "winner.json")
    _write_json(
        {
            "full_auc": 0.70,
            "model": "lightgbm (fixed params)",
            "rows": [
                {"group": g, "n_features": 8, "auc_without": 0.70 - d, "delta": d}
                for g, d in zip(GROUPS, [0.01, -0.002, 0.05, 0.004, 0.02], strict=True)
            ],
        },
        reports_dir / "ablation.json",
    )
    train = _fake_train(n_rows, rng)
    interim.mkdir(parents=True, exist_ok=True)
    train.to_parquet(interim / "train.parquet", index=False)
    _write_json(
        {
            "train": {
                "rows": n_rows,
                "users": int(train["user_id"].nunique()),
                "is_listened_1": int(train["is_listened"].sum()),
                "is_listened_0": int((train["is_listened"] == 0).sum()),
                "is_listened_mean": float(train["is_listened"].mean()),
                "flow_share": float(train["listen_type"].mean()),
            },
            "test": {
                "rows": 100,
                "users": 100,
                "flow_share": 0.99,
                "users_unseen_in_train": 0,
                "media_unseen_in_train_rows": 12,
            },
            "quirks": {
                "broken_clock": {
                    "description": "ts_listen before 2010",
                    "handling": "kept; no hour",
                    "train_rows": N_BROKEN,
                    "train_share": N_BROKEN / n_rows,
                    "test_rows": 0,
                    "test_share": 0.0,
                },
                "genre_id_0": {
                    "description": "genre unknown",
                    "handling": "own genre",
                    "train_rows": 1200,
                    "train_share": 0.4,
                    "test_rows": 40,
                    "test_share": 0.4,
                },
            },
            "demo": demo,
        },
        interim / "data_summary.json",
    )
    users = {}
    for k, (label, plays) in enumerate([("heavy", 900), ("median", 300), ("light", 40)]):
        users[label] = {
            "user_id": 10 + k,
            "plays": plays,
            "recent": [
                {
                    "media_id": 500 + j,
                    "artist_id": 70 + j,
                    "genre_id": 3,
                    "listen_type": j % 2,
                    "is_listened": 1 - j % 2,
                }
                for j in range(5)
            ],
            "top": [
                {
                    "media_id": 900 + j,
                    "p_listen": 0.9 - 0.01 * j,
                    "artist_id": 80 + j,
                    "genre_id": 4,
                    "source": "popular",
                    "why": f"reason {j}",
                }
                for j in range(10)
            ],  # fmt: skip
        }
    _write_json({"users": users}, reports_dir / "recommendations.json")
    _write_json(
        {
            "users": 400,
            "pool_size_mean": 812.0,
            "model": {"hit_at_10": 0.21, "ndcg_at_10": 0.12},
            "popularity": {"hit_at_10": 0.15, "ndcg_at_10": 0.08},
            "listened_only": {"model": {"hit_at_10": 0.25}, "popularity": {"hit_at_10": 0.16}},
        },
        reports_dir / "recommend_eval.json",
    )
    return {"runs_dir": runs, "models_dir": models_dir, "reports_dir": reports_dir, "interim_dir": interim}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """One full report over the fake set, shared by the read-only checks below."""
    root = tmp_path_factory.mktemp("report")
    roots = make_fake_artifacts(root)
    page = report.render_report(report.load_artifacts(**roots), seed=0, generated="T")
    out = root / "out" / "model_ranking.html"
    write_text(page, out)
    return roots, out, page


@pytest.fixture
def no_plots(monkeypatch):
    """Skip drawing for tests about text only (each plot costs a fraction of a second)."""
    monkeypatch.setattr(plots, "img", lambda fig, alt, caption: f"<figure>{alt}</figure>")


def _ranking_table(page: str) -> str:
    start = page.index('<table id="T_ranking"')
    return page[start : page.index("</table>", start)]


def test_report_is_written_with_every_section(built):
    _, out, page = built
    assert out.is_file()
    assert page.startswith("<!DOCTYPE html>")
    for sid in (
        "ranking",
        "curves",
        "calibration",
        "tuning",
        "selection",
        "winner-importance",
        "ablation",
        "data",
        "exploration",
        "metadata",
        "runs",
        "segments",
        "paired",
        "recommendations",
    ):
        assert f'<section id="{sid}">' in page
        assert f'href="#{sid}"' in page  # table of contents
    assert "could not be drawn" not in page
    assert "not available" not in page


def test_recommendations_show_each_sample_user_and_the_evaluation(built, no_plots):
    page = built[2]
    section = page[page.index('<section id="recommendations">') :]
    section = section[: section.index("</section>")]
    for label, uid in (("heavy listener", 10), ("median listener", 11), ("light listener", 12)):
        assert f"User {uid}: a {label}" in section
    assert section.count("reason 9") == 3  # every user's tenth track
    assert "0.210" in section and "0.150" in section  # hit rate @10: the winner, then popularity


def test_ranking_table_lists_every_model_best_highlighted(built):
    table = _ranking_table(built[2])
    for m in MODELS:
        assert f">{m}</td>" in table
    assert "0.7020 [0.682–0.722]" in table  # the winner's AUC with its interval (newest run: 0.70 + 0.002)
    assert "background-color: #d7f0dd" in built[2]
    assert "all" in table  # row budget null -> "all"


def test_report_embeds_at_least_six_valid_pngs(built):
    page = built[2]
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) >= 6
    for data in images:
        assert base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_loads_nothing_from_the_network(built):
    page = built[2]
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", page, flags=re.IGNORECASE)
    assert "http://" not in page and "https://" not in page
    assert "<link" not in page and "@import" not in page


def test_report_reports_the_newest_run_and_the_run_history(built):
    page = built[2]
    assert f"<code>{RUN_IDS[-1]}</code>" in page
    runs = page[page.index('<table id="T_runs"') :]
    assert runs.index(RUN_IDS[-1]) < runs.index(RUN_IDS[0])  # newest first
    assert f"{N_BROKEN:,} plays with broken-clock timestamps" in page


@pytest.mark.parametrize(
    ("summary_demo", "params_demo", "banner"),
    [(False, False, False), (True, False, True), (False, True, True)],
)
def test_demo_banner_only_on_demo_data(tmp_path, no_plots, summary_demo, params_demo, banner):
    roots = make_fake_artifacts(tmp_path, n_rows=300)
    summary_path = roots["interim_dir"] / "data_summary.json"
    summary = json.loads(summary_path.read_text())
    summary["demo"] = summary_demo
    _write_json(summary, summary_path)
    params_path = roots["runs_dir"] / RUN_IDS[-1] / "params.json"
    params = json.loads(params_path.read_text())
    params["demo"] = params_demo
    _write_json(params, params_path)
    art = report.load_artifacts(**roots)
    page = report.render_report(art, seed=0)
    assert ('id="demo-banner"' in page) is banner
    assert ("DEMO DATA" in page) is banner


def test_missing_optional_files_degrade_to_notes(tmp_path):
    roots = make_fake_artifacts(tmp_path, n_rows=300)
    run = roots["runs_dir"] / RUN_IDS[-1]
    for path in [
        run / "val_predictions.parquet",
        run / "optuna_trials.csv",
        run / "winner_importance.csv",
        run / "timings.json",
        run / "params.json",
        roots["models_dir"] / "selection.json",
        roots["models_dir"] / "rf_importances.parquet",
        roots["models_dir"] / "winner.json",
        roots["reports_dir"] / "ablation.json",
        roots["interim_dir"] / "data_summary.json",
        roots["interim_dir"] / "train.parquet",
    ]:
        path.unlink()
    out = report.build_report(out=tmp_path / "r.html", seed=0, **roots)
    page = out.read_text()
    assert "could not be drawn" not in page
    assert "reports/ablation.json) not available: run make ablation." in page
    assert "rf_importances.parquet) not available: run make select." in page
    assert "val_predictions.parquet) not available: run make train." in page
    assert "data/interim/train.parquet not available: run make data." in page
    for m in MODELS:  # the ranking itself comes from metrics.json
        assert f">{m}</td>" in _ranking_table(page)


def test_corrupt_optional_file_is_listed_not_fatal(tmp_path, no_plots):
    roots = make_fake_artifacts(tmp_path, n_rows=300)
    (roots["reports_dir"] / "ablation.json").write_text("{not json")
    (roots["interim_dir"] / "train.parquet").write_bytes(b"not parquet")
    page = report.render_report(report.load_artifacts(**roots), seed=0)
    problems = page[page.index("could not be read") : page.index("</ul>")]
    assert "reports/ablation.json" in problems and "interim/train.parquet" in problems
    assert "not available: run make ablation" in page
    assert "could not be drawn" not in page


def test_no_run_is_a_user_error(tmp_path):
    roots = make_fake_artifacts(tmp_path, n_rows=300)
    for run_id in RUN_IDS:
        (roots["runs_dir"] / run_id / "metrics.json").unlink()
    with pytest.raises(PipelineError, match="run `make train` first"):
        report.build_report(out=tmp_path / "r.html", **roots)
    assert not (tmp_path / "r.html").exists()


def test_render_is_deterministic_apart_from_the_timestamp(built):
    roots, _, page = built
    assert report.render_report(report.load_artifacts(**roots), seed=0, generated="T") == page


def test_cli_takes_the_roots_as_arguments(tmp_path, no_plots):
    roots = make_fake_artifacts(tmp_path, n_rows=300)
    out = tmp_path / "cli" / "report.html"
    argv = ["--out", str(out), "--run-id", RUN_IDS[0], "--seed", "1"]
    for key, path in roots.items():
        argv += ["--" + key.replace("_", "-"), str(path)]
    report.main(argv)
    page = out.read_text()
    assert f"<code>{RUN_IDS[0]}</code>" in page
    assert not list(out.parent.glob(".tmp-*"))  # written atomically, nothing left behind


def test_large_train_is_sampled_by_user(tmp_path, monkeypatch):
    roots = make_fake_artifacts(tmp_path, n_rows=2000)
    monkeypatch.setattr(explore, "EXPLORE_MAX_ROWS", 500)
    df = explore.load_explore(roots["interim_dir"] / "train.parquet", seed=3)
    assert df.attrs["sampled"] and 0 < len(df) < 2000
    full = pd.read_parquet(roots["interim_dir"] / "train.parquet")
    kept = full[full["user_id"].isin(df["user_id"].unique())]
    assert len(kept) == len(df)  # whole users, never parts of them
    again = explore.load_explore(roots["interim_dir"] / "train.parquet", seed=3)
    assert np.array_equal(df["user_id"].to_numpy(), again["user_id"].to_numpy())


def test_prior_plays_counts_earlier_plays_of_the_same_user_and_track(tmp_path):
    df = pd.DataFrame(
        {
            "user_id": np.array([1, 1, 2, 1, 1, 2], dtype="int32"),
            "media_id": np.array([9, 9, 9, 8, 9, 9], dtype="int32"),
            "ts_listen": np.array([300, 100, 200, 50, 400, 100], dtype="int32"),
            "is_listened": np.array([1, 0, 1, 1, 0, 1], dtype="int8"),
        }
    )
    df.to_parquet(tmp_path / "t.parquet", index=False)
    out = explore.load_explore(tmp_path / "t.parquet", seed=0)
    # user 1 / track 9 at ts 100, 300, 400 -> 0, 1, 2 earlier plays; user 2 / track 9 at ts 100, 200 -> 0, 1;
    # user 1 / track 8 once -> 0.
    assert out["prior_plays"].tolist() == [1, 0, 1, 0, 2, 0]


def test_page_template_renders_the_title_and_the_sections_in_order():
    assert (TEMPLATES / "page.html.j2").is_file()
    page = render_page(
        title="run <1>",
        header="<h1>H</h1>",
        sections=[Section("a", "First", "<p>one</p>"), Section("b", "Second", "<p>two</p>")],
    )
    assert page.startswith("<!DOCTYPE html>\n") and page.endswith("</html>\n")
    assert "<title>run &lt;1&gt;</title>" in page  # plain text is escaped, section bodies are not
    assert '<ol><li><a href="#a">First</a></li><li><a href="#b">Second</a></li></ol>' in page
    assert (
        '<main>\n<section id="a">\n<h2>First</h2>\n<p>one</p>\n</section>\n'
        '<section id="b">\n<h2>Second</h2>\n<p>two</p>\n</section>\n</main>'
    ) in page
    assert "could not be read" not in page  # no problems box without problems
