"""Feature selection: the rule's arithmetic, the files it writes, and that it never reads validation labels."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from core.errors import PipelineError
from core.io import read_json
from core.settings import SelectSettings
from pipeline import select
from pipeline.data.dataset import Matrix


def _tiny_matrix(seed: int = 0, users: int = 150, rounds: int = 4) -> Matrix:
    """Rounds 1..``rounds`` for each user; two informative features, the rest noise."""
    rng = np.random.default_rng(seed)
    n = users * rounds
    examples = pd.DataFrame(
        {
            "example_id": np.arange(n, dtype=np.int64),
            "round": np.repeat(np.arange(1, rounds + 1, dtype=np.int16), users),
            "user_id": np.tile(np.arange(users, dtype=np.int32), rounds),
            "sample_id": np.int32(-1),
        }
    )
    X = pd.DataFrame(rng.normal(size=(n, 8)).astype(np.float32), columns=[f"f{i}" for i in range(8)])
    X.loc[rng.random(n) < 0.1, "f3"] = np.nan
    logit = 1.5 * X["f0"].to_numpy() + 1.0 * X["f1"].to_numpy()
    examples["is_listened"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int8)
    groups = {c: ("user" if c in ("f0", "f1") else "time") for c in X.columns}
    return Matrix(examples=examples, X=X, groups=groups)


SETTINGS = SelectSettings(
    seed=0,
    select_trees=30,
    select_rule="cumulative",
    select_cumulative=0.6,
    select_min_features=2,
    permutation_repeats=2,
)


IMP = pd.Series([0.04, 0.5, 0.1, 0.3, 0.06], index=list("abcde"))


@pytest.mark.parametrize(
    ("rule", "cumulative", "min_features", "expected", "threshold"),
    [
        # sorted: b .5, d .3, c .1, e .06, a .04 -> cumulative .5 .8 .9 .96 1.0
        ("cumulative", 0.9, 1, ["b", "c", "d"], 0.1),  # .9 is reached with 3 features
        ("cumulative", 0.85, 1, ["b", "c", "d"], 0.1),
        ("cumulative", 0.8, 1, ["b", "d"], 0.3),
        ("cumulative", 0.5, 4, ["b", "c", "d", "e"], 0.06),  # the floor of 4 wins
        ("cumulative", 1.0, 1, ["a", "b", "c", "d", "e"], 0.04),
        ("mean", 0.0, 1, ["b", "d"], 0.3),  # mean = .2: b and d are above it
        ("mean", 0.0, 3, ["b", "c", "d"], 0.1),
    ],
)
def test_rule_arithmetic(
    rule: str, cumulative: float, min_features: int, expected: list[str], threshold: float
) -> None:
    selected, thr, words = select.apply_rule(IMP, rule=rule, cumulative=cumulative, min_features=min_features)
    assert selected == expected  # in matrix order
    assert thr == pytest.approx(threshold)
    assert "training rounds only" in words


def test_rule_breaks_ties_by_matrix_order() -> None:
    imp = pd.Series([0.25, 0.25, 0.25, 0.25], index=["w", "x", "y", "z"])
    assert select.apply_rule(imp, rule="cumulative", cumulative=0.5, min_features=1)[0] == ["w", "x"]


def test_unknown_rule_is_a_user_error() -> None:
    with pytest.raises(PipelineError, match="unknown selection rule"):
        select.apply_rule(IMP, rule="median", cumulative=0.9, min_features=1)


def test_run_writes_the_documented_layout(tmp_path) -> None:
    matrix = _tiny_matrix()
    selection = select.run(matrix=matrix, out_dir=tmp_path, settings=SETTINGS)
    doc = read_json(tmp_path / "selection.json")
    assert set(doc) == {"rule", "threshold", "selected", "dropped", "n_all", "n_selected", "rf_params", "rows_used"}
    assert doc["n_all"] == 8 and doc["n_selected"] == len(doc["selected"]) >= 2
    assert sorted(doc["selected"] + doc["dropped"]) == sorted(matrix.X.columns)
    assert {"f0", "f1"} <= set(doc["selected"])  # the two informative features
    assert doc["rows_used"] == int(matrix.training_mask().sum())
    assert doc["selected"] == selection.selected
    table = pd.read_parquet(tmp_path / "rf_importances.parquet")
    assert list(table.columns) == ["feature", "group", "impurity", "permutation_mean", "permutation_std", "selected"]
    assert table["impurity"].is_monotonic_decreasing
    assert set(table.loc[table["selected"], "feature"]) == set(doc["selected"])
    assert table["permutation_mean"].notna().all()
    assert table.set_index("feature").loc["f0", "group"] == "user"


def test_selection_never_reads_validation_labels(tmp_path) -> None:
    matrix = _tiny_matrix()
    first = select.run(matrix=matrix, out_dir=tmp_path / "a", settings=SETTINGS)
    shuffled = matrix.examples.copy()
    valid = matrix.validation_mask()
    rng = np.random.default_rng(1)
    shuffled.loc[valid, "is_listened"] = rng.permutation(shuffled.loc[valid, "is_listened"].to_numpy())
    shuffled.loc[valid, "is_listened"] = 1 - shuffled.loc[valid, "is_listened"]  # and flip them
    second = select.run(matrix=Matrix(shuffled, matrix.X, matrix.groups), out_dir=tmp_path / "b", settings=SETTINGS)
    assert second.selected == first.selected
    assert second.threshold == first.threshold
    a = read_json(tmp_path / "a" / "selection.json")
    b = read_json(tmp_path / "b" / "selection.json")
    assert a == b  # the whole file, byte for byte in content
    # Only the display-only permutation importance moves.
    pa = pd.read_parquet(tmp_path / "a" / "rf_importances.parquet")
    pb = pd.read_parquet(tmp_path / "b" / "rf_importances.parquet")
    pd.testing.assert_series_equal(pa["impurity"], pb["impurity"])
    assert not np.allclose(pa["permutation_mean"], pb["permutation_mean"])


def test_single_class_training_rounds_is_a_user_error(tmp_path) -> None:
    matrix = _tiny_matrix()
    ex = matrix.examples.assign(is_listened=np.int8(1))
    with pytest.raises(PipelineError, match="single class"):
        select.run(matrix=Matrix(ex, matrix.X, matrix.groups), out_dir=tmp_path, settings=SETTINGS)


def test_permutation_importance_on_threads_equals_one_feature_at_a_time() -> None:
    matrix = _tiny_matrix()
    train = matrix.training_mask()
    forest = select.selection_forest(SETTINGS).fit(matrix.X.loc[train], matrix.y[train])
    one = select.permutation_table(forest, matrix, settings=dataclasses.replace(SETTINGS, n_jobs=1))
    two = select.permutation_table(forest, matrix, settings=dataclasses.replace(SETTINGS, n_jobs=2))
    pd.testing.assert_frame_equal(one, two, check_exact=True)
    assert one["permutation_mean"].abs().max() > 0  # f0 and f1 matter: the numbers are not all zero
    assert forest.n_jobs == SETTINGS.n_jobs  # the fitted forest keeps its own thread count
