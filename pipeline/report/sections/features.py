"""Features: the selection forest, what the winner relies on, the group ablation, selection's effect."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.patches import Patch

from pipeline.report import plots
from pipeline.report.artifacts import Artifacts
from pipeline.report.html import esc, fmt, fmt_int, kv_table, not_available, note, table

__all__ = ["selection_section", "winner_importance_section", "ablation_section", "selection_effect_section"]

#: Bars shown in the importance plots.
TOP_FEATURES = 30
#: Forest parameters worth a line in the selection table (all of them go in a collapsed block).
_RF_SHOWN = {"n_estimators", "max_depth", "min_samples_leaf", "max_features", "class_weight", "max_samples"}


def selection_section(art: Artifacts) -> str:
    """The selection rule and forest, and the forest's impurity/permutation importances."""
    parts: list[str] = []
    sel = art.selection
    if sel:
        rf_params = sel.get("rf_params") if isinstance(sel.get("rf_params"), dict) else {}
        parts.append(
            kv_table(
                [
                    ("rule", sel.get("rule", "–")),
                    ("threshold", fmt(sel.get("threshold"), ".6g")),
                    ("features kept", f"{fmt_int(sel.get('n_selected'))} of {fmt_int(sel.get('n_all'))}"),
                    ("rows used by the forest", fmt_int(sel.get("rows_used"))),
                    (
                        "forest",
                        ", ".join(f"{k}={v}" for k, v in sorted(rf_params.items()) if k in _RF_SHOWN) or "–",
                    ),
                ]
            )
        )
        if rf_params:
            parts.append(
                "<details><summary>All forest parameters</summary><pre class='mono'>"
                f"{esc(json.dumps(rf_params, indent=2, sort_keys=True, default=str))}</pre></details>"
            )
        dropped = [str(f) for f in sel.get("dropped") or []]
        if dropped:
            parts.append(
                f"<details><summary>{len(dropped)} dropped features</summary>"
                f'<p class="mono">{esc(", ".join(dropped))}</p></details>'
            )
        else:
            parts.append("<p>No feature was dropped.</p>")
    else:
        parts.append(not_available("The selection summary (models/artifacts/selection.json)", "select"))

    rf = art.rf_importances
    if rf is None:
        parts.append(not_available("Random-forest importances (models/artifacts/rf_importances.parquet)", "select"))
        return "\n".join(parts)
    df = rf.copy()
    if "impurity" not in df.columns or "feature" not in df.columns:
        parts.append(note("rf_importances.parquet lacks 'feature'/'impurity' columns."))
        return "\n".join(parts)
    # Ranked by impurity, the measure the selection rule reads; permutation is shown beside it as a check.
    df = df.sort_values(["impurity", "feature"], ascending=[False, True]).head(TOP_FEATURES).reset_index(drop=True)
    has_perm = "permutation_mean" in df.columns and pd.to_numeric(df["permutation_mean"], errors="coerce").notna().any()
    selected = df["selected"].astype(bool) if "selected" in df.columns else pd.Series(True, index=df.index)
    fig, axes = plots.figure(12, 0.28 * len(df) + 1.6, 1, 2 if has_perm else 1, sharey=True)
    axes = np.atleast_1d(axes)
    y = np.arange(len(df))
    colors = np.where(selected, "#2b6cb0", "#cbd5e0")
    axes[0].barh(y, df["impurity"], color=colors)
    axes[0].set_yticks(y, df["feature"])
    axes[0].invert_yaxis()
    axes[0].set_xlabel("mean decrease in impurity")
    axes[0].set_title("Impurity importance")
    if has_perm:
        std = df["permutation_std"].fillna(0) if "permutation_std" in df.columns else None
        axes[1].barh(y, df["permutation_mean"], xerr=std, color=colors, ecolor="#4a5568", capsize=2)
        axes[1].axvline(0, color="#4a5568", lw=0.8)
        axes[1].set_xlabel("AUC drop when shuffled (mean ± sd)")
        axes[1].set_title("Permutation importance")

    axes[-1].legend(
        handles=[Patch(color="#2b6cb0", label="selected"), Patch(color="#cbd5e0", label="dropped")],
        loc="lower right",
        fontsize=8,
    )
    parts.append(
        plots.img(
            fig,
            "random forest importances",
            f"The top {len(df)} features of the selection forest by impurity importance (the forest is fitted "
            "on the training rounds only). Impurity importance favours features with many distinct values. "
            + (
                "Permutation importance is how much the forest's AUC on the validation round drops when the "
                "feature is shuffled (mean ± sd over repeats; shown for reading only, the rule never sees it): "
                "a feature high on the left but near zero on the right is mostly memorising. "
                if has_perm
                else "No permutation importance was recorded for this selection. "
            )
            + "Grey bars are features the rule dropped.",
        )
    )
    return "\n".join(parts)


