"""Figure helpers: the matplotlib/seaborn style, bare Agg figures, PNG embedding, shared palettes.

Sections call these through the module (``plots.img(...)``), so a test can swap ``img`` for a stub
and skip the PNG encoding.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from typing import Any

import numpy as np
import seaborn as sns
from matplotlib.figure import Figure

from pipeline.report.html import esc

__all__ = ["DPI", "rc_params", "figure", "img", "binom_err", "model_colors", "group_palette"]

DPI = 100


def rc_params() -> dict[str, Any]:
    """The report's matplotlib style: seaborn whitegrid, small fonts, fixed DPI, bold titles."""
    rc: dict[str, Any] = {}
    rc.update(sns.axes_style("whitegrid"))
    rc.update(sns.plotting_context("notebook", font_scale=0.85))
    rc.update({"figure.dpi": DPI, "savefig.dpi": DPI, "axes.titleweight": "bold", "svg.hashsalt": "report"})
    return rc


def figure(width: float, height: float, nrows: int = 1, ncols: int = 1, **kwargs: Any) -> tuple[Figure, Any]:
    """A constrained-layout figure with its axes (``squeeze``d like ``plt.subplots``)."""
    # A bare Figure (no pyplot): no global figure registry, nothing to close, Agg canvas.
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    return fig, fig.subplots(nrows, ncols, squeeze=True, **kwargs)


def img(fig: Figure, alt: str, caption: str) -> str:
    """The figure as an embedded base64 PNG ``<figure>`` (``caption`` is trusted HTML)."""
    buf = io.BytesIO()
    # No "Software" text chunk: the PNG bytes depend on the plot only.
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    w, h = (int(round(x)) for x in fig.get_size_inches() * DPI)
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{esc(alt)}" width="{w}" height="{h}">'
        f"<figcaption>{caption}</figcaption></figure>"
    )


def binom_err(rate: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Half-width of a normal-approximation 95% interval of a rate."""
    n = np.maximum(np.asarray(n, dtype=float), 1.0)
    return 1.96 * np.sqrt(np.clip(rate * (1 - rate), 0, None) / n)


def model_colors(models: Sequence[str]) -> dict[str, Any]:
    """One stable colour per model, in ranking order, shared by the ROC and calibration plots."""
    # tab10 for the first ten models (in ranking order); past ten, tab20's light shades, not repeats.
    tab20 = sns.color_palette("tab20", n_colors=20)
    palette = tab20[0::2] + tab20[1::2]
    return {m: palette[i % len(palette)] for i, m in enumerate(models)}


def group_palette(groups: Sequence[str]) -> dict[str, Any]:
    """One tab10 colour per feature group, by sorted group name."""
    ordered = sorted(set(map(str, groups)))
    palette = sns.color_palette("tab10", n_colors=max(len(ordered), 1))
    return {g: palette[i % len(palette)] for i, g in enumerate(ordered)}
