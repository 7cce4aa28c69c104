"""The bake-off's winner rule (pipeline/winner.py): the default stays unless beaten clear of zero."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from core.errors import PipelineError
from pipeline.runstore import ModelScore, Ranking
from pipeline.winner import choose_winner

MODELS = ["ensemble", "lightgbm", "logistic_regression", "sgd"]


def _ranking(y: np.ndarray, preds: dict[str, np.ndarray]) -> Ranking:
    def score(model: str) -> ModelScore:
        auc = float(roc_auc_score(y, preds[model]))
        return ModelScore(model, auc, auc - 0.1, auc + 0.1, 0.6, 0.2, 0.7, 1.0, 0.1, len(y), None, 3, "probability")

    return Ranking.of([score(m) for m in preds])


def _near_tie() -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """60 rows (30 of each label); lightgbm is the stack with one positive moved above one negative."""
    y = np.tile([0, 1], 30)
    stack = np.linspace(0.2, 0.8, 60)[np.random.default_rng(0).permutation(60)]
    lgb = stack.copy()
    # The first positive ranked just below a negative trades places with it: one pair more in the
    # right order, 1 / (30 * 30) of AUC; most resamples miss one of the two rows.
    order = np.argsort(stack)
    i = next(i for i in range(59) if y[order[i]] == 1 and y[order[i + 1]] == 0)
    pos, neg = order[i], order[i + 1]
    lgb[[neg, pos]] = lgb[[pos, neg]]
    return y, {"ensemble": stack, "lightgbm": lgb}


def test_a_better_round1_auc_within_noise_keeps_the_default() -> None:
    y, preds = _near_tie()
    ranking = _ranking(y, preds)
    assert ranking.winner.model == "lightgbm"  # the best round-1 AUC...
    choice = choose_winner(ranking, preds, y, default="ensemble", models=MODELS, n_boot=200, seed=0)
    assert choice.model == "ensemble" and choice.auc == ranking.get("ensemble").auc  # ...is not the winner
    (gap,) = choice.against_default
    assert gap["model"] == "lightgbm" and gap["delta_auc"] == pytest.approx(1 / 900)
    assert gap["lo"] == 0.0 and gap["hi"] > 0
    assert (
        choice.reason.startswith("ensemble, the default winner: no model beat it")
        and "lightgbm: +0.0011" in choice.reason
    )


def test_a_model_that_beats_the_default_clear_of_zero_wins_and_the_best_of_several_does() -> None:
    y, preds = _near_tie()
    preds["sgd"] = y + 0.5 * np.linspace(0, 1, 60)  # every positive above every negative: AUC 1
    preds["logistic_regression"] = y * 0.3 + np.linspace(0, 1, 60)  # better than the stack, short of sgd
    ranking = _ranking(y, preds)
    choice = choose_winner(ranking, preds, y, default="ensemble", models=MODELS, n_boot=200, seed=0)
    gaps = {g["model"]: g for g in choice.against_default}
    assert gaps["sgd"]["lo"] > 0 and gaps["logistic_regression"]["lo"] > 0  # both clear of zero
    assert choice.model == "sgd" and choice.auc == 1.0
    assert choice.reason.startswith("sgd beat the default winner ensemble on round 1 by +")


def test_the_default_that_ranks_first_is_kept_with_its_own_reason() -> None:
    y, preds = _near_tie()
    preds["ensemble"], preds["lightgbm"] = preds["lightgbm"], preds["ensemble"]
    choice = choose_winner(_ranking(y, preds), preds, y, default="ensemble", models=MODELS, n_boot=50, seed=0)
    assert choice.model == "ensemble" and choice.reason == "ensemble, the default winner, has the best round-1 AUC"


def test_without_a_default_or_without_it_in_the_bake_off_the_best_auc_wins() -> None:
    y, preds = _near_tie()
    ranking = _ranking(y, preds)
    off = choose_winner(ranking, preds, y, default="none", models=MODELS, n_boot=50, seed=0)
    assert (off.model, off.against_default) == ("lightgbm", ())
    del preds["ensemble"]
    subset = choose_winner(_ranking(y, preds), preds, y, default="ensemble", models=MODELS, n_boot=50, seed=0)
    assert subset.model == "lightgbm" and "is not in this bake-off" in subset.reason


def test_an_unknown_default_is_a_clear_error_naming_the_setting() -> None:
    y, preds = _near_tie()
    with pytest.raises(PipelineError, match=r"WINNER_DEFAULT='ensembel' is not a model .*valid: ensemble, lightgbm"):
        choose_winner(_ranking(y, preds), preds, y, default="ensembel", models=MODELS, n_boot=50, seed=0)
