"""tools/: the independent data generator loads through the contract; the baseline encodes by hand."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.data.contract import read_test, read_train

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import baseline  # noqa: E402


def test_altgen_writes_a_dsg17_pair_the_contract_accepts(tmp_path) -> None:
    out = tmp_path / "alt"
    subprocess.run(
        [sys.executable, str(ROOT / "tools" / "altgen.py"), "--users", "40", "--seed", "3", "--out", str(out)],
        check=True,
        capture_output=True,
    )
    train, test = read_train(out / "raw" / "train.csv"), read_test(out / "raw" / "test.csv")
    answers = pd.read_csv(out / "demo" / "answers.csv")
    assert len(test) == 40 and sorted(test["user_id"]) == list(range(40))
    assert sorted(answers["sample_id"]) == sorted(test["sample_id"]) and set(answers["is_listened"]) <= {0, 1}
    assert (test["listen_type"] == 1).all()
    last = train.groupby("user_id")["ts_listen"].max()
    assert (test.set_index("user_id")["ts_listen"] > last.reindex(test["user_id"]).to_numpy()).all()


def test_altgen_components_sum_to_the_true_logit_and_change_no_other_file(tmp_path) -> None:
    def run(out: Path, *more: str) -> None:
        cmd = [sys.executable, str(ROOT / "tools" / "altgen.py"), "--users", "40", "--seed", "3", "--out", str(out)]
        subprocess.run([*cmd, *more], check=True, capture_output=True)

    run(tmp_path / "plain")
    run(tmp_path / "terms", "--components")
    for f in ("raw/train.csv", "raw/test.csv", "demo/answers.csv", "demo/p_true.csv"):
        assert (tmp_path / "plain" / f).read_bytes() == (tmp_path / "terms" / f).read_bytes(), f
    assert not (tmp_path / "plain" / "demo" / "logit_terms.csv").exists()
    terms = pd.read_csv(tmp_path / "terms" / "demo" / "logit_terms.csv")
    p = pd.read_csv(tmp_path / "terms" / "demo" / "p_true.csv")
    assert terms["sample_id"].tolist() == p["sample_id"].tolist() == list(range(40))
    assert {"user", "user_flow", "user_track_affinity", "user_genre", "mood"} <= set(terms.columns)
    logit = np.log(p["p_true"] / (1 - p["p_true"]))
    # p_true is written to 6 decimals and the terms too: they agree to that rounding, not exactly.
    np.testing.assert_allclose(terms.drop(columns="sample_id").sum(axis=1), logit, atol=2e-3)


def test_altgen_taste_weight_scales_the_affinity_term_and_nothing_drawn_before_the_labels() -> None:
    import altgen

    def terms(**kw):
        *_, extra = altgen.generate(60, 4, verbose=False, components=True, **kw)
        return extra["logit_terms"].set_index("sample_id")

    base, heavy, off = terms(), terms(taste_weight=1.0), terms(taste_weight=0.0)
    assert altgen.P["aff"] == 0.35 and base["user_track_affinity"].abs().max() > 0.1
    # Terms are kept as float32: equal to float32 rounding, not bit for bit.
    np.testing.assert_allclose(heavy["user_track_affinity"], base["user_track_affinity"] / 0.35, rtol=1e-5, atol=1e-6)
    assert (off["user_track_affinity"] == 0).all()
    for name in ("user", "user_flow", "context", "track_quality", "user_genre"):
        assert heavy[name].equals(base[name]), name


def test_altgen_picks_by_clusters_changes_which_tracks_are_played_not_the_sessions() -> None:
    import altgen

    by_aff = altgen.generate(300, 2, verbose=False)
    by_clus = altgen.generate(300, 2, verbose=False, picks="clusters")
    (tr_a, te_a), (tr_c, te_c) = by_aff[:2], by_clus[:2]
    # The candidates are drawn in both worlds: users, kinds of play, contexts and platforms are the
    # same rows (times are not: a play lasts as long as its track and its label say).
    for col in ("user_id", "listen_type", "context_type", "platform_name"):
        assert np.array_equal(tr_a[col], tr_c[col]) and np.array_equal(te_a[col], te_c[col]), col
    # Only the pick among them differs: some plays, not all (library best-of-three, Flow better-of-two).
    same = np.mean(tr_a["media_id"] == tr_c["media_id"])
    assert 0.2 < same < 0.9
    with pytest.raises(ValueError, match="picks must be one of"):
        altgen.generate(10, 1, verbose=False, picks="taste")
    with pytest.raises(ValueError, match="taste_weight must be a finite number >= 0"):
        altgen.generate(10, 1, verbose=False, taste_weight=-0.1)


def test_altgen_picks_popular_plays_say_nothing_of_taste() -> None:
    import altgen

    def spread(picks):
        """The users' mean distance (total variation) from the average genre mix of their plays."""
        train, test, *_ = altgen.generate(300, 2, verbose=False, picks=picks)
        df = pd.DataFrame({"user": train["user_id"], "genre": train["genre_id"]})
        n = df.groupby("user").size()
        df = df[df["user"].isin(n[n >= 100].index)]
        mix = df.groupby(["user", "genre"]).size().unstack(fill_value=0)
        mix = mix.div(mix.sum(axis=1), axis=0)
        return float(0.5 * (mix - mix.mean()).abs().sum(axis=1).mean()), train, test

    clus, tr_c, te_c = spread("clusters")
    pop, tr_p, te_p = spread("popular")
    # The same draws, another table: the sessions are the same rows, the plays are not the user's taste.
    for col in ("user_id", "listen_type", "context_type", "platform_name"):
        assert np.array_equal(tr_c[col], tr_p[col]) and np.array_equal(te_c[col], te_p[col]), col
    # Taste picks: users' genre mixes differ a lot (0.30 at this seed); popular picks: sampling noise (0.12).
    assert clus > 0.2 and pop < 0.5 * clus


