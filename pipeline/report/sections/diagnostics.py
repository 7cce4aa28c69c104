"""Where the winner is right and wrong (segments), and every model's paired difference from the winner."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.report import plots
from pipeline.report.artifacts import Artifacts
from pipeline.report.html import esc, fmt, fmt_int, not_available, pct, table

__all__ = ["segments_section", "paired_section"]


def segments_section(art: Artifacts) -> str:
    """The winner's validation AUC by user history length, track/artist heard before, new release."""
    rows = ((art.metrics.get("diagnostics") or {}).get("segments")) or []
    if not rows:
        return not_available("The validation AUC by segment (metrics.json: diagnostics)", "train")
    df = pd.DataFrame(rows)
    shown = pd.DataFrame(
        {
            "segment": df["segment"],
            "level": df["level"],
            "rows": [fmt_int(v) for v in df["rows"]],
            "listen rate": [pct(v) for v in df["listen_rate"]],
            "AUC of the winner": [fmt(v) for v in df["auc"]],
        }
    )
    return "\n".join(
        [
            f"<p>The winner ({esc(art.metrics.get('winner', '–'))}) on the validation round, row by row "
            "segment. Taste features should matter most where the user never met the track or the artist, "
            "and for users with a long history to learn from. Small segments have wide uncertainty.</p>",
            table(shown, "segments"),
        ]
    )


def paired_section(art: Artifacts) -> str:
    """Each model's AUC minus the winner's, with the 95% interval over the same bootstrap resamples."""
    rows = ((art.metrics.get("diagnostics") or {}).get("paired")) or []
    if not rows:
        return not_available("The paired comparison with the winner (metrics.json: diagnostics)", "train")
    df = pd.DataFrame(rows).sort_values(["delta_auc", "model"], ascending=[True, True]).reset_index(drop=True)
    fig, ax = plots.figure(8, 0.35 * len(df) + 1.4)
    y = np.arange(len(df))
    inside = (df["lo"] <= 0) & (df["hi"] >= 0)
    colors = np.where(inside, "#718096", "#c53030")
    for color in ("#718096", "#c53030"):  # errorbar takes one colour per call
        k = colors == color
        if k.any():
            ax.errorbar(
                df["delta_auc"][k],
                y[k],
                xerr=[(df["delta_auc"] - df["lo"])[k], (df["hi"] - df["delta_auc"])[k]],
                fmt="none",
                ecolor=color,
                capsize=3,
            )
    ax.scatter(df["delta_auc"], y, c=list(colors), zorder=3)
    ax.axvline(0, color="#2f855a", lw=1)
    ax.set_yticks(y, df["model"])
    ax.set_xlabel(f"validation AUC minus the winner's ({art.metrics.get('winner', '')})")
    ax.set_title("Paired differences from the winner (95% bootstrap intervals, same resamples)")
    shown = pd.DataFrame(
        {
            "model": df["model"][::-1],
            "ΔAUC vs winner": [fmt(v, "+.4f") for v in df["delta_auc"][::-1]],
            "95% interval": [
                f"{fmt(a, '+.4f')} to {fmt(b, '+.4f')}" for a, b in zip(df["lo"][::-1], df["hi"][::-1], strict=True)
            ],
        }
    )
    return "\n".join(
        [
            "<p>Each model against the winner on the same validation rows: the difference of AUCs and its 95% "
            "interval over the same bootstrap resamples for both models (grey: the interval holds 0, the two "
            "are not told apart; red: the winner is better beyond noise).</p>",
            plots.img(
                fig, "paired AUC differences", "Paired bootstrap intervals of each model's AUC minus the winner's."
            ),
            table(shown, "paired"),
        ]
    )
