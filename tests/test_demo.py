"""The demo generator: DSG17 layout, determinism, a test set built like the real one, realistic rates."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core import config
from core.errors import PipelineError, run_cli
from core.schema import SAMPLE_ID, TARGET, TEST_COLUMNS, TRAIN_COLUMNS
from pipeline.data import demo
from pipeline.data.demo.__main__ import main
from pipeline.data.demo.arrays import _ar1, _day_to_yyyymmdd
from pipeline.data.demo.summary import _auc

TINY = 60  # users: a fraction of a second
MODERATE = 300  # users: ~110k train rows, enough for rates and quirks
NOV1_2016 = int(pd.Timestamp("2016-11-01", tz="UTC").timestamp())
DEC2_2016 = int(pd.Timestamp("2016-12-02", tz="UTC").timestamp())


@pytest.fixture(scope="module")
def tiny() -> demo.DemoData:
    return demo.generate(TINY, seed=7)


@pytest.fixture(scope="module")
def moderate() -> demo.DemoData:
    return demo.generate(MODERATE, seed=3)


@pytest.fixture(scope="module")
def written(tiny: demo.DemoData, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    demo.write_demo(tiny, out / "raw", out / "demo" / "answers.csv")
    return out


def _write(tmp: Path, users: int, seed: int) -> dict[str, bytes]:
    data = demo.generate(users, seed=seed)
    demo.write_demo(data, tmp / "raw", tmp / "answers.csv")
    paths = [tmp / "raw" / "train.csv", tmp / "raw" / "test.csv", tmp / "raw" / ".demo", tmp / "answers.csv"]
    return {p.name: p.read_bytes() for p in paths}


# --------------------------------------------------------------------------- layout


def test_frames_have_schema_columns_order_and_dtypes(tiny: demo.DemoData) -> None:
    assert list(tiny.train.columns) == list(TRAIN_COLUMNS)
    assert list(tiny.test.columns) == list(TEST_COLUMNS)
    assert tiny.train.dtypes.to_dict() == TRAIN_COLUMNS
    assert tiny.test.dtypes.to_dict() == TEST_COLUMNS
    assert list(tiny.answers.columns) == [SAMPLE_ID, "p_true", TARGET]


def test_files_are_plain_integer_csv(written: Path, tiny: demo.DemoData) -> None:
    for name, columns, frame in (("train.csv", TRAIN_COLUMNS, tiny.train), ("test.csv", TEST_COLUMNS, tiny.test)):
        raw = (written / "raw" / name).read_bytes()
        assert raw.startswith((",".join(columns) + "\n").encode())
        assert raw.endswith(b"\n") and b"\r" not in raw and b'"' not in raw and b"." not in raw
        assert raw.count(b"\n") == len(frame) + 1
        back = pd.read_csv(written / "raw" / name, dtype="int64")
        pd.testing.assert_frame_equal(back, frame.astype("int64"))


def test_every_value_fits_the_narrow_dtypes(moderate: demo.DemoData) -> None:
    for frame, columns in ((moderate.train, TRAIN_COLUMNS), (moderate.test, TEST_COLUMNS)):
        for name, dtype in columns.items():
            col = frame[name].to_numpy()
            assert col.dtype == dtype
            assert col.min() >= 0, name  # every DSG17 value is a non-negative integer
    for name in ("listen_type", TARGET):
        assert set(np.unique(moderate.train[name])) <= {0, 1}


def test_real_data_contract_accepts_the_files(written: Path, tiny: demo.DemoData) -> None:
    if importlib.util.find_spec("pipeline.data.contract") is None:
        pytest.skip("pipeline.data.contract not there yet")
    from pipeline.data import contract

    pd.testing.assert_frame_equal(contract.read_train(written / "raw" / "train.csv"), tiny.train)
    pd.testing.assert_frame_equal(contract.read_test(written / "raw" / "test.csv"), tiny.test)


def test_marker_records_the_parameters_and_fingerprints(written: Path) -> None:
    marker = json.loads((written / "raw" / config.DEMO_MARKER.name).read_text())
    assert marker["users"] == TINY and marker["seed"] == 7 and marker["generator"] == "pipeline.data.demo"
    assert set(marker["files"]) == {"train.csv", "test.csv"}
    assert demo.demo_files_intact(written / "raw")


# --------------------------------------------------------------------------- determinism


def test_same_seed_same_bytes_other_seed_other_data(tmp_path: Path) -> None:
    a = _write(tmp_path / "a", 40, seed=5)
    b = _write(tmp_path / "b", 40, seed=5)
    c = _write(tmp_path / "c", 40, seed=6)
    assert a == b
    assert a["train.csv"] != c["train.csv"] and a["answers.csv"] != c["answers.csv"]


# --------------------------------------------------------------------------- the test set


def test_one_flow_row_per_user_in_shuffled_order(tiny: demo.DemoData) -> None:
    test = tiny.test
    assert test[SAMPLE_ID].tolist() == list(range(TINY))
    assert sorted(test["user_id"]) == list(range(TINY))
    assert not test["user_id"].is_monotonic_increasing  # like the real file
    assert (test["listen_type"] == 1).all()
    assert set(test["context_type"]) <= {1, 5, 20, 23}
    assert test["ts_listen"].between(NOV1_2016, DEC2_2016 - 1).all()


def test_test_row_opens_a_new_session_after_the_train_history(moderate: demo.DemoData) -> None:
    last = moderate.train.groupby("user_id")["ts_listen"].max()
    test = moderate.test.set_index("user_id")
    gap = test["ts_listen"] - last.reindex(test.index)
    assert (gap.dropna() > 600).all()  # more than the 10-minute session gap
    # Train covers every user but a handful (who exist only in test).
    assert gap.isna().sum() <= max(2, 0.01 * MODERATE)
    assert set(moderate.train["user_id"]) <= set(test.index)


def test_some_users_are_cold_starts(moderate: demo.DemoData) -> None:
    rows = moderate.train["user_id"].value_counts().reindex(range(MODERATE), fill_value=0)
    assert 1 <= (rows <= 5).sum() <= 0.05 * MODERATE
    assert rows.mean() > 1.5 * rows.median()  # heavy-tailed activity


def test_answers_are_aligned_with_the_test_rows(moderate: demo.DemoData) -> None:
    ans = moderate.answers
    assert ans[SAMPLE_ID].tolist() == moderate.test[SAMPLE_ID].tolist()
    assert ans["p_true"].between(0, 1, inclusive="neither").all()
    assert set(ans[TARGET]) == {0, 1}
    assert abs(ans[TARGET].mean() - ans["p_true"].mean()) < 0.08
    # Learnable but far from trivial (the real problem's honest AUC is ~0.7).
    assert 0.62 < _auc(ans[TARGET].to_numpy(), ans["p_true"].to_numpy()) < 0.9


def test_written_answers_match_test_file(written: Path) -> None:
    test = pd.read_csv(written / "raw" / "test.csv")
    ans = pd.read_csv(written / "demo" / "answers.csv")
    assert ans.columns.tolist() == [SAMPLE_ID, "p_true", TARGET]
    assert ans[SAMPLE_ID].tolist() == test[SAMPLE_ID].tolist()


# --------------------------------------------------------------------------- realism


def test_rates_look_like_the_real_train_set(moderate: demo.DemoData) -> None:
    s = demo.summarize(moderate)
    assert 0.6 <= s["listen_rate"] <= 0.75
    assert s["listen_rate_flow"] + 0.1 < s["listen_rate_non_flow"]
    assert 0.2 <= s["flow_share"] <= 0.45
    assert 0.18 <= s["per_user_rate_sd"] <= 0.32
    assert s["test_listen_rate"] < s["listen_rate"]  # the test is Flow: a lower rate than train
    assert 0.3 <= s["genre_0_share"] <= 0.65
    assert 200 <= s["media_duration_median"] <= 245


def test_quirks_are_present_in_small_shares(moderate: demo.DemoData) -> None:
    tr = moderate.train
    ts, rd, n = tr["ts_listen"], tr["release_date"], len(tr)
    assert ts.isin([1, 8, 79, 865]).any()
    assert ts.between(315_532_800, 318_211_200).any()  # January 1980
    assert ts.between(1_199_145_600, 1_451_606_399).any()  # 2008-2015
    assert (ts < NOV1_2016 - 60 * 86_400).mean() < 0.005
    assert 0 < (rd.isin([19000101, 30000101])).sum() < 0.01 * n
    assert 0 < (tr["media_duration"] == 0).sum() < 0.01 * n
    assert 0 < demo.summarize(moderate)["played_before_release_share"] < 0.02
    assert tr["context_type"].nunique() > 30


# --------------------------------------------------------------------------- safety and CLI


def test_refuses_to_write_over_the_users_own_files(tmp_path: Path, tiny: demo.DemoData) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "train.csv").write_text("mine\n")
    with pytest.raises(PipelineError, match="your own data"):
        demo.write_demo(tiny, raw, tmp_path / "answers.csv", replace_demo=True)
    assert (raw / "train.csv").read_text() == "mine\n"


def test_rebuilds_demo_files_only_when_asked(tmp_path: Path, tiny: demo.DemoData) -> None:
    raw = tmp_path / "raw"
    demo.write_demo(tiny, raw, tmp_path / "answers.csv")
    with pytest.raises(PipelineError, match="already holds demo data"):
        demo.write_demo(tiny, raw, tmp_path / "answers.csv")
    demo.write_demo(tiny, raw, tmp_path / "answers.csv", replace_demo=True)


def test_a_user_file_copied_over_the_demo_is_noticed(tmp_path: Path, tiny: demo.DemoData) -> None:
    raw = tmp_path / "raw"
    demo.write_demo(tiny, raw, tmp_path / "answers.csv")
    (raw / "test.csv").write_text("sample_id\n0\n")  # the user's own file, the marker left behind
    assert not demo.demo_files_intact(raw)
    with pytest.raises(PipelineError, match="changed since"):
        demo.write_demo(tiny, raw, tmp_path / "answers.csv", replace_demo=True)


@pytest.mark.parametrize("users", [0, -3])
def test_cli_rejects_a_bad_user_count(users: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    argv = ["demo", "--users", str(users), "--out-dir", str(tmp_path / "raw"), "--answers", str(tmp_path / "a.csv")]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as exc:
        run_cli(main)
    assert exc.value.code == 2
    assert not (tmp_path / "raw").exists()


def test_cli_writes_all_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    argv = ["demo", "--users", "20", "--out-dir", str(tmp_path / "raw"), "--answers", str(tmp_path / "a.csv")]
    monkeypatch.setattr(sys, "argv", argv)
    run_cli(main)
    assert {p.name for p in (tmp_path / "raw").iterdir()} == {"train.csv", "test.csv", ".demo"}
    assert len(pd.read_csv(tmp_path / "a.csv")) == 20


def test_latent_taste_shows_in_the_labels_only(moderate: demo.DemoData) -> None:
    from pipeline.data.demo.summary import summarize

    same = demo.generate(MODERATE, seed=3, latent_taste=0.0)
    assert same.train.equals(moderate.train) and same.answers.equals(moderate.answers)  # 0: the demo as it was
    tasty = demo.generate(MODERATE, seed=3, latent_taste=1.5)
    # The plays are the same (who, what, where); what changes is whether they were listened to
    # (and so how long they lasted: the next play's time).
    for col in ("user_id", "media_id", "artist_id", "context_type", "platform_name", "listen_type"):
        assert tasty.train[col].equals(moderate.train[col]), col
    assert tasty.test.drop(columns="ts_listen").equals(moderate.test.drop(columns="ts_listen"))
    changed = (tasty.train[TARGET] != moderate.train[TARGET]).mean()
    assert 0.05 < changed < 0.3
    # The new term is part of the truth the answers are drawn from: a better oracle (0.78 -> 0.85 at 2,000 users).
    assert summarize(tasty)["oracle_auc_test"] > summarize(moderate)["oracle_auc_test"] + 0.03
    assert tasty.params["latent_taste"] == 1.5 and "latent_taste" not in moderate.params


@pytest.mark.parametrize("value", ["-0.5", "nan"])
def test_cli_rejects_a_bad_latent_taste(value: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    argv = ["demo", "--users", "20", "--latent-taste", value, "--out-dir", str(tmp_path / "raw")]
    monkeypatch.setattr(sys, "argv", [*argv, "--answers", str(tmp_path / "a.csv")])
    with pytest.raises(SystemExit) as exc:
        run_cli(main)
    assert exc.value.code == 2
    assert not (tmp_path / "raw").exists() and not (tmp_path / "a.csv").exists()


# --------------------------------------------------------------------------- helpers


def test_ar1_restarts_at_each_group() -> None:
    e = np.array([1.0, 1.0, 1.0, 2.0, 0.0])
    first = np.array([0, 0, 0, 3, 3])  # groups: rows 0-2 and rows 3-4
    pos = np.array([0, 1, 2, 0, 1])
    np.testing.assert_allclose(_ar1(e, 0.5, first, pos), [1.0, 1.5, 1.75, 2.0, 1.0])


def test_day_to_yyyymmdd() -> None:
    days = np.array([0, NOV1_2016 // 86_400, 315_532_800 // 86_400])
    assert _day_to_yyyymmdd(days).tolist() == [19700101, 20161101, 19800101]