@pytest.mark.parametrize("value", ["-0.5", "nan", "heavy"])
def test_altgen_refuses_a_taste_weight_that_is_not_a_finite_number_above_zero(tmp_path, value) -> None:
    cmd = [sys.executable, str(ROOT / "tools" / "altgen.py"), "--users", "10", "--out", str(tmp_path / "x")]
    r = subprocess.run([*cmd, "--taste-weight", value], capture_output=True, text=True)
    assert r.returncode == 2 and "--taste-weight: expected a finite number >= 0" in r.stderr
    assert not (tmp_path / "x").exists()


def test_logit_terms_reads_each_terms_share_of_the_submissions_log_odds(tmp_path) -> None:
    import logit_terms

    rng = np.random.default_rng(0)
    n = 200
    terms = pd.DataFrame({"sample_id": np.arange(n)[::-1]})
    for name in ("user", "user_flow", "user_track_affinity", "user_genre", "mood"):
        terms[name] = rng.normal(0, 1, n)
    terms["session_start"] = 0.15
    # A submission that follows the user twice as strongly as the affinity and ignores genre and mood.
    z = 0.8 * (terms["user"] + terms["user_flow"]) + 0.4 * terms["user_track_affinity"] - 0.3
    sub = pd.DataFrame({"sample_id": terms["sample_id"], "is_listened": 1 / (1 + np.exp(-z))}).sample(
        frac=1, random_state=1
    )
    got = logit_terms.follow(sub, terms)
    assert got.index.tolist() == ["user", "user_track_affinity", "user_genre", "mood"]
    np.testing.assert_allclose(got.to_numpy(), [1.0, 0.5, 0.0, 0.0], atol=1e-6)
    with pytest.raises(ValueError, match="has 199 of the 200 test rows"):
        logit_terms.follow(sub.iloc[1:], terms)
    sub.iloc[1:].to_csv(tmp_path / "short.csv", index=False)
    terms.to_csv(tmp_path / "terms.csv", index=False)
    assert logit_terms.main([str(tmp_path / "short.csv"), str(tmp_path / "terms.csv")]) == 2


