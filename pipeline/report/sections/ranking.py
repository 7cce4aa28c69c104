"""Model ranking, ROC curves and calibration: how the models compare on the validation round."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from pipeline.report import plots
from pipeline.report.artifacts import Artifacts, ranking_rows
from pipeline.report.html import esc, fmt, fmt_int, not_available, note, table

__all__ = ["ranking_section", "roc_section", "calibration_section"]

# Columns of metrics.json "ranking": key -> (label, best is "max"/"min"/None, kind).
_RANKING_COLUMNS: dict[str, tuple[str, str | None, str]] = {
    "auc": ("ROC AUC [95% CI]", "max", "auc"),
    "log_loss": ("log loss", "min", "f4"),
    "brier": ("Brier", "min", "f4"),
    "accuracy": ("accuracy", "max", "f4"),
    "fit_seconds": ("fit s", "min", "f1"),
    "predict_seconds": ("predict s", "min", "f2"),
    "rows_used": ("rows used", None, "int"),
    "row_budget": ("row budget", None, "budget"),
    "n_features": ("features", None, "int"),
    "note": ("note", None, "str"),
}
#: Models drawn in the calibration plot (the best ones by validation AUC).
CALIBRATION_MODELS = 5


def ranking_section(art: Artifacts) -> str:
    """The ranking table (best value per column highlighted) and the AUC-with-interval plot."""
    rows = ranking_rows(art)
    if not rows:
        return note("metrics.json has no model ranking: run make train.")
    numeric = pd.DataFrame([{k: r.get(k) for k in _RANKING_COLUMNS} for r in rows])
    shown = pd.DataFrame({"model": [str(r["model"]) for r in rows]})
    css = pd.DataFrame("", index=shown.index, columns=["model"])
    for key, (label, best, kind) in _RANKING_COLUMNS.items():
        values = numeric[key]
        if kind == "auc":
            cells = [
                f"{fmt(r.get('auc'))} [{fmt(r.get('auc_lo'), '.3f')}–{fmt(r.get('auc_hi'), '.3f')}]"
                if r.get("auc_lo") is not None
                else fmt(r.get("auc"))
                for r in rows
            ]
        elif kind == "int":
            cells = [fmt_int(v) for v in values]
        elif kind == "budget":
            cells = ["all" if v is None or (isinstance(v, float) and math.isnan(v)) else fmt_int(v) for v in values]
        elif kind == "str":
            cells = ["" if v is None else str(v) for v in values]
        else:
            cells = [fmt(float(v), "." + kind[1:] + "f") for v in pd.to_numeric(values, errors="coerce")]
        shown[label] = cells
        style = [""] * len(rows)
        if best:
            num = pd.to_numeric(values, errors="coerce")
            if num.notna().any():
                target = num.max() if best == "max" else num.min()
                style = ["background-color:#d7f0dd;font-weight:700" if v == target else "" for v in num]
        css[label] = style
    winner = art.metrics.get("winner")
    css["model"] = ["font-weight:700" if m == winner else "" for m in shown["model"]]
    parts = [
        table(shown, "ranking", css=css),
        "<p>Sorted by validation AUC. The winner (bold) is WINNER_DEFAULT (the stack) unless a model beat it "
        "on this round with a paired 95% interval clear of zero; the first note below says which rule decided. "
        "The best value of each column is highlighted (highest AUC and accuracy, "
        "lowest log loss, Brier score and seconds). <i>rows used</i> is how many training examples the model "
        'was fitted on; <i>row budget</i> caps it for slow models ("all" = no cap). Fit and predict seconds '
        "are wall-clock on this machine.</p>",
    ]
    notes = art.metrics.get("notes")
    if isinstance(notes, list) and notes:
        parts.append("<ul>" + "".join(f"<li>{esc(n)}</li>" for n in notes) + "</ul>")
    parts.append(_auc_ci_plot(rows, winner))
    return "\n".join(parts)


def _auc_ci_plot(rows: list[dict[str, Any]], winner: Any) -> str:
    """Each model's validation AUC with its bootstrap interval, winner highlighted."""
    df = pd.DataFrame(
        {
            "model": [str(r["model"]) for r in rows],
            "auc": [r.get("auc") for r in rows],
            "lo": [r.get("auc_lo") for r in rows],
            "hi": [r.get("auc_hi") for r in rows],
        }
    )
    df[["auc", "lo", "hi"]] = df[["auc", "lo", "hi"]].apply(pd.to_numeric, errors="coerce")
    df = df.dropna(subset=["auc"]).iloc[::-1].reset_index(drop=True)
    if df.empty:
        return ""
    fig, ax = plots.figure(9, 0.45 * len(df) + 1.3)
    colors = ["#2b6cb0" if m == winner else "#718096" for m in df["model"]]
    y = np.arange(len(df))
    lo = (df["auc"] - df["lo"]).fillna(0).clip(lower=0)
    hi = (df["hi"] - df["auc"]).fillna(0).clip(lower=0)
    ax.errorbar(df["auc"], y, xerr=[lo, hi], fmt="none", ecolor="#a0aec0", elinewidth=2, capsize=3)
    ax.scatter(df["auc"], y, c=colors, s=50, zorder=3)
    ax.axvline(0.5, color="#c53030", ls=":", lw=1)
    ax.set_yticks(y, df["model"])
    ax.set_xlabel("validation ROC AUC (round 1)")
    ax.set_title("Validation AUC with bootstrap 95% intervals")
    return plots.img(
        fig,
        "validation AUC per model with confidence intervals",
        "Each dot is a model's AUC on the held-out round; bars are bootstrap 95% intervals over validation "
        "users. Overlapping bars mean the data cannot tell those models apart; the dotted line is chance (0.5).",
    )


