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