def test_logit_terms_worth_separates_a_term_the_features_carry_from_one_they_do_not(tmp_path, capsys) -> None:
    import logit_terms
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(3)
    n = 4000
    terms = pd.DataFrame({"sample_id": np.arange(n)})
    terms["user"] = rng.normal(0, 1.5, n)
    terms["user_flow"] = rng.normal(0, 0.5, n)
    terms["user_track_affinity"] = rng.normal(0, 1.0, n)  # nothing in the features says it
    terms["session_start"] = 0.15
    true = terms.drop(columns="sample_id").sum(axis=1).to_numpy()
    y = (rng.random(n) < 1 / (1 + np.exp(-true))).astype(int)
    # The features carry the user's propensity exactly (and one column of noise).
    x = pd.DataFrame({"user_rate": terms["user"] + terms["user_flow"], "noise": rng.normal(size=n)})
    got = logit_terms.worth(terms, x, y).set_index("term")
    assert got.index.tolist() == ["user", "user_track_affinity", "oracle", "all estimated"]
    assert got.loc["oracle", "auc_estimated"] == pytest.approx(roc_auc_score(y, true))
    # The user term: estimated almost exactly, so the AUC hardly moves; dropping it costs a lot.
    assert got.loc["user", "r2"] > 0.95
    assert got.loc["oracle", "auc_estimated"] - got.loc["user", "auc_estimated"] < 0.005
    assert got.loc["user", "auc_dropped"] < got.loc["oracle", "auc_estimated"] - 0.15
    # The affinity: not in the features, so its estimate is worth about as much as dropping it.
    assert got.loc["user_track_affinity", "r2"] < 0.05
    assert got.loc["user_track_affinity", "auc_estimated"] < got.loc["oracle", "auc_estimated"] - 0.02
    assert abs(got.loc["user_track_affinity", "auc_estimated"] - got.loc["user_track_affinity", "auc_dropped"]) < 0.01
    # All estimated: about the user term alone.
    assert abs(got.loc["all estimated", "auc_estimated"] - roc_auc_score(y, x["user_rate"])) < 0.01

    # The command line: a project's data/processed with the test rows' features, the answers.
    processed = tmp_path / "processed"
    (processed / "features" / "test").mkdir(parents=True)
    order = rng.permutation(n)  # the examples in another order than the terms
    pd.DataFrame({"example_id": np.arange(n), "sample_id": order}).to_parquet(processed / "examples_test.parquet")
    x.iloc[order].assign(example_id=np.arange(n)).to_parquet(processed / "features" / "test" / "user.parquet")
    pd.DataFrame({"sample_id": np.arange(n), "is_listened": y}).to_csv(tmp_path / "answers.csv", index=False)
    sub = pd.DataFrame({"sample_id": np.arange(n), "is_listened": 1 / (1 + np.exp(-x["user_rate"]))})
    sub.to_csv(tmp_path / "sub.csv", index=False)
    terms.to_csv(tmp_path / "terms.csv", index=False)
    args = [str(tmp_path / "sub.csv"), str(tmp_path / "terms.csv")]
    assert logit_terms.main(args + ["--features", str(processed), "--answers", str(tmp_path / "answers.csv")]) == 0
    out = capsys.readouterr().out
    # The worth table's row (five columns; the "followed" table above has three).
    row = next(r.split() for r in out.splitlines() if r.startswith("user_track_affinity") and len(r.split()) == 5)
    assert float(row[2]) == pytest.approx(got.loc["user_track_affinity", "r2"], abs=5e-4)
    assert logit_terms.main(args + ["--features", str(processed)]) == 2
    assert "--features and --answers go together" in capsys.readouterr().err
    pd.DataFrame({"sample_id": np.arange(n - 1), "is_listened": y[:-1]}).to_csv(tmp_path / "short.csv", index=False)
    assert logit_terms.main(args + ["--features", str(processed), "--answers", str(tmp_path / "short.csv")]) == 2
    assert "has no answer for 1 sample_id" in capsys.readouterr().err
    # A group file whose rows are not the examples' (a stale build) is an error, not a misaligned table.
    x.assign(example_id=np.arange(n)[::-1]).to_parquet(processed / "features" / "test" / "user.parquet")
    assert logit_terms.main(args + ["--features", str(processed), "--answers", str(tmp_path / "answers.csv")]) == 2
    assert "feature file " + str(processed / "features" / "test" / "user.parquet") + " does not match" in (
        capsys.readouterr().err
    )


def test_baseline_encoding_is_the_smoothed_rate_of_the_fit_rows() -> None:
    fit = pd.DataFrame(
        {c: np.zeros(4, dtype=np.int32) for c in {k for key in baseline.KEYS for k in key}}
        | {"user_id": [1, 1, 2, 2], "is_listened": [1, 1, 0, 1]}
    )
    apply = fit.iloc[[0, 2]].assign(user_id=[1, 3]).reset_index(drop=True)
    enc = baseline.encode(fit, apply)
    a, prior = baseline.PRIOR_STRENGTH, 0.75
    assert enc["te_user_id"].tolist() == pytest.approx([(2 + a * prior) / (2 + a), prior])
    assert enc["n_user_id"].tolist() == [2, 0]
    # every fit row shares media 0: all four rows, rate 3/4
    assert enc["te_media_id"].tolist() == pytest.approx([(3 + a * prior) / (4 + a)] * 2)