def _model_columns(art: Artifacts) -> list[str]:
    """Prediction columns of val_predictions.parquet: ranked models first, then other float columns."""
    vp = art.val_predictions
    if vp is None:
        return []
    ranked = [str(r["model"]) for r in ranking_rows(art)]
    extra = [c for c in vp.columns if c not in {"example_id", "user_id", "y", *ranked}]
    cols = [m for m in ranked if m in vp.columns] + [c for c in extra if pd.api.types.is_float_dtype(vp[c])]
    return cols


def roc_section(art: Artifacts) -> str:
    """ROC curves of every model on the validation round."""
    from sklearn.metrics import roc_auc_score, roc_curve

    vp = art.val_predictions
    if vp is None:
        return not_available("Validation predictions (val_predictions.parquet)", "train")
    models = _model_columns(art)
    if "y" not in vp.columns or not models:
        return note("val_predictions.parquet has no label column 'y' or no model columns.")
    y = vp["y"].to_numpy()
    if len(np.unique(y)) < 2:
        return note("The validation labels are all one class: no ROC curve can be drawn.")
    colors = plots.model_colors(models)
    fig, ax = plots.figure(7.5, 6)
    for m in models:
        p = vp[m].to_numpy(dtype=float)
        ok = np.isfinite(p)
        if len(np.unique(y[ok])) < 2:  # no finite predictions for one class: no curve to draw
            continue
        fpr, tpr, _ = roc_curve(y[ok], p[ok])
        auc = roc_auc_score(y[ok], p[ok])
        lw = 2.6 if m == art.metrics.get("winner") else 1.4
        ax.plot(fpr, tpr, lw=lw, color=colors[m], label=f"{m} (AUC {auc:.4f})")
    ax.plot([0, 1], [0, 1], ls=":", color="#718096", lw=1, label="chance")
    ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="false positive rate (skips called listens)")
    ax.set_ylabel("true positive rate (listens found)")
    ax.set_aspect("equal")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title("ROC curves on the validation round")
    return plots.img(
        fig,
        "ROC curves of all models",
        "Each curve trades listens found against skips wrongly called listens as the threshold moves; the "
        "area under it is the AUC (thick line: the winner). A curve that lies above another everywhere ranks "
        "users better at every threshold; crossing curves mean the choice depends on the operating point.",
    )


def calibration_section(art: Artifacts) -> str:
    """Reliability curves and prediction histograms of the best models."""
    vp = art.val_predictions
    if vp is None:
        return not_available("Validation predictions (val_predictions.parquet)", "train")
    models = _model_columns(art)
    if "y" not in vp.columns or not models:
        return ""
    y = vp["y"].to_numpy(dtype=float)
    colors = plots.model_colors(models)  # the same colour per model as in the ROC plot
    shown = models[:CALIBRATION_MODELS]  # ranking order: the best models; more lines would be unreadable
    fig, (ax, ax2) = plots.figure(12, 5, 1, 2, width_ratios=[1.1, 1])
    for m in shown:
        p = vp[m].to_numpy(dtype=float)
        ok = np.isfinite(p)
        p, yy = p[ok], y[ok]
        if not len(p):
            continue
        # Equal-count bins: every point rests on the same number of users.
        edges = np.unique(np.quantile(p, np.linspace(0, 1, 11)))
        if len(edges) < 2:
            continue
        b = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, len(edges) - 2)
        cnt = np.bincount(b, minlength=len(edges) - 1)
        keep = cnt > 0
        mean_p = np.bincount(b, weights=p, minlength=len(edges) - 1)[keep] / cnt[keep]
        mean_y = np.bincount(b, weights=yy, minlength=len(edges) - 1)[keep] / cnt[keep]
        ax.plot(mean_p, mean_y, marker="o", ms=4, lw=1.5, color=colors[m], label=m)
        ax2.hist(p, bins=40, range=(0, 1), histtype="step", lw=1.5, color=colors[m], label=m)
    ax.plot([0, 1], [0, 1], ls=":", color="#718096", lw=1)
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="mean predicted probability (decile bin)", ylabel="observed listen rate")
    ax.set_title("Reliability (calibration)")
    ax.legend(fontsize=8, loc="upper left")
    ax2.set(xlabel="predicted probability", ylabel="validation users")
    ax2.set_title("Distribution of predictions")
    base = float(np.mean(y))
    ax.axhline(base, color="#c53030", lw=0.8, ls="--")
    ax2.axvline(base, color="#c53030", lw=0.8, ls="--")
    return plots.img(
        fig,
        "calibration plot",
        (f"The {len(shown)} best models by validation AUC. " if len(shown) < len(models) else "")
        + "Left: users grouped into ten equal-count bins of predicted probability; a calibrated model sits on the "
        "diagonal (above it: too pessimistic, below: too optimistic). Right: how spread out the predictions are. "
        f"The dashed line is the validation listen rate ({base:.1%}). AUC only depends on the ranking, so a "
        "badly calibrated model can still rank well; models scored by a decision function (see the table's "
        "notes) are not probabilities at all.",
    )