def winner_importance_section(art: Artifacts) -> str:
    """The winner's gain importances by feature and by feature group."""
    wi = art.winner_importance
    if wi is None:
        return not_available("The winner's importances (winner_importance.csv)", "train")
    if "gain" not in wi.columns or "feature" not in wi.columns:
        return note("winner_importance.csv lacks 'feature'/'gain' columns.")
    df = wi.copy()
    df["group"] = df["group"].astype(str) if "group" in df.columns else "unknown"
    df["gain"] = pd.to_numeric(df["gain"], errors="coerce").fillna(0.0)
    # One bar per feature even if a feature is listed twice.
    df = df.groupby("feature", sort=True).agg(group=("group", "first"), gain=("gain", "sum")).reset_index()
    total = df["gain"].sum()
    by_group = df.groupby("group", sort=True)["gain"].sum().sort_values(ascending=False)
    top = df.sort_values(["gain", "feature"], ascending=[False, True]).head(TOP_FEATURES)
    top = top.assign(share=top["gain"] / total if total > 0 else 0.0)
    palette = plots.group_palette(df["group"])
    fig, (ax, ax2) = plots.figure(12, 0.28 * len(top) + 1.6, 1, 2, width_ratios=[2.2, 1])
    sns.barplot(
        data=top, y="feature", x="share", hue="group", palette=palette, dodge=False, ax=ax, legend=True, errorbar=None
    )
    ax.set(xlabel="share of total gain", ylabel="")
    ax.set_title(f"Top {len(top)} features by gain")
    ax.legend(fontsize=8, loc="lower right", title="group")
    g = by_group.reset_index().assign(share=lambda d: d["gain"] / total if total > 0 else 0.0)
    sns.barplot(
        data=g, y="group", x="share", hue="group", palette=palette, dodge=False, ax=ax2, legend=False, errorbar=None
    )
    ax2.set(xlabel="share of total gain", ylabel="")
    ax2.set_title("Gain by feature group")
    lead = by_group.index[0] if len(by_group) else "–"
    return plots.img(
        fig,
        "winner gain importances",
        (f"Source: {esc(art.metrics['importance_source'])}. " if art.metrics.get("importance_source") else "")
        + "Gain is the total loss reduction the trees obtained from splits on a feature: how much the model leans "
        f"on it, not its causal effect. The {esc(lead)} group carries the largest share here; correlated features "
        "split the credit between them, so read groups rather than single features.",
    )


def ablation_section(art: Artifacts) -> str:
    """Validation AUC lost when each feature group is left out (reports/ablation.json)."""
    ab = art.ablation
    if not ab:
        # On request since make train stopped waiting for it (eleven fits: a core for ~100 s).
        return not_available("The feature-group ablation (reports/ablation.json)", "ablation") + note(
            "It is a diagnostic on request (one fit of the fixed LightGBM per feature group); "
            "make train does not run it."
        )
    rows = ab.get("rows") or []
    df = pd.DataFrame(rows)
    if df.empty or "group" not in df.columns:
        return note("reports/ablation.json has no rows.")
    df["group"] = df["group"].astype(str)
    for col in ("n_features", "auc_without", "delta"):
        df[col] = pd.to_numeric(df[col], errors="coerce") if col in df.columns else np.nan
    df = df.sort_values(["delta", "group"], ascending=[False, True]).reset_index(drop=True)
    full = ab.get("full_auc")
    shown = pd.DataFrame(
        {
            "group left out": df["group"],
            "features": [fmt_int(v) for v in df["n_features"]],
            "AUC without": [fmt(v) for v in df["auc_without"]],
            "delta (full − without)": [fmt(v, "+.4f") for v in df["delta"]],
        }
    )
    fig, ax = plots.figure(9, 0.4 * len(df) + 1.4)
    colors = ["#2f855a" if d > 0 else "#c53030" for d in df["delta"].fillna(0)]
    ax.barh(np.arange(len(df)), df["delta"].fillna(0), color=colors)
    ax.set_yticks(np.arange(len(df)), df["group"])
    ax.invert_yaxis()
    ax.axvline(0, color="#4a5568", lw=0.8)
    ax.set_xlabel("validation AUC lost when the group is removed")
    ax.set_title("Validation AUC lost without each feature group")
    stale = ""
    run_data = (art.params or {}).get("data_fingerprint")
    if ab.get("data_fingerprint") and run_data and ab["data_fingerprint"] != run_data:
        # make train does not re-run the ablation: say so rather than pass it off as current.
        stale = note(
            "This ablation was computed on an earlier version of the features than this run's: "
            "run make ablation to bring it up to date."
        )
    return "\n".join(
        [
            stale,
            f"<p>Model: {esc(ab.get('model', '–'))}; AUC with every group: <b>{fmt(full)}</b>.</p>",
            table(shown, "ablation"),
            plots.img(
                fig,
                "feature group ablation",
                "Each bar is the validation AUC lost when one feature group is left out and the same model is "
                "refitted (green: the group helps; red: the model is better without it). Groups that overlap "
                "(e.g. user and user × item rates) can each look small while together they matter.",
            ),
        ]
    )


def selection_effect_section(art: Artifacts) -> str:
    """The fixed LightGBM's AUC with the selected features against all features (pipeline.ablation)."""
    # reports/ablation.json since the selection effect moved to `make ablation`; older runs had it in metrics.json.
    se = (art.ablation or {}).get("selection_effect") or art.metrics.get("selection_effect") or {}
    if not se:
        return not_available("The selection effect (reports/ablation.json)", "ablation")
    a, b = se.get("auc_selected"), se.get("auc_all_features")
    delta = (a - b) if isinstance(a, int | float) and isinstance(b, int | float) else None
    n = (art.params or {}).get("selection") or {}
    return kv_table(
        [
            ("model", se.get("model", "–")),
            (f"AUC with the selected features ({fmt_int(n.get('n_selected'))})", fmt(a)),
            (f"AUC with all features ({fmt_int(n.get('n_all'))})", fmt(b)),
            ("difference (selected − all)", fmt(delta, "+.4f")),
        ]
    ) + (
        "<p>A difference inside the AUC interval above means selection mainly made the model smaller and faster; "
        "a clear negative difference would mean the forest threw away signal a model could use. Measured with the "
        "ablation's fixed LightGBM on the ablation's rows (one more fit in make ablation), not the winner.</p>"
    )