def test_baseline_validation_fits_only_on_rows_before_each_users_round_1(monkeypatch) -> None:
    train = pd.DataFrame(
        {
            "user_id": [0, 0, 0, 1, 1],
            "ts_listen": [10, 20, 30, 5, 50],
            "is_listened": [1, 0, 1, 0, 1],
        }
    )
    examples = pd.DataFrame({"row_id": [1, 4], "round": [1, 1], "user_id": [0, 1], "ts_listen": [20, 50]})
    seen = {}

    def fake_fit_predict(history, target, *, seed, fit_rows, n_jobs=2):
        seen["history"], seen["target"] = history, target
        return np.array([0.2, 0.9])

    monkeypatch.setattr(baseline, "fit_predict", fake_fit_predict)
    auc = baseline.validation_auc(train, examples, seed=0, fit_rows=None)
    assert seen["history"]["ts_listen"].tolist() == [10, 5]  # user 0 before 20, user 1 before 50
    assert seen["target"]["ts_listen"].tolist() == [20, 50]
    assert auc == 1.0


def test_baseline_never_scores_against_the_demo_answers_of_other_data(monkeypatch, tmp_path) -> None:
    from core import config

    monkeypatch.setattr(config, "is_demo_data", lambda *a, **k: False)  # e.g. altgen files copied into data/raw
    assert baseline._answers_path(None) is None
    assert baseline._answers_path(str(tmp_path / "a.csv")) == tmp_path / "a.csv"


def test_baseline_prints_the_margin_with_its_paired_interval_and_saves_its_predictions(
    monkeypatch, tmp_path, capsys
) -> None:
    from sklearn.metrics import roc_auc_score

    from core import config

    rng = np.random.default_rng(0)
    n = 400
    ids = np.arange(n, dtype=np.int64) + 100
    y = (rng.random(n) < 0.5).astype(int)
    ours = np.clip(0.5 + 0.3 * (y - 0.5) + rng.normal(0, 0.2, n), 0, 1)
    theirs = np.clip(0.5 + 0.05 * (y - 0.5) + rng.normal(0, 0.2, n), 0, 1)
    data = tmp_path / "data"
    (data / "interim").mkdir(parents=True)
    for name, value in {
        "ROOT": tmp_path,
        "DATA": data,
        "TRAIN_PARQUET": data / "interim/train.parquet",
        "TEST_PARQUET": data / "interim/test.parquet",
        "REPORTS": tmp_path / "reports",
        "SUBMISSIONS": tmp_path / "submissions",
    }.items():
        monkeypatch.setattr(config, name, value)
    pd.DataFrame({"user_id": [1]}).to_parquet(config.TRAIN_PARQUET)
    pd.DataFrame({"sample_id": ids}).to_parquet(config.TEST_PARQUET)
    config.SUBMISSIONS.mkdir()
    pd.DataFrame({"sample_id": ids[::-1], "is_listened": ours[::-1]}).to_csv(
        config.SUBMISSIONS / "latest.csv", index=False
    )
    pd.DataFrame({"sample_id": ids, "is_listened": y}).to_csv(tmp_path / "answers.csv", index=False)
    monkeypatch.setattr(baseline, "fit_predict", lambda train, test, **kw: theirs)
    monkeypatch.setattr(sys, "argv", ["baseline", "--no-validation", "--answers", str(tmp_path / "answers.csv")])
    baseline.main()
    out = capsys.readouterr().out
    margin = roc_auc_score(y, ours) - roc_auc_score(y, theirs)
    line = next(ln for ln in out.splitlines() if "margin over the baseline" in ln)
    assert f"{margin:+.4f} [" in line and "paired bootstrap 95%" in line
    lo, hi = (float(v) for v in line.split("[")[1].split("]")[0].split(","))
    assert 0 < lo < margin < hi  # clearly better on these rows, and the interval brackets the gap
    saved = pd.read_csv(config.REPORTS / "baseline_test_predictions.csv")
    assert saved["sample_id"].tolist() == ids.tolist()
    assert np.allclose(saved["is_listened"].to_numpy(), theirs, atol=1e-6)
