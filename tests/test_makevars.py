"""What Make reads from the code: paths, groups, stamp names; stamps written by rules, one per kind."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from core import config
from core.errors import PipelineError
from core.settings import FeatureSettings, settings_hash
from features import FEATURE_GROUPS, OPTIONAL_GROUPS
from pipeline import makevars


def _vars(monkeypatch, **env) -> dict[str, str]:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return dict(line.split("=", 1) for line in makevars.make_vars())


def test_paths_groups_and_hashed_stamps(monkeypatch) -> None:
    v = _vars(monkeypatch)
    assert v["TRAIN_PQ"] == "data/interim/train.parquet" and v["WINNER"] == "models/artifacts/winner.json"
    assert v["GROUPS"].split(",") == [g for g in FEATURE_GROUPS if g not in OPTIONAL_GROUPS]
    assert v["FEATURES_STAMP"] == f"data/processed/settings/features-{settings_hash(FeatureSettings())}.json"
    changed = _vars(monkeypatch, ROUNDS="3")
    assert changed["FEATURES_STAMP"] != v["FEATURES_STAMP"]
    assert changed["MODELS_STAMP"] == v["MODELS_STAMP"]  # a feature setting does not touch the models' stamp


def test_opt_in_groups_join_in_registry_order_and_only_the_groups_stamp_moves(monkeypatch) -> None:
    v = _vars(monkeypatch)
    assert "fm" in v["GROUPS"].split(",") and "rbm" not in v["GROUPS"].split(",")
    extra = _vars(monkeypatch, EXTRA_GROUPS="rbm, fm")  # fm is a default group: naming it again changes nothing
    groups = extra["GROUPS"].split(",")
    assert groups == [g for g in FEATURE_GROUPS if g in v["GROUPS"].split(",") or g == "rbm"]
    assert groups.index("fm") < groups.index("rbm")  # the registry's order, not the spelling's
    assert extra["GROUPS_STAMP"] != v["GROUPS_STAMP"] and extra["FEATURES_STAMP"] == v["FEATURES_STAMP"]
    monkeypatch.setenv("EXTRA_GROUPS", "fm,nosuch")
    with pytest.raises(
        PipelineError, match=r"EXTRA_GROUPS=fm,nosuch: unknown feature group\(s\) nosuch; opt-in groups: rbm"
    ):
        makevars.make_vars()


def test_drop_groups_leaves_a_default_group_out_and_only_the_groups_stamp_moves(monkeypatch) -> None:
    v = _vars(monkeypatch)
    dropped = _vars(monkeypatch, DROP_GROUPS="fm")
    assert dropped["GROUPS"].split(",") == [g for g in v["GROUPS"].split(",") if g != "fm"]
    assert dropped["GROUPS_STAMP"] != v["GROUPS_STAMP"] and dropped["FEATURES_STAMP"] == v["FEATURES_STAMP"]
    both = _vars(monkeypatch, DROP_GROUPS="fm, cf", EXTRA_GROUPS="rbm")
    assert both["GROUPS"].split(",") == [
        g for g in FEATURE_GROUPS if g in v["GROUPS"].split(",") + ["rbm"] and g not in ("fm", "cf")
    ]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DROP_GROUPS": "fm,nosuch"}, r"DROP_GROUPS=fm,nosuch: unknown feature group\(s\) nosuch"),
        ({"DROP_GROUPS": "rbm", "EXTRA_GROUPS": "rbm"}, r"EXTRA_GROUPS=rbm and DROP_GROUPS=rbm both name rbm"),
        ({"DROP_GROUPS": ",".join(FEATURE_GROUPS)}, r"drops every feature group"),
    ],
)
def test_bad_drop_groups_is_an_error_naming_the_setting(monkeypatch, env, message) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(PipelineError, match=message):
        makevars.make_vars()


def test_write_stamp_keeps_one_stamp_per_kind(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(config, "STAMPS", tmp_path)
    first = makevars.stamp_path("features", FeatureSettings())
    makevars.write_stamp(first)
    assert first.exists() and '"ROUNDS": 5' in first.read_text()
    monkeypatch.setenv("ROUNDS", "2")
    second = makevars.stamp_path("features", FeatureSettings(rounds=2))
    makevars.write_stamp(second)
    assert sorted(p.name for p in tmp_path.iterdir()) == [second.name]  # the old one is gone
    with pytest.raises(PipelineError, match="features settings changed while make was running"):
        makevars.write_stamp(first)  # ROUNDS=2 now: the name no longer matches the settings
    with pytest.raises(PipelineError, match="not a settings stamp"):
        makevars.write_stamp(tmp_path / "other-123.json")


def test_cli_runs_without_the_venv_and_fails_in_one_line() -> None:
    # A python3 outside .venv (here without numpy or pandas) is what Make calls while it parses.
    system = shutil.which("python3", path="/usr/bin:/bin")
    if system is None:
        pytest.skip("no python3 outside .venv on this machine")
    env = {"PATH": "/usr/bin:/bin", "SEED": "abc"}
    proc = subprocess.run([system, "-m", "pipeline.makevars"], cwd=config.ROOT, env=env, capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr == ""
    assert proc.stdout == "ERROR: bad setting(s) in the environment: SEED='abc' is not an integer\n"
    ok = subprocess.run(
        [sys.executable, "-m", "pipeline.makevars"], cwd=config.ROOT, env={"PATH": "/usr/bin:/bin"}, text=True,
        capture_output=True,
    )  # fmt: skip
    assert ok.returncode == 0 and "GROUPS=time," in ok.stdout
