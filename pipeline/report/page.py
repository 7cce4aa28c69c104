"""Assemble the report: run every section (each guarded) and fill the page skeleton ``templates/page.html.j2``.

The skeleton (head, header, problems box, table of contents, sections, footer) is a jinja2 template;
the stylesheet and the image-check script are plain files next to it (``report.css``,
``img_check.js``), read as text and inserted unparsed, so a ``{#`` in CSS or JS can never be taken
for template syntax.  Section bodies arrive as escaped HTML and go in as ``Markup``; everything else
the template prints is escaped by jinja2's autoescape.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import jinja2
import matplotlib
from markupsafe import Markup

from pipeline.report import plots
from pipeline.report.artifacts import MAX_RUNS, Artifacts
from pipeline.report.explore import load_explore
from pipeline.report.html import esc, guard
from pipeline.report.sections.data import data_section
from pipeline.report.sections.diagnostics import paired_section, segments_section
from pipeline.report.sections.exploration import exploration_section
from pipeline.report.sections.features import (
    ablation_section,
    selection_effect_section,
    selection_section,
    winner_importance_section,
)
from pipeline.report.sections.header import header_section
from pipeline.report.sections.metadata import metadata_section, runs_section
from pipeline.report.sections.ranking import calibration_section, ranking_section, roc_section
from pipeline.report.sections.recommendations import recommendations_section
from pipeline.report.sections.tuning import tuning_section

__all__ = ["TEMPLATES", "Section", "render_page", "render_report"]

log = logging.getLogger("pipeline.report")

TEMPLATES = Path(__file__).parent / "templates"


class Section(NamedTuple):
    """One ``<section>`` of the page: its anchor id, its heading and its HTML body."""

    id: str
    title: str
    body: str


@functools.cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(["html", "html.j2"]),
        keep_trailing_newline=True,  # the page ends with a newline, like every text file we write
        undefined=jinja2.StrictUndefined,  # a misspelt variable fails loudly instead of printing nothing
        # Plain values go through the sections' own escaping (html.escape), so the whole page spells
        # entities one way (&#x27;, not markupsafe's &#39;); Markup passes untouched.
        finalize=lambda value: value if isinstance(value, Markup) else Markup(esc(value)),
    )


def _asset(name: str) -> Markup:
    return Markup((TEMPLATES / name).read_text(encoding="utf-8"))


def render_page(
    *, title: str, header: str, sections: Sequence[Section], problems: Mapping[str, str] | None = None
) -> str:
    """Fill the page skeleton; ``header`` and each section body are trusted (already escaped) HTML."""
    template = _environment().get_template("page.html.j2")
    return template.render(
        title=title,
        header=Markup(header),
        problems=sorted((problems or {}).items()),
        sections=[Section(s.id, s.title, Markup(s.body)) for s in sections],
        css=_asset("report.css"),
        img_check_js=_asset("img_check.js"),
    )


def render_report(art: Artifacts, *, seed: int, generated: str | None = None) -> str:
    """The report's HTML for the loaded artifacts (deterministic apart from ``generated``)."""
    generated = generated or dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    with matplotlib.rc_context(plots.rc_params()):
        explore = None
        if art.train_parquet is not None:
            try:
                explore = load_explore(art.train_parquet, seed=seed)
            except Exception as exc:
                log.warning("report: could not read %s", art.train_parquet, exc_info=True)
                art.problems[f"{art.train_parquet.parent.name}/{art.train_parquet.name}"] = (
                    f"{type(exc).__name__}: {exc}"
                )
        sections = [
            Section("ranking", "Model ranking", guard(ranking_section, art)),
            Section("curves", "ROC curves", guard(roc_section, art)),
            Section("calibration", "Calibration", guard(calibration_section, art)),
            Section("tuning", "Hyper-parameter search (Optuna)", guard(tuning_section, art)),
            Section("selection", "Feature selection (random forest)", guard(selection_section, art)),
            Section("winner-importance", "What the winner relies on", guard(winner_importance_section, art)),
            Section("ablation", "Feature-group ablation", guard(ablation_section, art)),
            Section("selection-effect", "With and without selection", guard(selection_effect_section, art)),
            Section("segments", "Where the winner is right and wrong", guard(segments_section, art)),
            Section("paired", "Every model against the winner", guard(paired_section, art)),
            Section("recommendations", "Recommendations", guard(recommendations_section, art)),
            Section("data", "The data", guard(data_section, art, explore)),
            Section("exploration", "Exploring the listening data", guard(exploration_section, art, explore)),
            Section("metadata", "Run metadata", guard(metadata_section, art)),
            Section("runs", f"Last {MAX_RUNS} runs", guard(runs_section, art)),
        ]
    return render_page(
        title=f"DSG17 model ranking: run {art.run_id}",
        header=header_section(art, generated),
        sections=sections,
        problems=art.problems,
    )
