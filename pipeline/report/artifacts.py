"""The run files the report reads, loaded once into an ``Artifacts``, and small facts derived from them.

Layout read: ``runs/<id>/`` (metrics.json, params.json, timings.json, val_predictions.parquet,
optuna_trials.csv, winner_importance.csv), ``models/artifacts/`` (winner.json, selection.json,
rf_importances.parquet), ``reports/ablation.json`` and ``data/interim/`` (data_summary.json; the path
of train.parquet, which the exploration reads itself).  Only a run without ``metrics.json`` is an
error; any other file may be missing (``None``) or unreadable (listed in ``problems``).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from core.errors import PipelineError

__all__ = ["Artifacts", "MAX_RUNS", "load_artifacts", "ranking_rows", "winner_row", "is_demo", "run_date"]

log = logging.getLogger("pipeline.report")

#: Runs shown side by side at the end.
MAX_RUNS = 5


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
    recommendations: dict[str, Any] | None = None
    recommend_eval: dict[str, Any] | None = None
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
    art.recommendations = _read_optional(reports_dir / "recommendations.json", _json, problems)
    art.recommend_eval = _read_optional(reports_dir / "recommend_eval.json", _json, problems)
    art.data_summary = _read_optional(interim_dir / "data_summary.json", _json, problems)
    train = interim_dir / "train.parquet"
    art.train_parquet = train if train.is_file() else None

    for d in run_dirs[:MAX_RUNS]:
        m = _read_optional(d / "metrics.json", _json, problems)
        p = _read_optional(d / "params.json", _json, problems)
        if isinstance(m, dict):
            art.runs.append({"run_id": d.name, "metrics": m, "params": p if isinstance(p, dict) else {}})
    return art


def ranking_rows(art: Artifacts) -> list[dict[str, Any]]:
    """The ranking rows of metrics.json that name a model, in their saved order (best first)."""
    ranking = art.metrics.get("ranking") or []
    return [r for r in ranking if isinstance(r, dict) and r.get("model") is not None]


def winner_row(art: Artifacts) -> dict[str, Any]:
    """The ranking row of the winner, or ``{}``."""
    winner = art.metrics.get("winner")
    for row in ranking_rows(art):
        if row.get("model") == winner:
            return row
    return {}


def is_demo(art: Artifacts) -> bool:
    """True when any of data_summary, params or metrics says the run used the demo data."""
    sources = (art.data_summary, art.params, art.metrics)
    return any(isinstance(d, dict) and bool(d.get("demo")) for d in sources)


def run_date(run_id: str) -> str:
    """The UTC time encoded in a run id (``YYYYmmddTHHMMSSZ-...``), or ``unknown``."""
    try:
        stamp = dt.datetime.strptime(run_id.split("-")[0], "%Y%m%dT%H%M%SZ")
    except ValueError:
        return "unknown"
    return stamp.strftime("%Y-%m-%d %H:%M UTC")
