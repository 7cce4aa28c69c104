"""Write the self-contained HTML report of a training run: ``reports/model_ranking.html``.

``build_report`` loads the run's artifacts, renders the page and writes it atomically;
``main`` is the command line (``python -m pipeline.report [--out ...] [--run-id ...]``).
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Sequence
from pathlib import Path

from core import config
from core.io import write_text
from core.settings import ModelSettings, load
from pipeline.report.artifacts import load_artifacts
from pipeline.report.page import render_report

__all__ = ["build_report", "main"]

log = logging.getLogger("pipeline.report")


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
    """Load the artifacts and write the report atomically; roots default to core.config.

    ``seed`` (the exploration's sampling seed) defaults to the models' SEED setting, the one
    the run was trained with.
    """
    reports_dir = Path(reports_dir or config.REPORTS)
    out = Path(out or reports_dir / "model_ranking.html")
    art = load_artifacts(
        runs_dir=Path(runs_dir or config.RUNS),
        models_dir=Path(models_dir or config.MODELS_DIR),
        reports_dir=reports_dir,
        interim_dir=Path(interim_dir or config.INTERIM),
        run_id=run_id,
    )
    page = render_report(art, seed=load(ModelSettings).seed if seed is None else seed)
    write_text(page, out)
    return out


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: ``python -m pipeline.report [--out ...] [--run-id ...]``."""
    ap = argparse.ArgumentParser(prog="python -m pipeline.report", description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None, help="HTML file to write (default reports/model_ranking.html)")
    ap.add_argument("--run-id", default=None, help="run to report (default: models/artifacts/winner.json, else newest)")
    ap.add_argument("--runs-dir", type=Path, default=None, help="default: runs/")
    ap.add_argument("--models-dir", type=Path, default=None, help="default: models/artifacts/")
    ap.add_argument("--reports-dir", type=Path, default=None, help="default: reports/ (reads ablation.json)")
    ap.add_argument("--interim-dir", type=Path, default=None, help="default: data/interim/")
    ap.add_argument("--seed", type=int, default=None, help="sampling seed (default: the SEED setting, 42)")
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
