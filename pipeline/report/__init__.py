"""Write the self-contained HTML report of a training run: ``reports/model_ranking.html``.

The report is built from the artifact files only (``runs/<id>/``, ``models/artifacts/``,
``reports/ablation.json``, ``data/interim/``): it never refits a model.  Every plot is a
base64 PNG inside the file and the CSS is inline, so the file opens offline, can be
mailed, and reads the same for someone who did not run the pipeline.

Each section degrades on its own: a missing optional artifact gives a short
"not available: run make ..." note in that section, and a section that fails to draw
logs a warning and says so in place, so a plotting problem never costs a finished
training run its report.  Only a run without ``metrics.json`` is an error.

Layout: ``artifacts`` (loading), ``explore`` (re-reading train.parquet for the exploration),
``html`` and ``plots`` (helpers), ``sections/`` (one module per section family, each returning
an HTML fragment), ``page`` (assembly into ``templates/page.html.j2``), ``cli`` (writing, CLI).

Usage: ``python -m pipeline.report [--out reports/model_ranking.html] [--run-id ID]``.
"""

from pipeline.report.artifacts import Artifacts, load_artifacts
from pipeline.report.cli import build_report, main
from pipeline.report.page import render_report

__all__ = ["build_report", "render_report", "load_artifacts", "Artifacts", "main"]
