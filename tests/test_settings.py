"""Settings as data: typed, bounded, read from the environment in one place, every bad value named at once."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from core.config import ROOT
from core.errors import PipelineError
from core.settings import (
    KINDS,
    FeatureSettings,
    ModelSettings,
    SelectSettings,
    TuneSettings,
    load,
    load_all,
    settings_dict,
    settings_hash,
)


def test_values_defaults_and_no_cap() -> None:
    env = {
        "EXTRA_FLOW_MAX_ROWS": "1_000",
        "SELECT_ROWS": "none",
        "SESSION_GAP_MINUTES": "2.5",
        "SELECT_RULE": "mean",
        "ROUNDS": " ",
        "ENSEMBLE_MEMBERS": "lightgbm, logistic_regression",
    }
    f = load(FeatureSettings, env)
    assert f.extra_flow_max_rows == 1000 and f.session_gap_minutes == 2.5 and f.gap_seconds == 150.0
    assert f.rounds == 5 and f.seed == 42  # blank and unset keep the defaults
    s = load(SelectSettings, env)
    assert s.select_rows is None and s.select_rule == "mean"
    assert load(ModelSettings, env).ensemble_members == ("lightgbm", "logistic_regression")


def test_malformed_values_are_reported_together() -> None:
    env = {
        "SEED": "abc",
        "ROUNDS": "0",
        "EXTRA_FLOW_PER_USER": "none",
        "SESSION_GAP_MINUTES": "-1",
        "PRIOR_STRENGTH": "nan",
    }
    with pytest.raises(PipelineError) as err:
        load(FeatureSettings, env)
    assert str(err.value) == (
        "bad setting(s) in the environment: SEED='abc' is not an integer; SESSION_GAP_MINUTES='-1' must be "
        ">= 0.01; ROUNDS='0' must be >= 1; EXTRA_FLOW_PER_USER='none' must be an integer; "
        "PRIOR_STRENGTH='nan' is not a finite number"
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SELECT_CUMULATIVE": "9"}, "SELECT_CUMULATIVE='9' must be between 0 and 1"),
        ({"SELECT_RULE": "z"}, "SELECT_RULE='z' must be one of cumulative, mean"),
        ({"OPTUNA_STUDY_NAME": " "}, None),  # blank keeps the default name
    ],
)
def test_bounds_and_choices(env: dict[str, str], message: str | None) -> None:
    if message is None:
        assert load(TuneSettings, env).optuna_study_name == "dsg17_lightgbm"
        return
    with pytest.raises(PipelineError, match=message):
        load_all(env)


def test_a_name_read_by_several_kinds_is_reported_once() -> None:
    with pytest.raises(PipelineError) as err:
        load_all({"SEED": "x", "N_JOBS": "0"})
    assert str(err.value) == "bad setting(s) in the environment: SEED='x' is not an integer; N_JOBS='0' must be >= 1"


def test_tune_settings_need_a_finite_budget() -> None:
    with pytest.raises(PipelineError, match="OPTUNA_SECONDS=0 .* needs a finite OPTUNA_MAX_TRIALS"):
        load(TuneSettings, {"OPTUNA_SECONDS": "0", "OPTUNA_MAX_TRIALS": "none"})


def test_settings_are_frozen_and_hash_by_value() -> None:
    a, b = FeatureSettings(), FeatureSettings(rounds=3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.rounds = 2  # type: ignore[misc]
    assert settings_hash(a) == settings_hash(FeatureSettings()) != settings_hash(b)
    assert settings_dict(b)["ROUNDS"] == 3 and settings_dict(ModelSettings())["MODELS"] == []


def test_every_setting_has_a_unique_environment_name_per_kind_and_a_description() -> None:
    for cls in KINDS.values():
        names = [f.metadata["env"] for f in dataclasses.fields(cls)]
        assert len(names) == len(set(names)) and all(n.isupper() for n in names)
        assert all(f.metadata["doc"] for f in dataclasses.fields(cls))


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "core.settings", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )


def test_make_hashes_and_one_line_error_without_traceback() -> None:
    ok = _cli("--make", env={"PATH": "/usr/bin:/bin"})
    assert ok.returncode == 0 and ok.stdout.split()[0].startswith("FEATURES_HASH=")
    bad = _cli("--make", env={"PATH": "/usr/bin:/bin", "SEED": "abc"})
    assert bad.returncode == 2 and "Traceback" not in bad.stdout + bad.stderr
    assert bad.stdout.strip() == "ERROR: bad setting(s) in the environment: SEED='abc' is not an integer"


def test_help_table_lists_every_setting_once() -> None:
    out = _cli("--help-table", env={"PATH": "/usr/bin:/bin"}).stdout
    names = {f.metadata["env"] for cls in KINDS.values() for f in dataclasses.fields(cls)}
    listed = [line.split("=")[0].strip() for line in out.splitlines()]
    assert sorted(listed) == sorted(names)
