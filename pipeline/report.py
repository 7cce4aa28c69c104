"""Write the self-contained HTML report of a training run: ``reports/model_ranking.html``.

The report is built from the artifact files only (``runs/<id>/``, ``models/artifacts/``,
``reports/ablation.json``, ``data/interim/``): it never refits a model.  Every plot is a
base64 PNG inside the file and the CSS is inline, so the file opens offline, can be
mailed, and reads the same for someone who did not run the pipeline.

Each section degrades on its own: a missing optional artifact gives a short
"not available: run make ..." note in that section, and a section that fails to draw
logs a warning and says so in place, so a plotting problem never costs a finished
training run its report.  Only a run without ``metrics.json`` is an error.

Usage: ``python -m pipeline.report [--out reports/model_ranking.html] [--run-id ID]``.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import html
import io
import json
import logging
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter

from core import config
from core.errors import PipelineError, run_cli
from core.io import write_text
from features.params import MIN_VALID_TS  # broken-clock cut shared with the time features

__all__ = ["build_report", "render_report", "load_artifacts", "Artifacts", "main"]

log = logging.getLogger("pipeline.report")

DPI = 100
#: Rows of train.parquet above which the exploration section samples users (seeded).
EXPLORE_MAX_ROWS = 3_000_000
#: Bars shown in the importance plots.
TOP_FEATURES = 30
#: Forest parameters worth a line in the selection table (all of them go in a collapsed block).
_RF_SHOWN = {"n_estimators", "max_depth", "min_samples_leaf", "max_features", "class_weight", "max_samples"}
#: Models drawn in the calibration plot (the best ones by validation AUC).
CALIBRATION_MODELS = 5
#: Runs shown side by side at the end.
MAX_RUNS = 5
#: Genres with fewer plays are left out of the popularity/listen-rate correlation.
MIN_GENRE_PLAYS = 50
#: Buckets with fewer plays are not drawn: their rate is noise.
MIN_BUCKET_PLAYS = 30
#: release_date placeholders seen in the real data.
RELEASE_PLACEHOLDERS = (19000101, 30000101)

EXPLORE_COLUMNS = (
    "user_id",
    "media_id",
    "genre_id",
    "ts_listen",
    "context_type",
    "release_date",
    "platform_name",
    "media_duration",
    "listen_type",
    "is_listened",
)

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

_CSS = """
:root { --ink:#1f2430; --muted:#5c6370; --line:#dde1e7; --accent:#2b6cb0; --bg:#f7f8fa; --best:#d7f0dd; }
* { box-sizing: border-box; }
body { margin:0; font:15px/1.5 -apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
  color:var(--ink); background:var(--bg); }
.page { max-width:1180px; margin:0 auto; padding:24px 32px 48px; background:#fff; box-shadow:0 0 0 1px var(--line); }
h1 { font-size:26px; margin:0 0 4px; }
h2 { font-size:20px; margin:40px 0 8px; padding-bottom:6px; border-bottom:2px solid var(--line); }
h3 { font-size:16px; margin:24px 0 6px; }
p { margin:6px 0 10px; }
.sub { color:var(--muted); margin:0 0 14px; }
.banner { margin:12px 0 18px; padding:14px 18px; border:3px solid #b7791f; background:#fff4d6; color:#7b4a00;
  font-weight:700; font-size:17px; border-radius:6px; letter-spacing:.2px; }
.cards { display:flex; flex-wrap:wrap; gap:12px; margin:14px 0; }
.card { flex:1 1 160px; border:1px solid var(--line); border-radius:6px; padding:10px 14px; background:var(--bg); }
.card .k { color:var(--muted); font-size:12px; text-transform:uppercase; letter-spacing:.5px; }
.card .v { font-size:20px; font-weight:600; }
.card .s { color:var(--muted); font-size:12px; }
nav.toc { margin:16px 0 8px; padding:10px 16px; border:1px solid var(--line); border-radius:6px; background:var(--bg); }
nav.toc ol { margin:4px 0; padding-left:22px; columns:2; }
nav.toc a { color:var(--accent); text-decoration:none; }
table { border-collapse:collapse; margin:8px 0 14px; font-size:13px; }
th, td { border-bottom:1px solid var(--line); padding:4px 10px; text-align:left; vertical-align:top; }
th { background:var(--bg); font-weight:600; }
table.kv td:first-child { color:var(--muted); white-space:nowrap; }
figure { margin:14px 0 22px; }
figure img { max-width:100%; height:auto; border:1px solid var(--line); border-radius:4px; }
figcaption { color:var(--muted); font-size:13px; margin-top:4px; max-width:980px; }
.note { padding:8px 12px; border-left:4px solid #a0aec0; background:var(--bg); color:var(--muted); }
.warn { padding:8px 12px; border-left:4px solid #c53030; background:#fff5f5; }
code, .mono { font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace; font-size:12.5px; }
details { margin:6px 0 12px; }
summary { cursor:pointer; color:var(--accent); }
footer { margin-top:40px; color:var(--muted); font-size:12px; }
"""

# Counts the images that decoded (naturalWidth > 0) and writes the result into the DOM,
# so a headless browser's --dump-dom shows whether every embedded plot rendered.
_IMG_CHECK_JS = """
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  var el = document.getElementById('img-check');
  el.setAttribute('data-loaded', String(ok));
  el.setAttribute('data-total', String(imgs.length));
  el.textContent = ok + '/' + imgs.length + ' images rendered';
});
"""


# --------------------------------------------------------------------------- loading


@dataclass
class Artifacts:
    """Everything the report reads; ``None`` where a file is missing."""

    run_id: str
    run_dir: Path
    metrics: dict[str, Any]
    params: dict[str, Any] | None = None
    timings: dict[str, Any] | None = None
    val_predictions: pd.DataFrame | None = None
    optuna_trials: pd.DataFrame | None = None
    winner_importance: pd.DataFrame | None = None
    selection: dict[str, Any] | None = None
    rf_importances: pd.DataFrame | None = None
    ablation: dict[str, Any] | None = None
    data_summary: dict[str, Any] | None = None
    train_parquet: Path | None = None
    runs: list[dict[str, Any]] = field(default_factory=list)
    #: file name -> why it could not be read (corrupt, not missing).
    problems: dict[str, str] = field(default_factory=dict)


def _read_optional(path: Path, reader: Callable[[Path], Any], problems: dict[str, str]) -> Any:
    if not path.exists():
        return None
    try:
        return reader(path)
    except Exception as exc:  # a corrupt optional file must not cost the whole report
        log.warning("could not read %s: %s", path, exc)
        problems[f"{path.parent.name}/{path.name}"] = f"{type(exc).__name__}: {exc}"
        return None


def _json(path: Path) -> Any:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def _run_dirs(runs_dir: Path) -> list[Path]:
    """Run directories with a metrics.json, newest first (run ids sort by time)."""
    if not runs_dir.is_dir():
        return []
    return sorted((p for p in runs_dir.iterdir() if (p / "metrics.json").is_file()), key=lambda p: p.name, reverse=True)


def load_artifacts(
    *,
    runs_dir: Path,
    models_dir: Path,
    reports_dir: Path,
    interim_dir: Path,
    run_id: str | None = None,
) -> Artifacts:
    """Read the artifacts of ``run_id`` (default: winner.json's run, else the newest run)."""
    problems: dict[str, str] = {}
    run_dirs = _run_dirs(runs_dir)
    if run_id is None:
        winner = _read_optional(models_dir / "winner.json", _json, problems) or {}
        candidate = winner.get("run_id") if isinstance(winner, dict) else None
        if candidate and (runs_dir / str(candidate) / "metrics.json").is_file():
            run_id = str(candidate)
        elif run_dirs:
            run_id = run_dirs[0].name
        else:
            raise PipelineError(f"no training run with a metrics.json under {runs_dir}: run `make train` first")
    run_dir = runs_dir / run_id
    if not (run_dir / "metrics.json").is_file():
        raise PipelineError(f"run {run_id!r} has no {run_dir / 'metrics.json'}: run `make train` first")
    try:
        metrics = _json(run_dir / "metrics.json")
    except (OSError, ValueError) as exc:
        raise PipelineError(f"{run_dir / 'metrics.json'} is not readable JSON ({exc}): run `make train` again") from exc
    if not isinstance(metrics, dict):
        raise PipelineError(f"{run_dir / 'metrics.json'} is not a JSON object: run `make train` again")

    art = Artifacts(run_id=run_id, run_dir=run_dir, metrics=metrics, problems=problems)
    art.params = _read_optional(run_dir / "params.json", _json, problems)
    art.timings = _read_optional(run_dir / "timings.json", _json, problems)
    art.val_predictions = _read_optional(run_dir / "val_predictions.parquet", pd.read_parquet, problems)
    art.optuna_trials = _read_optional(run_dir / "optuna_trials.csv", pd.read_csv, problems)
    art.winner_importance = _read_optional(run_dir / "winner_importance.csv", pd.read_csv, problems)
    art.selection = _read_optional(models_dir / "selection.json", _json, problems)
    art.rf_importances = _read_optional(models_dir / "rf_importances.parquet", pd.read_parquet, problems)
    art.ablation = _read_optional(reports_dir / "ablation.json", _json, problems)
    art.data_summary = _read_optional(interim_dir / "data_summary.json", _json, problems)
    train = interim_dir / "train.parquet"
    art.train_parquet = train if train.is_file() else None

    for d in run_dirs[:MAX_RUNS]:
        m = _read_optional(d / "metrics.json", _json, problems)
        p = _read_optional(d / "params.json", _json, problems)
        if isinstance(m, dict):
            art.runs.append({"run_id": d.name, "metrics": m, "params": p if isinstance(p, dict) else {}})
    return art


# --------------------------------------------------------------------------- html helpers


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _note(text: str) -> str:
    return f'<p class="note">{_e(text)}</p>'


def _not_available(what: str, make_target: str) -> str:
    return _note(f"{what} not available: run make {make_target}.")


def _fmt(value: Any, spec: str = ".4f", missing: str = "–") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return missing
    try:
        return format(value, spec)
    except (TypeError, ValueError):
        return str(value)


def _fmt_int(value: Any, missing: str = "–") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return missing
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return str(value)


def _pct(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    try:
        return f"{100 * float(value):.{digits}f}%"
    except (TypeError, ValueError):
        return str(value)


_NUMBER = re.compile(r"^[\d\s,.%+\-–/\[\]]+$")
_NOT_NUMBERS = {"", "–", "all", "no labels"}


def _numeric_looking(values: pd.Series) -> bool:
    cells = [str(v) for v in values if str(v) not in _NOT_NUMBERS]
    return bool(cells) and all(_NUMBER.match(c) for c in cells)


def _table(df: pd.DataFrame, name: str, *, css: pd.DataFrame | None = None) -> str:
    """A pandas Styler table without index: text left, number columns (header too) right-aligned.

    ``css`` (same shape as ``df``) styles single cells, e.g. the best value of a column.
    """
    styler = df.style.hide(axis="index").format(escape="html", na_rep="–").set_uuid(name)
    if css is not None:
        styler = styler.apply(lambda _: css, axis=None)
    numeric = [i for i, c in enumerate(df.columns) if _numeric_looking(df[c])]
    if numeric:
        # Numbers never wrap (an interval split over three lines is unreadable); text columns take the slack.
        styler = styler.set_properties(
            subset=[df.columns[i] for i in numeric], **{"text-align": "right", "white-space": "nowrap"}
        )
        styler = styler.set_table_styles(
            [{"selector": f"th.col{i}", "props": "text-align: right; white-space: nowrap;"} for i in numeric],
            overwrite=False,
        )
    return styler.to_html()


def _kv_table(rows: Sequence[tuple[str, Any]]) -> str:
    body = "".join(f"<tr><td>{_e(k)}</td><td class='txt'>{_e(v)}</td></tr>" for k, v in rows)
    return f'<table class="kv">{body}</table>'


# --------------------------------------------------------------------------- plot helpers


def _rc() -> dict[str, Any]:
    rc: dict[str, Any] = {}
    rc.update(sns.axes_style("whitegrid"))
    rc.update(sns.plotting_context("notebook", font_scale=0.85))
    rc.update({"figure.dpi": DPI, "savefig.dpi": DPI, "axes.titleweight": "bold", "svg.hashsalt": "report"})
    return rc


def _figure(width: float, height: float, nrows: int = 1, ncols: int = 1, **kwargs: Any) -> tuple[Figure, Any]:
    # A bare Figure (no pyplot): no global figure registry, nothing to close, Agg canvas.
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    return fig, fig.subplots(nrows, ncols, squeeze=True, **kwargs)


def _img(fig: Figure, alt: str, caption: str) -> str:
    buf = io.BytesIO()
    # No "Software" text chunk: the PNG bytes depend on the plot only.
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    w, h = (int(round(x)) for x in fig.get_size_inches() * DPI)
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{_e(alt)}" width="{w}" height="{h}">'
        f"<figcaption>{caption}</figcaption></figure>"
    )


def _binom_err(rate: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Half-width of a normal-approximation 95% interval of a rate."""
    n = np.maximum(np.asarray(n, dtype=float), 1.0)
    return 1.96 * np.sqrt(np.clip(rate * (1 - rate), 0, None) / n)


def _model_colors(models: Sequence[str]) -> dict[str, Any]:
    # tab10 for the first ten models (in ranking order); past ten, tab20's light shades, not repeats.
    tab20 = sns.color_palette("tab20", n_colors=20)
    palette = tab20[0::2] + tab20[1::2]
    return {m: palette[i % len(palette)] for i, m in enumerate(models)}


# --------------------------------------------------------------------------- header


def _ranking(art: Artifacts) -> list[dict[str, Any]]:
    ranking = art.metrics.get("ranking") or []
    return [r for r in ranking if isinstance(r, dict) and r.get("model") is not None]


def _winner_row(art: Artifacts) -> dict[str, Any]:
    winner = art.metrics.get("winner")
    for row in _ranking(art):
        if row.get("model") == winner:
            return row
    return {}


def _is_demo(art: Artifacts) -> bool:
    sources = (art.data_summary, art.params, art.metrics)
    return any(isinstance(d, dict) and bool(d.get("demo")) for d in sources)


def _run_date(run_id: str) -> str:
    try:
        stamp = dt.datetime.strptime(run_id.split("-")[0], "%Y%m%dT%H%M%SZ")
    except ValueError:
        return "unknown"
    return stamp.strftime("%Y-%m-%d %H:%M UTC")


def _header(art: Artifacts, generated: str) -> str:
    m = art.metrics
    win = _winner_row(art)
    auc = m.get("validation_auc", win.get("auc"))
    ci = ""
    if win.get("auc_lo") is not None and win.get("auc_hi") is not None:
        ci = f"round 1: {_fmt(win.get('auc'))}, 95% CI {_fmt(win['auc_lo'])}–{_fmt(win['auc_hi'])}"
    folds = m.get("validation_folds") or []
    if len(folds) > 1:
        ci = (
            f"rolling-origin mean over rounds {', '.join(str(f['round']) for f in folds)} "
            f"({_fmt_int(sum(f['rows'] for f in folds))} rows: " + ", ".join(_fmt(f["auc"]) for f in folds) + "); " + ci
        )
    parts = [
        "<h1>DSG17 cold start: model ranking</h1>",
        f'<p class="sub">Run <code>{_e(art.run_id)}</code> · trained {_e(_run_date(art.run_id))} · '
        f"report generated {_e(generated)}</p>",
    ]
    if _is_demo(art):
        parts.append(
            '<div class="banner" id="demo-banner">DEMO DATA: these numbers come from the generated demo data set, '
            "not from Deezer's DSG17 files. They show that the pipeline works; they say nothing about real "
            "listening behaviour or the leaderboard.</div>"
        )
    cards = [
        ("winner", _e(m.get("winner", "–")), _e(win.get("note") or "")),
        ("validation ROC AUC", _fmt(auc), _e(ci)),
        ("validation users", _fmt_int(m.get("n_valid")), f"listen rate {_pct(m.get('valid_positive_rate'))}"),
        ("training examples", _fmt_int(m.get("n_train")), "rounds 2..K (+ extra rows)"),
    ]
    parts.append(
        '<div class="cards">'
        + "".join(
            f'<div class="card"><div class="k">{k}</div><div class="v">{v}</div><div class="s">{s}</div></div>'
            for k, v, s in cards
        )
        + "</div>"
    )
    parts.append(
        "<p><b>How validation works.</b> The hidden test row of each user is the first track of a Flow session "
        "at the end of their history. The validation set mirrors it: for every user, round 1 is their "
        "<i>last Flow session start</i> in train, held out, with every feature computed only from rows strictly "
        "earlier in time (of all users). Models learn from earlier rounds (each user's previous Flow session "
        "starts, features again past-only) and are scored on round 1 by ROC AUC, with a bootstrap 95% "
        "confidence interval. A random split over all rows would look far better and predict the leaderboard "
        "far worse (one DSG17 team measured 0.758 on a random split against 0.681 time-ordered).</p>"
    )
    return "\n".join(parts)


# --------------------------------------------------------------------------- ranking


def _ranking_section(art: Artifacts) -> str:
    rows = _ranking(art)
    if not rows:
        return _note("metrics.json has no model ranking: run make train.")
    numeric = pd.DataFrame([{k: r.get(k) for k in _RANKING_COLUMNS} for r in rows])
    shown = pd.DataFrame({"model": [str(r["model"]) for r in rows]})
    css = pd.DataFrame("", index=shown.index, columns=["model"])
    for key, (label, best, kind) in _RANKING_COLUMNS.items():
        values = numeric[key]
        if kind == "auc":
            cells = [
                f"{_fmt(r.get('auc'))} [{_fmt(r.get('auc_lo'), '.3f')}–{_fmt(r.get('auc_hi'), '.3f')}]"
                if r.get("auc_lo") is not None
                else _fmt(r.get("auc"))
                for r in rows
            ]
        elif kind == "int":
            cells = [_fmt_int(v) for v in values]
        elif kind == "budget":
            cells = ["all" if v is None or (isinstance(v, float) and math.isnan(v)) else _fmt_int(v) for v in values]
        elif kind == "str":
            cells = ["" if v is None else str(v) for v in values]
        else:
            cells = [_fmt(float(v), "." + kind[1:] + "f") for v in pd.to_numeric(values, errors="coerce")]
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
        _table(shown, "ranking", css=css),
        "<p>Sorted by validation AUC. The best value of each column is highlighted (highest AUC and accuracy, "
        "lowest log loss, Brier score and seconds). <i>rows used</i> is how many training examples the model "
        'was fitted on; <i>row budget</i> caps it for slow models ("all" = no cap). Fit and predict seconds '
        "are wall-clock on this machine.</p>",
    ]
    notes = art.metrics.get("notes")
    if isinstance(notes, list) and notes:
        parts.append("<ul>" + "".join(f"<li>{_e(n)}</li>" for n in notes) + "</ul>")
    parts.append(_auc_ci_plot(rows, winner))
    return "\n".join(parts)


def _auc_ci_plot(rows: list[dict[str, Any]], winner: Any) -> str:
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
    fig, ax = _figure(9, 0.45 * len(df) + 1.3)
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
    return _img(
        fig,
        "validation AUC per model with confidence intervals",
        "Each dot is a model's AUC on the held-out round; bars are bootstrap 95% intervals over validation "
        "users. Overlapping bars mean the data cannot tell those models apart; the dotted line is chance (0.5).",
    )


# --------------------------------------------------------------------------- curves


def _model_columns(art: Artifacts) -> list[str]:
    vp = art.val_predictions
    if vp is None:
        return []
    ranked = [str(r["model"]) for r in _ranking(art)]
    extra = [c for c in vp.columns if c not in {"example_id", "user_id", "y", *ranked}]
    cols = [m for m in ranked if m in vp.columns] + [c for c in extra if pd.api.types.is_float_dtype(vp[c])]
    return cols


def _roc_plot(art: Artifacts) -> str:
    from sklearn.metrics import roc_auc_score, roc_curve

    vp = art.val_predictions
    if vp is None:
        return _not_available("Validation predictions (val_predictions.parquet)", "train")
    models = _model_columns(art)
    if "y" not in vp.columns or not models:
        return _note("val_predictions.parquet has no label column 'y' or no model columns.")
    y = vp["y"].to_numpy()
    if len(np.unique(y)) < 2:
        return _note("The validation labels are all one class: no ROC curve can be drawn.")
    colors = _model_colors(models)
    fig, ax = _figure(7.5, 6)
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
    return _img(
        fig,
        "ROC curves of all models",
        "Each curve trades listens found against skips wrongly called listens as the threshold moves; the "
        "area under it is the AUC (thick line: the winner). A curve that lies above another everywhere ranks "
        "users better at every threshold; crossing curves mean the choice depends on the operating point.",
    )


def _calibration_plot(art: Artifacts) -> str:
    vp = art.val_predictions
    if vp is None:
        return _not_available("Validation predictions (val_predictions.parquet)", "train")
    models = _model_columns(art)
    if "y" not in vp.columns or not models:
        return ""
    y = vp["y"].to_numpy(dtype=float)
    colors = _model_colors(models)  # the same colour per model as in the ROC plot
    shown = models[:CALIBRATION_MODELS]  # ranking order: the best models; more lines would be unreadable
    fig, (ax, ax2) = _figure(12, 5, 1, 2, width_ratios=[1.1, 1])
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
    return _img(
        fig,
        "calibration plot",
        (f"The {len(shown)} best models by validation AUC. " if len(shown) < len(models) else "")
        + "Left: users grouped into ten equal-count bins of predicted probability; a calibrated model sits on the "
        "diagonal (above it: too pessimistic, below: too optimistic). Right: how spread out the predictions are. "
        f"The dashed line is the validation listen rate ({base:.1%}). AUC only depends on the ranking, so a "
        "badly calibrated model can still rank well; models scored by a decision function (see the table's "
        "notes) are not probabilities at all.",
    )


def _compact_params(params: Any) -> str:
    """``name=value`` pairs with floats cut to 4 significant digits (enough to read, not to copy)."""
    if not isinstance(params, dict) or not params:
        return "–"
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(params.items()))


def _optuna_plot(art: Artifacts) -> str:
    opt = art.metrics.get("optuna") or {}
    facts = []
    if opt:
        facts.append(
            _kv_table(
                [
                    ("study", opt.get("study_name", "–")),
                    (
                        "trials in this run / in the study",
                        f"{opt.get('n_trials_this_run', '–')} / {opt.get('n_trials_total', '–')}",
                    ),
                    ("objective", opt.get("objective", "–")),
                    ("best value", _fmt(opt.get("best_value"))),
                    ("best trial", opt.get("best_trial", "–")),
                    ("best parameters", _compact_params(opt.get("best_params"))),
                    ("tuning seconds (this run)", _fmt(opt.get("seconds"), ",.0f")),
                ]
            )
        )
    trials = art.optuna_trials
    if trials is None:
        return "\n".join([*facts, _not_available("The Optuna trial history (optuna_trials.csv)", "train")])
    if "value" not in trials.columns or "number" not in trials.columns:
        return "\n".join([*facts, _note("optuna_trials.csv has no 'number'/'value' columns.")])
    df = trials.copy()
    df["value"] = pd.to_numeric(df["value"], errors="coerce")
    state = df["state"].astype(str) if "state" in df.columns else pd.Series("COMPLETE", index=df.index)
    complete = df[(state.str.upper().str.contains("COMPLETE")) & df["value"].notna()].sort_values("number")
    n_other = len(df) - len(complete)
    if complete.empty:
        return "\n".join([*facts, _note("No completed Optuna trial yet.")])
    fig, ax = _figure(11, 4.5)
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
            _img(
                fig,
                "Optuna trial history",
                "Each dot is one hyper-parameter trial of the tuned model (colour: the run that made it, since the "
                "study persists across runs); the red line is the best value found so far. The objective is measured "
                "on a training round, never on the validation round, so it does not equal the validation AUC above. "
                f"A line that has stopped rising means more trials are unlikely to help.{extra}",
            ),
        ]
    )


# --------------------------------------------------------------------------- features


def _group_palette(groups: Sequence[str]) -> dict[str, Any]:
    ordered = sorted(set(map(str, groups)))
    palette = sns.color_palette("tab10", n_colors=max(len(ordered), 1))
    return {g: palette[i % len(palette)] for i, g in enumerate(ordered)}


def _rf_section(art: Artifacts) -> str:
    parts: list[str] = []
    sel = art.selection
    if sel:
        rf_params = sel.get("rf_params") if isinstance(sel.get("rf_params"), dict) else {}
        parts.append(
            _kv_table(
                [
                    ("rule", sel.get("rule", "–")),
                    ("threshold", _fmt(sel.get("threshold"), ".6g")),
                    ("features kept", f"{_fmt_int(sel.get('n_selected'))} of {_fmt_int(sel.get('n_all'))}"),
                    ("rows used by the forest", _fmt_int(sel.get("rows_used"))),
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
                f"{_e(json.dumps(rf_params, indent=2, sort_keys=True, default=str))}</pre></details>"
            )
        dropped = [str(f) for f in sel.get("dropped") or []]
        if dropped:
            parts.append(
                f"<details><summary>{len(dropped)} dropped features</summary>"
                f'<p class="mono">{_e(", ".join(dropped))}</p></details>'
            )
        else:
            parts.append("<p>No feature was dropped.</p>")
    else:
        parts.append(_not_available("The selection summary (models/artifacts/selection.json)", "select"))

    rf = art.rf_importances
    if rf is None:
        parts.append(_not_available("Random-forest importances (models/artifacts/rf_importances.parquet)", "select"))
        return "\n".join(parts)
    df = rf.copy()
    if "impurity" not in df.columns or "feature" not in df.columns:
        parts.append(_note("rf_importances.parquet lacks 'feature'/'impurity' columns."))
        return "\n".join(parts)
    # Ranked by impurity, the measure the selection rule reads; permutation is shown beside it as a check.
    df = df.sort_values(["impurity", "feature"], ascending=[False, True]).head(TOP_FEATURES).reset_index(drop=True)
    has_perm = "permutation_mean" in df.columns and pd.to_numeric(df["permutation_mean"], errors="coerce").notna().any()
    selected = df["selected"].astype(bool) if "selected" in df.columns else pd.Series(True, index=df.index)
    fig, axes = _figure(12, 0.28 * len(df) + 1.6, 1, 2 if has_perm else 1, sharey=True)
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
        _img(
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


def _winner_importance_section(art: Artifacts) -> str:
    wi = art.winner_importance
    if wi is None:
        return _not_available("The winner's importances (winner_importance.csv)", "train")
    if "gain" not in wi.columns or "feature" not in wi.columns:
        return _note("winner_importance.csv lacks 'feature'/'gain' columns.")
    df = wi.copy()
    df["group"] = df["group"].astype(str) if "group" in df.columns else "unknown"
    df["gain"] = pd.to_numeric(df["gain"], errors="coerce").fillna(0.0)
    # One bar per feature even if a feature is listed twice.
    df = df.groupby("feature", sort=True).agg(group=("group", "first"), gain=("gain", "sum")).reset_index()
    total = df["gain"].sum()
    by_group = df.groupby("group", sort=True)["gain"].sum().sort_values(ascending=False)
    top = df.sort_values(["gain", "feature"], ascending=[False, True]).head(TOP_FEATURES)
    top = top.assign(share=top["gain"] / total if total > 0 else 0.0)
    palette = _group_palette(df["group"])
    fig, (ax, ax2) = _figure(12, 0.28 * len(top) + 1.6, 1, 2, width_ratios=[2.2, 1])
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
    return _img(
        fig,
        "winner gain importances",
        (f"Source: {_e(art.metrics['importance_source'])}. " if art.metrics.get("importance_source") else "")
        + "Gain is the total loss reduction the trees obtained from splits on a feature: how much the model leans "
        f"on it, not its causal effect. The {_e(lead)} group carries the largest share here; correlated features "
        "split the credit between them, so read groups rather than single features.",
    )


def _ablation_section(art: Artifacts) -> str:
    ab = art.ablation
    if not ab:
        return _not_available("The feature-group ablation (reports/ablation.json)", "evaluate")
    rows = ab.get("rows") or []
    df = pd.DataFrame(rows)
    if df.empty or "group" not in df.columns:
        return _note("reports/ablation.json has no rows.")
    df["group"] = df["group"].astype(str)
    for col in ("n_features", "auc_without", "delta"):
        df[col] = pd.to_numeric(df[col], errors="coerce") if col in df.columns else np.nan
    df = df.sort_values(["delta", "group"], ascending=[False, True]).reset_index(drop=True)
    full = ab.get("full_auc")
    shown = pd.DataFrame(
        {
            "group left out": df["group"],
            "features": [_fmt_int(v) for v in df["n_features"]],
            "AUC without": [_fmt(v) for v in df["auc_without"]],
            "delta (full − without)": [_fmt(v, "+.4f") for v in df["delta"]],
        }
    )
    fig, ax = _figure(9, 0.4 * len(df) + 1.4)
    colors = ["#2f855a" if d > 0 else "#c53030" for d in df["delta"].fillna(0)]
    ax.barh(np.arange(len(df)), df["delta"].fillna(0), color=colors)
    ax.set_yticks(np.arange(len(df)), df["group"])
    ax.invert_yaxis()
    ax.axvline(0, color="#4a5568", lw=0.8)
    ax.set_xlabel("validation AUC lost when the group is removed")
    ax.set_title("Validation AUC lost without each feature group")
    return "\n".join(
        [
            f"<p>Model: {_e(ab.get('model', '–'))}; AUC with every group: <b>{_fmt(full)}</b>.</p>",
            _table(shown, "ablation"),
            _img(
                fig,
                "feature group ablation",
                "Each bar is the validation AUC lost when one feature group is left out and the same model is "
                "refitted (green: the group helps; red: the model is better without it). Groups that overlap "
                "(e.g. user and user × item rates) can each look small while together they matter.",
            ),
        ]
    )


def _selection_effect(art: Artifacts) -> str:
    se = art.metrics.get("selection_effect") or {}
    if not se:
        return _note("metrics.json has no selection_effect: run make train.")
    a, b = se.get("auc_selected"), se.get("auc_all_features")
    delta = (a - b) if isinstance(a, int | float) and isinstance(b, int | float) else None
    n = (art.params or {}).get("selection") or {}
    return _kv_table(
        [
            ("model", se.get("model", "–")),
            (f"AUC with the selected features ({_fmt_int(n.get('n_selected'))})", _fmt(a)),
            (f"AUC with all features ({_fmt_int(n.get('n_all'))})", _fmt(b)),
            ("difference (selected − all)", _fmt(delta, "+.4f")),
        ]
    ) + (
        "<p>A difference inside the AUC interval above means selection mainly made the model smaller and faster; "
        "a clear negative difference would mean the forest threw away signal the winner could use.</p>"
    )


# --------------------------------------------------------------------------- data


def _first(d: dict[str, Any], *keys: str) -> Any:
    for k in keys:
        if k in d and d[k] is not None:
            return d[k]
    return None


def _coalesce(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)


def _flatten(d: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for k in sorted(d, key=str):
        v = d[k]
        name = f"{prefix}{k}"
        if isinstance(v, dict):
            out.extend(_flatten(v, name + "."))
        elif isinstance(v, list):
            out.append((name, ", ".join(map(str, v[:20])) + (" …" if len(v) > 20 else "")))
        else:
            out.append((name, v))
    return out


def _split_facts(s: dict[str, Any], split: str) -> dict[str, Any]:
    """Facts of one split: ``summary[split]`` (ingest's layout) or flat top-level keys (older layouts)."""
    d = s.get(split)
    if isinstance(d, dict):
        return d
    return s if split == "train" else {}


def _data_section(art: Artifacts, explore: pd.DataFrame | None) -> str:
    summary = art.data_summary
    s = summary if isinstance(summary, dict) else {}
    demo = _is_demo(art)
    parts = [
        "<p><b>Data source:</b> "
        + (
            "generated demo data (not Deezer's files)."
            if demo
            else "the user's own DSG17 files (data/raw), validated into data/interim."
        )
        + "</p>"
    ]
    train, test = _split_facts(s, "train"), _split_facts(s, "test")
    full = explore.attrs.get("full_stats", {}) if explore is not None else {}
    rows = [
        (
            "rows",
            _coalesce(_first(train, "rows", "n_rows"), full.get("rows")),
            _first(test, "rows", "n_rows"),
            _fmt_int,
        ),
        ("users", _coalesce(_first(train, "users", "n_users"), full.get("users")), _first(test, "users"), _fmt_int),
        (
            "listened share (is_listened = 1)",
            _coalesce(_first(train, "is_listened_mean", "listen_rate", "positive_rate"), full.get("is_listened")),
            None,
            _pct,
        ),
        (
            "Flow share (listen_type = 1)",
            _coalesce(_first(train, "flow_share"), full.get("flow")),
            test.get("flow_share"),
            _pct,
        ),
        ("users unseen in train", None, test.get("users_unseen_in_train"), _fmt_int),
        ("rows whose track is unseen in train", None, test.get("media_unseen_in_train_rows"), _fmt_int),
    ]
    facts = pd.DataFrame(
        [
            {"": name, "train": fmt(tr) if tr is not None else "–", "test": fmt(te) if te is not None else "–"}
            for name, tr, te, fmt in rows
            if tr is not None or te is not None
        ]
    )
    if train.get("is_listened_1") is not None and train.get("is_listened_0") is not None:
        facts.loc[len(facts)] = [
            "class balance (1 / 0)",
            f"{_fmt_int(train['is_listened_1'])} / {_fmt_int(train['is_listened_0'])}",
            "no labels",
        ]
    facts.loc[len(facts)] = ["demo data", "yes" if demo else "no", ""]
    if summary is None:
        parts.append(_not_available("The data summary (data/interim/data_summary.json)", "data"))
        if explore is not None:
            parts.append("<p>The train figures below are computed from data/interim/train.parquet instead.</p>")
    parts.append(_table(facts, "datafacts"))

    quirks = s.get("quirks")
    if quirks:
        if isinstance(quirks, dict):
            qrows = [{"quirk": k, **(v if isinstance(v, dict) else {"value": v})} for k, v in sorted(quirks.items())]
        else:
            qrows = [q if isinstance(q, dict) else {"quirk": q} for q in quirks]
        q = pd.DataFrame(qrows)
        if "name" in q.columns and "quirk" not in q.columns:
            q = q.rename(columns={"name": "quirk"})
        preferred = ["quirk", "description", "train_rows", "train_share", "test_rows", "test_share", "count", "share"]
        cols = [c for c in preferred if c in q.columns]
        cols += [c for c in q.columns if c not in cols and c != "handling"]
        cols += ["handling"] if "handling" in q.columns else []
        q = q[cols]
        for c in q.columns:
            if c.endswith("rows") or c == "count":
                q[c] = [_fmt_int(v) if v is not None and not pd.isna(v) else "–" for v in q[c]]
            elif c.endswith("share"):
                q[c] = [_pct(v, 3) if isinstance(v, int | float) and not pd.isna(v) else "–" for v in q[c]]
            else:
                q[c] = ["" if v is None or (isinstance(v, float) and pd.isna(v)) else str(v) for v in q[c]]
        q.columns = [c.replace("_", " ") for c in q.columns]
        parts.append("<h3>Quirks found in the data and how they were handled</h3>")
        parts.append(_table(q, "quirks"))
        parts.append(
            "<p>None of these quirks is an error: every row is kept, and the features treat the odd values as "
            "missing where they would otherwise mislead (see <i>handling</i>).</p>"
        )
    elif summary is not None:
        parts.append(_note("data_summary.json lists no quirks."))

    known = {"train", "test", "quirks", "demo"}
    rest = _flatten({k: v for k, v in s.items() if k not in known})
    if rest:
        parts.append(
            f"<details><summary>Other entries of data_summary.json ({len(rest)})</summary>"
            + _kv_table(rest)
            + "</details>"
        )
    return "\n".join(parts)


# --------------------------------------------------------------------------- exploration


def _load_explore(path: Path | None, *, seed: int) -> pd.DataFrame | None:
    """The columns the exploration needs, with ``prior_plays`` of the same user and track added.

    Above EXPLORE_MAX_ROWS a seeded sample of *users* is kept with all their rows, so
    per-user history (repeat plays) stays exact.
    """
    if path is None:
        return None
    available = set(pq.read_schema(path).names)
    cols = [c for c in EXPLORE_COLUMNS if c in available]
    if "is_listened" not in cols:
        return None
    df = pd.read_parquet(path, columns=cols)
    full: dict[str, Any] = {"rows": len(df), "is_listened": float(df["is_listened"].mean()) if len(df) else None}
    if "listen_type" in df.columns:
        full["flow"] = float((df["listen_type"] == 1).mean()) if len(df) else None
    if "user_id" in df.columns:
        users = df["user_id"].to_numpy()
        uniq = np.unique(users)
        full["users"] = len(uniq)
        if len(df) > EXPLORE_MAX_ROWS:
            rng = np.random.default_rng(seed)
            keep_users = uniq[rng.random(len(uniq)) < EXPLORE_MAX_ROWS / len(df)]
            df = df[np.isin(users, keep_users)].reset_index(drop=True)
    if {"user_id", "media_id", "ts_listen"} <= set(df.columns) and len(df):
        u, m, t = df["user_id"].to_numpy(), df["media_id"].to_numpy(), df["ts_listen"].to_numpy()
        order = np.lexsort((t, m, u))
        us, ms = u[order], m[order]
        new = np.ones(len(order), dtype=bool)
        new[1:] = (us[1:] != us[:-1]) | (ms[1:] != ms[:-1])
        idx = np.arange(len(order))
        start = np.maximum.accumulate(np.where(new, idx, 0))
        prior = np.empty(len(order), dtype=np.int32)
        prior[order] = idx - start
        df["prior_plays"] = prior
    df.attrs["full_stats"] = full
    df.attrs["sampled"] = len(df) < full["rows"]
    return df


def _rates(codes: np.ndarray, y: np.ndarray, labels: Sequence[str]) -> pd.DataFrame:
    """Plays and listen rate per bucket (``codes`` index ``labels``); buckets too small to read are dropped.

    np.bincount instead of a groupby on labels: it is what keeps this section fast at 7.5M rows.
    """
    k = len(labels)
    codes = np.asarray(codes, dtype=np.int64)
    plays = np.bincount(codes, minlength=k)[:k]
    listened = np.bincount(codes, weights=np.asarray(y, dtype=float), minlength=k)[:k]
    g = pd.DataFrame({"key": list(labels), "plays": plays, "listened": listened})
    g = g[g["plays"] >= MIN_BUCKET_PLAYS].reset_index(drop=True)
    g["rate"] = g["listened"] / g["plays"]
    g["err"] = _binom_err(g["rate"].to_numpy(), g["plays"].to_numpy())
    return g


def _top_codes(values: np.ndarray, n: int) -> tuple[np.ndarray, list[Any]]:
    """Codes 0..n-1 for the ``n`` most frequent values (ties: smaller value first), n for the rest."""
    uniq, inv, counts = np.unique(values, return_inverse=True, return_counts=True)
    order = np.lexsort((uniq, -counts))[:n]
    rank = np.full(len(uniq), len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return rank[inv.ravel()], uniq[order].tolist()


def _rate_of(g: pd.DataFrame, key: str) -> float | None:
    hit = g.loc[g["key"] == key, "rate"]
    return float(hit.iloc[0]) if len(hit) else None


def _bar_rates(
    ax: Any, g: pd.DataFrame, title: str, base: float, *, color: str = "#2b6cb0", rotate: bool = False
) -> None:
    labels = g["key"].astype(str)
    x = np.arange(len(g))
    ax.bar(x, g["rate"], color=color, alpha=0.85)
    ax.errorbar(x, g["rate"], yerr=g["err"], fmt="none", ecolor="#2d3748", capsize=2, lw=1)
    ax.axhline(base, color="#c53030", ls="--", lw=1)
    ax.set_xticks(x, labels, rotation=35 if rotate else 0, ha="right" if rotate else "center")
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.set_ylabel("listen rate")
    for xi, (r, n) in enumerate(zip(g["rate"], g["plays"], strict=True)):
        ax.text(
            xi,
            min(r + 0.04, 0.97),
            f"{n / 1000:.0f}k" if n >= 10_000 else f"{n:,}",
            ha="center",
            fontsize=7,
            color="#4a5568",
        )


def _genre_plots(df: pd.DataFrame, base: float) -> str:
    if "genre_id" not in df.columns:
        return _note("train.parquet has no genre_id column.")
    g = df.groupby("genre_id", sort=True)["is_listened"].agg(["size", "mean"]).reset_index()
    g.columns = ["genre", "plays", "rate"]
    g["share"] = g["plays"] / g["plays"].sum()
    unknown = g[g["genre"] == 0]
    unknown_text = (
        f"Genre 0 ('unknown') is left out of the bars: it holds {unknown['share'].iloc[0]:.0%} of plays, listened "
        f"{unknown['rate'].iloc[0]:.0%} of the time. "
        if len(unknown)
        else ""
    )
    # Genre 0 would dwarf every real genre (about half of all plays), so the bars rank the known ones.
    top = g[g["genre"] != 0].sort_values(["plays", "genre"], ascending=[False, True]).head(20).reset_index(drop=True)
    if top.empty:
        return _note("Every play has genre_id 0 (unknown): there is no genre to rank.")
    top["label"] = [f"genre {x}" for x in top["genre"]]
    top["err"] = _binom_err(top["rate"].to_numpy(), top["plays"].to_numpy())
    fig, (ax, ax2) = _figure(12, 0.27 * len(top) + 1.3, 1, 2, sharey=True)
    sns.barplot(data=top, y="label", x="share", color="#4a5568", ax=ax, errorbar=None)
    ax.set(xlabel="share of all plays", ylabel="")
    ax.set_title(f"The {len(top)} most played known genres")
    sns.barplot(data=top, y="label", x="rate", color="#2b6cb0", ax=ax2, errorbar=None)
    ax2.errorbar(top["rate"], np.arange(len(top)), xerr=top["err"], fmt="none", ecolor="#2d3748", capsize=2, lw=1)
    ax2.axvline(base, color="#c53030", ls="--", lw=1)
    ax2.set(xlabel="listen rate (95% interval)", ylabel="", xlim=(0, 1))
    ax2.set_title("Their listen rates")
    best = top.loc[top["rate"].idxmax()]
    worst = top.loc[top["rate"].idxmin()]
    out = [
        _img(
            fig,
            "most popular genres and their listen rates",
            f"The most played genres (ids only: the data has no genre names). {unknown_text}Among these, "
            f"{_e(best['label'])} is listened most ({best['rate']:.0%}) and {_e(worst['label'])} least "
            f"({worst['rate']:.0%}); the dashed line is the overall rate ({base:.0%}).",
        )
    ]
    known = g[(g["genre"] != 0) & (g["plays"] >= MIN_GENRE_PLAYS)]
    if len(known) >= 3:
        logp = np.log10(known["plays"].to_numpy(dtype=float))
        rate = known["rate"].to_numpy()
        pearson = float(np.corrcoef(logp, rate)[0, 1])
        spearman = float(np.corrcoef(pd.Series(logp).rank(), pd.Series(rate).rank())[0, 1])
        fig, ax = _figure(9, 5.5)
        sizes = 15 + 120 * (known["plays"] / known["plays"].max())
        ax.scatter(known["plays"], known["rate"], s=sizes, alpha=0.55, color="#2b6cb0", edgecolor="white", lw=0.5)
        slope, icpt = np.polyfit(logp, rate, 1)
        xs = np.linspace(logp.min(), logp.max(), 50)
        ax.plot(10**xs, icpt + slope * xs, color="#c53030", lw=1.5)
        ax.set_xscale("log")
        # Plain numbers on the log axis: "1,000" reads better than "10^3", and a narrow range still gets labels.
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        if logp.max() - logp.min() < 1:
            ax.xaxis.set_major_locator(MaxNLocator(6))
        ax.set(xlabel="plays of the genre (log scale)", ylabel="listen rate of the genre", ylim=(0, 1))
        ax.set_title(f"Genre popularity vs listen rate (Spearman ρ = {spearman:.2f}, n = {len(known)} genres)")
        strength = "hardly" if abs(spearman) < 0.1 else ("weakly" if abs(spearman) < 0.3 else "clearly")
        direction = "more" if spearman > 0 else "less"
        out.append(
            _img(
                fig,
                "genre popularity versus listen rate",
                f"One dot per known genre with at least {MIN_GENRE_PLAYS} plays (size: plays). Popular genres are "
                f"{strength} {direction} listened: Spearman ρ = {spearman:.2f}, Pearson r (log plays) = "
                f"{pearson:.2f}; red: least-squares line. Small genres scatter widely because their rates rest on "
                "few plays.",
            )
        )
    return "\n".join(out)


def _days_since_release(df: pd.DataFrame) -> np.ndarray:
    rd = df["release_date"].to_numpy()
    uniq, inv = np.unique(rd, return_inverse=True)
    parsed = pd.to_datetime(pd.Series(uniq).astype(str), format="%Y%m%d", errors="coerce")
    secs = (parsed - pd.Timestamp("1970-01-01")).dt.total_seconds().to_numpy(dtype=float, copy=True)
    secs[np.isin(uniq, RELEASE_PLACEHOLDERS)] = np.nan
    ts = df["ts_listen"].to_numpy().astype(float)
    ts[ts < MIN_VALID_TS] = np.nan
    return (ts - secs[inv]) / 86400.0


def _track_plots(df: pd.DataFrame, base: float) -> str:
    y = df["is_listened"].to_numpy()
    panels: list[tuple[str, pd.DataFrame, bool]] = []
    facts: list[str] = []
    if "media_duration" in df.columns:
        d = df["media_duration"].to_numpy()
        labels = ["0 (unknown)", "< 2 min", "2–3 min", "3–4 min", "4–5 min", "5–7 min", "7+ min"]
        b = np.where(d <= 0, 0, np.digitize(d, [1, 120, 180, 240, 300, 420]))
        panels.append(("Track duration", _rates(b, y, labels), True))
    if {"release_date", "ts_listen"} <= set(df.columns):
        days = _days_since_release(df)
        labels = [
            "before release",
            "< 1 month",
            "1–6 months",
            "6–12 months",
            "1–3 years",
            "3–10 years",
            "10+ years",
            "unknown",
        ]
        b = np.where(np.isnan(days), 7, np.digitize(days, [0, 30, 182, 365, 3 * 365, 10 * 365]))
        panels.append(("Release age at listening", _rates(b, y, labels), True))
    if "prior_plays" in df.columns:
        prior = df["prior_plays"].to_numpy()
        labels = ["first play", "2nd", "3rd–5th", "6th–10th", "11th+"]
        panels.append(("This user's play of the track", _rates(np.digitize(prior, [1, 2, 5, 10]), y, labels), True))
        first, again = y[prior == 0], y[prior > 0]
        if len(first) and len(again):
            facts.append(
                f"first plays of a track by a user are listened {first.mean():.0%} of the time against "
                f"{again.mean():.0%} for repeats"
            )
    if "context_type" in df.columns:
        codes, top = _top_codes(df["context_type"].to_numpy(), 10)
        panels.append(("Context type (top 10 by plays)", _rates(codes, y, [*(f"ctx {c}" for c in top), "other"]), True))
    if "listen_type" in df.columns:
        g = _rates(np.where(df["listen_type"].to_numpy() == 1, 0, 1), y, ["Flow", "not Flow"])
        panels.append(("Flow vs user-chosen", g, False))
        flow, other = _rate_of(g, "Flow"), _rate_of(g, "not Flow")
        if flow is not None and other is not None:
            facts.append(f"Flow plays are listened {flow:.0%} vs {other:.0%} for the rest")
    if "platform_name" in df.columns:
        codes, top = _top_codes(df["platform_name"].to_numpy(), 10)
        panels.append(("Platform", _rates(codes, y, [*(f"platform {c}" for c in top), "other"]), False))
    if not panels:
        return _note("train.parquet lacks the track columns.")
    ncols = 3
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = _figure(13, 3.9 * nrows, nrows, ncols)
    axes = np.atleast_1d(axes).ravel()
    for ax, (title, g, rotate) in zip(axes, panels, strict=False):
        _bar_rates(ax, g, title, base, rotate=rotate)
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    fact = ("; ".join(facts) + ".") if facts else ""
    return _img(
        fig,
        "listen rate by track and play features",
        "Listen rate (share of plays kept past 30 s) per bucket, with 95% intervals and the number of plays above "
        f"each bar (buckets with fewer than {MIN_BUCKET_PLAYS} plays are left out); the dashed line is the overall "
        "rate. Release age is days from the album's release to the play (placeholder dates 1900-01-01 / "
        "3000-01-01 count as unknown; 'before release' plays are a known quirk). "
        f"{_e(fact[:1].upper() + fact[1:])}",
    )


def _time_plots(df: pd.DataFrame) -> str:
    if "ts_listen" not in df.columns:
        return _note("train.parquet has no ts_listen column.")
    ts = df["ts_listen"].to_numpy().astype(np.int64)
    valid = ts >= MIN_VALID_TS
    n_broken = int((~valid).sum())
    t = ts[valid]
    y = df["is_listened"].to_numpy()[valid].astype(float)
    flow = df["listen_type"].to_numpy()[valid] == 1 if "listen_type" in df.columns else np.zeros(len(t), dtype=bool)
    days = t // 86400
    uniq, inv = np.unique(days, return_inverse=True)
    keys = {
        "hour (UTC)": ((t % 86400) // 3600, 24),
        "weekday": ((days + 3) % 7, 7),  # 1970-01-01 was a Thursday; 0 = Monday
        "day of month": (pd.to_datetime(uniq, unit="D").day.to_numpy()[inv.ravel()], 32),
    }
    weekdays = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    colors = {"Flow": "#2b6cb0", "not Flow": "#dd6b20"}
    fig, axes = _figure(13, 6.8, 2, 3, sharex="col")
    swings = []
    for j, (col, (v, k)) in enumerate(keys.items()):
        vol = np.bincount(v, minlength=k)
        x = np.arange(k)
        shown = x >= (1 if col == "day of month" else 0)
        axes[0, j].bar(x[shown], vol[shown] / max(len(t), 1), color="#a0aec0")
        axes[0, j].set_title(f"Plays by {col}")
        axes[0, j].set_ylabel("share of plays" if j == 0 else "")
        for name, mask in (("Flow", flow), ("not Flow", ~flow)):
            n = np.bincount(v[mask], minlength=k)
            listened = np.bincount(v[mask], weights=y[mask], minlength=k)
            ok = n >= MIN_BUCKET_PLAYS
            if not ok.any():
                continue
            rate = listened[ok] / n[ok]
            axes[1, j].plot(x[ok], rate, marker="o", ms=4, lw=1.5, color=colors[name])
            if name == "Flow" and ok.sum() > 1:
                swings.append(f"{col}: {rate.min():.0%}–{rate.max():.0%}")
        axes[1, j].set_ylabel("listen rate" if j == 0 else "")
        axes[1, j].set_xlabel(col)
        if col == "weekday":
            axes[1, j].set_xticks(range(7), weekdays)
    fig.legend(
        handles=[
            Line2D([], [], color=c, marker="o", label=k) for k, c in (("Flow", "#2b6cb0"), ("not Flow", "#dd6b20"))
        ],
        loc="outside lower center",
        ncol=2,
        fontsize=9,
    )
    if n_broken:
        broken = f"{n_broken:,} plays with broken-clock timestamps (before 2010) are excluded. "
    else:
        broken = "No broken-clock timestamp (before 2010) was found. "
    swing = ("Flow listen rate ranges over " + "; ".join(swings) + ". ") if swings else ""
    return _img(
        fig,
        "listening by hour, weekday and day of month",
        "Top: when plays happen; bottom: listen rate of Flow and user-chosen plays at that time (points with "
        f"fewer than {MIN_BUCKET_PLAYS} plays hidden). Hours are UTC (the data has no time zone). {broken}{swing}"
        "Time effects that differ between Flow and non-Flow plays are worth a time feature; a flat Flow line "
        "says timing matters little for the test rows.",
    )


def _explore_section(art: Artifacts, df: pd.DataFrame | None) -> str:
    if art.train_parquet is None:
        return _not_available("data/interim/train.parquet", "data")
    if df is None or df.empty:
        return _note("data/interim/train.parquet could not be read, or has no is_listened column or no rows.")
    base = float(df["is_listened"].mean())
    full = df.attrs.get("full_stats", {})
    sample = (
        f"<p>Computed on a seeded sample of users ({len(df):,} of {full.get('rows', 0):,} rows, every row of each "
        "sampled user kept so repeat plays stay exact).</p>"
        if df.attrs.get("sampled")
        else f"<p>Computed on all {len(df):,} train rows (all plays, Flow and not; the test rows are Flow session "
        "starts, so levels here are higher than the test's).</p>"
    )
    return "\n".join(
        [
            sample,
            "<h3>Which genres are played most, and are they listened?</h3>",
            _guard(_genre_plots, df, base),
            "<h3>Which track and play features go with being listened?</h3>",
            _guard(_track_plots, df, base),
            "<h3>When do people listen?</h3>",
            _guard(_time_plots, df),
        ]
    )


# --------------------------------------------------------------------------- metadata


def _metadata_section(art: Artifacts) -> str:
    p = art.params or {}
    parts: list[str] = []
    if art.params is None:
        parts.append(_not_available("runs/<id>/params.json", "train"))
    rows = [
        ("run id", art.run_id),
        ("data fingerprint", p.get("data_fingerprint", "–")),
        ("seed", p.get("seed", "–")),
        ("demo data", "yes" if _is_demo(art) else "no"),
        (
            "training examples / validation users",
            f"{_fmt_int(art.metrics.get('n_train'))} / {_fmt_int(art.metrics.get('n_valid'))}",
        ),
    ]
    versions = p.get("versions") or {}
    rows += [(f"version: {k}", v) for k, v in sorted(versions.items())]
    parts.append(_kv_table(rows))
    for key, title in (("feature_params", "Feature parameters"), ("model_params", "Model parameters")):
        if p.get(key):
            parts.append(
                f"<details><summary>{title}</summary><pre class='mono'>"
                f"{_e(json.dumps(p[key], indent=2, sort_keys=True, default=str))}</pre></details>"
            )
    timings = art.timings if isinstance(art.timings, dict) else art.metrics.get("timings")
    if timings:
        t = pd.Series({str(k): float(v) for k, v in timings.items() if isinstance(v, int | float)}).sort_index()
        total = t.get("total", t.sum())
        parts.append(f"<h3>Time per stage (total {total:,.1f} s)</h3>")
        stages = t.drop("total", errors="ignore")
        if len(stages):
            fig, ax = _figure(9, 0.35 * len(stages) + 1.2)
            order = stages.sort_values(ascending=False)
            ax.barh(np.arange(len(order)), order.to_numpy(), color="#4a5568")
            ax.set_yticks(np.arange(len(order)), order.index)
            ax.invert_yaxis()
            ax.set_xlabel("seconds")
            for i, v in enumerate(order.to_numpy()):
                ax.text(v, i, f" {v:,.1f}", va="center", fontsize=8)
            ax.set_title("Wall-clock seconds per training stage")
            parts.append(_img(fig, "time per stage", "Where this run's time went, from timings.json."))
    else:
        parts.append(_not_available("Stage timings (timings.json)", "train"))
    return "\n".join(parts)


def _runs_section(art: Artifacts) -> str:
    if not art.runs:
        return _note("No earlier run found.")
    rows = []
    for r in art.runs:
        m, p = r["metrics"], r["params"]
        opt = m.get("optuna") or {}
        timings = m.get("timings") or {}
        secs = (
            timings.get("total")
            if "total" in timings
            else sum(v for v in timings.values() if isinstance(v, int | float))
        )
        rows.append(
            {
                "run id": r["run_id"] + (" (this report)" if r["run_id"] == art.run_id else ""),
                "date": _run_date(r["run_id"]),
                "winner": str(m.get("winner", "–")),
                "validation AUC": _fmt(m.get("validation_auc")),
                "trials (run / study)": f"{opt.get('n_trials_this_run', '–')} / {opt.get('n_trials_total', '–')}",
                "seconds": _fmt(secs, ",.0f") if timings else "–",
                "features": _fmt_int((p.get("selection") or {}).get("n_selected")),
                "demo": "yes" if p.get("demo") or m.get("demo") else "no",
                "data fingerprint": str(p.get("data_fingerprint", "–"))[:12],
            }
        )
    df = pd.DataFrame(rows)
    css = pd.DataFrame("", index=df.index, columns=df.columns)
    css.loc[[i for i, r in enumerate(art.runs) if r["run_id"] == art.run_id], :] = "font-weight:700"
    return _table(df, "runs", css=css) + (
        "<p>Newest first. Runs on different data fingerprints are not comparable; on the same data, a change in "
        "AUC smaller than the confidence interval is noise.</p>"
    )


# --------------------------------------------------------------------------- assembly


def _guard(fn: Callable[..., str], *args: Any) -> str:
    """Run one section builder; a failure becomes a visible note instead of a lost report."""
    try:
        return fn(*args)
    except Exception as exc:
        log.warning("report: %s could not be drawn", fn.__name__, exc_info=True)
        return f'<p class="warn">This part could not be drawn ({_e(type(exc).__name__)}: {_e(exc)}).</p>'


def render_report(art: Artifacts, *, seed: int, generated: str | None = None) -> str:
    """The report's HTML for the loaded artifacts (deterministic apart from ``generated``)."""
    generated = generated or dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    with matplotlib.rc_context(_rc()):
        explore = None
        if art.train_parquet is not None:
            try:
                explore = _load_explore(art.train_parquet, seed=seed)
            except Exception as exc:
                log.warning("report: could not read %s", art.train_parquet, exc_info=True)
                art.problems[f"{art.train_parquet.parent.name}/{art.train_parquet.name}"] = (
                    f"{type(exc).__name__}: {exc}"
                )
        sections: list[tuple[str, str, str]] = [
            ("ranking", "Model ranking", _guard(_ranking_section, art)),
            ("curves", "ROC curves", _guard(_roc_plot, art)),
            ("calibration", "Calibration", _guard(_calibration_plot, art)),
            ("tuning", "Hyper-parameter search (Optuna)", _guard(_optuna_plot, art)),
            ("selection", "Feature selection (random forest)", _guard(_rf_section, art)),
            ("winner-importance", "What the winner relies on", _guard(_winner_importance_section, art)),
            ("ablation", "Feature-group ablation", _guard(_ablation_section, art)),
            ("selection-effect", "The winner with and without selection", _guard(_selection_effect, art)),
            ("data", "The data", _guard(_data_section, art, explore)),
            ("exploration", "Exploring the listening data", _guard(_explore_section, art, explore)),
            ("metadata", "Run metadata", _guard(_metadata_section, art)),
            ("runs", f"Last {MAX_RUNS} runs", _guard(_runs_section, art)),
        ]
    problems = ""
    if art.problems:
        items = "".join(f"<li><code>{_e(k)}</code>: {_e(v)}</li>" for k, v in sorted(art.problems.items()))
        problems = f'<div class="warn"><b>Files that exist but could not be read:</b><ul>{items}</ul></div>'
    toc = "".join(f'<li><a href="#{sid}">{_e(title)}</a></li>' for sid, title, _ in sections)
    body = "\n".join(
        f'<section id="{sid}">\n<h2>{_e(title)}</h2>\n{content}\n</section>' for sid, title, content in sections
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>DSG17 model ranking: run {_e(art.run_id)}</title>\n"
        f'<style>{_CSS}</style>\n</head>\n<body>\n<div class="page">\n<header>\n{_header(art, generated)}\n</header>\n'
        f"{problems}\n"
        f'<nav class="toc"><b>Contents</b><ol>{toc}</ol></nav>\n<main>\n{body}\n</main>\n'
        "<footer>Built by <code>python -m pipeline.report</code> from the run's artifact files only (no model was "
        'refitted). Every plot is embedded; the file needs no network. <span id="img-check" hidden></span></footer>\n'
        f"</div>\n<script>{_IMG_CHECK_JS}</script>\n</body>\n</html>\n"
    )


def build_report(
    *,
    out: Path | None = None,
    runs_dir: Path | None = None,
    models_dir: Path | None = None,
    reports_dir: Path | None = None,
    interim_dir: Path | None = None,
    run_id: str | None = None,
    seed: int | None = None,
) -> Path:
    """Load the artifacts and write the report atomically; roots default to core.config."""
    reports_dir = Path(reports_dir or config.REPORTS)
    out = Path(out or reports_dir / "model_ranking.html")
    art = load_artifacts(
        runs_dir=Path(runs_dir or config.RUNS),
        models_dir=Path(models_dir or config.MODELS_DIR),
        reports_dir=reports_dir,
        interim_dir=Path(interim_dir or config.INTERIM),
        run_id=run_id,
    )
    page = render_report(art, seed=config.SEED if seed is None else seed)
    write_text(page, out)
    return out


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None, help="HTML file to write (default reports/model_ranking.html)")
    ap.add_argument("--run-id", default=None, help="run to report (default: models/artifacts/winner.json, else newest)")
    ap.add_argument("--runs-dir", type=Path, default=None, help="default: runs/")
    ap.add_argument("--models-dir", type=Path, default=None, help="default: models/artifacts/")
    ap.add_argument("--reports-dir", type=Path, default=None, help="default: reports/ (reads ablation.json)")
    ap.add_argument("--interim-dir", type=Path, default=None, help="default: data/interim/")
    ap.add_argument("--seed", type=int, default=None, help="sampling seed (default core.config.SEED)")
    args = ap.parse_args(argv)
    start = time.perf_counter()
    out = build_report(
        out=args.out,
        runs_dir=args.runs_dir,
        models_dir=args.models_dir,
        reports_dir=args.reports_dir,
        interim_dir=args.interim_dir,
        run_id=args.run_id,
        seed=args.seed,
    )
    log.info("report written to %s (%.1f s)", out, time.perf_counter() - start)


if __name__ == "__main__":
    run_cli(main)
