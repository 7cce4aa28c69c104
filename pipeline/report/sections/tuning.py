"""The hyper-parameter search: the study's facts and the Optuna trial history."""

from __future__ import annotations

from typing import Any

import pandas as pd
import seaborn as sns
from matplotlib.ticker import MaxNLocator

from pipeline.report import plots
from pipeline.report.artifacts import Artifacts
from pipeline.report.html import fmt, kv_table, not_available, note

__all__ = ["tuning_section"]


def _compact_params(params: Any) -> str:
    """``name=value`` pairs with floats cut to 4 significant digits (enough to read, not to copy)."""
    if not isinstance(params, dict) or not params:
        return "–"
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(params.items()))


def tuning_section(art: Artifacts) -> str:
    """The study's facts and the trial history with the best value so far."""
    opt = art.metrics.get("optuna") or {}
    facts = []
    if opt:
        facts.append(
            kv_table(
                [
                    ("study", opt.get("study_name", "–")),
                    (
                        "trials in this run / in the study",
                        f"{opt.get('n_trials_this_run', '–')} / {opt.get('n_trials_total', '–')}",
                    ),
                    ("objective", opt.get("objective", "–")),
                    ("best value", fmt(opt.get("best_value"))),
                    ("best trial", opt.get("best_trial", "–")),
                    ("best parameters", _compact_params(opt.get("best_params"))),
                    ("tuning seconds (this run)", fmt(opt.get("seconds"), ",.0f")),
                ]
            )
        )
    trials = art.optuna_trials
    if trials is None:
        return "\n".join([*facts, not_available("The Optuna trial history (optuna_trials.csv)", "train")])
    if "value" not in trials.columns or "number" not in trials.columns:
        return "\n".join([*facts, note("optuna_trials.csv has no 'number'/'value' columns.")])
    df = trials.copy()
    df["value"] = pd.to_numeric(df["value"], errors="coerce")
    state = df["state"].astype(str) if "state" in df.columns else pd.Series("COMPLETE", index=df.index)
    complete = df[(state.str.upper().str.contains("COMPLETE")) & df["value"].notna()].sort_values("number")
    n_other = len(df) - len(complete)
    if complete.empty:
        return "\n".join([*facts, note("No completed Optuna trial yet.")])
    fig, ax = plots.figure(11, 4.5)
    hue = "run_id" if "run_id" in complete.columns and complete["run_id"].notna().any() else None
    if hue:
        complete = complete.assign(run_id=complete["run_id"].fillna("unknown").astype(str))
        order = sorted(complete["run_id"].unique())
        sns.scatterplot(data=complete, x="number", y="value", hue="run_id", hue_order=order, ax=ax, s=30, alpha=0.85)
    else:
        sns.scatterplot(data=complete, x="number", y="value", ax=ax, s=30, color="#2b6cb0")
    best_value = opt.get("best_value")
    minimize = isinstance(best_value, int | float) and abs(best_value - complete["value"].min()) < abs(
        best_value - complete["value"].max()
    )
    best = complete["value"].cummin() if minimize else complete["value"].cummax()
    ax.step(complete["number"], best, where="post", color="#c53030", lw=2, label="best so far")
    ax.legend(fontsize=8, loc="best", ncol=2)
    ax.set(xlabel="trial number", ylabel="objective value of the trial")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title("Optuna trial history")
    extra = f" {n_other} pruned or failed trials are not drawn." if n_other else ""
    return "\n".join(
        [
            *facts,
            plots.img(
                fig,
                "Optuna trial history",
                "Each dot is one hyper-parameter trial of the tuned model (colour: the run that made it, since the "
                "study persists across runs); the red line is the best value found so far. The objective is measured "
                "on a training round, never on the validation round, so it does not equal the validation AUC above. "
                f"A line that has stopped rising means more trials are unlikely to help.{extra}",
            ),
        ]
    )
