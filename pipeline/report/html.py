"""HTML text helpers: escaping, number formatting, tables, notes, and the guard around each section.

Every helper returns an already-escaped HTML fragment; the page template inserts them as they are.
"""

from __future__ import annotations

import html  # the standard library's (absolute import), not this module
import logging
import math
import re
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

__all__ = ["esc", "note", "not_available", "fmt", "fmt_int", "pct", "table", "kv_table", "guard"]

log = logging.getLogger("pipeline.report")


def esc(value: Any) -> str:
    """HTML-escape any value (quotes too: the result may go inside an attribute)."""
    return html.escape(str(value), quote=True)


def note(text: str) -> str:
    """A grey note paragraph."""
    return f'<p class="note">{esc(text)}</p>'


def not_available(what: str, make_target: str) -> str:
    """The note of a missing optional artifact, naming the make target that writes it."""
    return note(f"{what} not available: run make {make_target}.")


def fmt(value: Any, spec: str = ".4f", missing: str = "–") -> str:
    """``value`` formatted with ``spec``; ``missing`` for None/NaN/inf."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return missing
    try:
        return format(value, spec)
    except (TypeError, ValueError):
        return str(value)


def fmt_int(value: Any, missing: str = "–") -> str:
    """An integer with thousands separators; ``missing`` for None/NaN/inf."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return missing
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return str(value)


def pct(value: Any, digits: int = 1) -> str:
    """A share as a percentage with ``digits`` decimals."""
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


def table(df: pd.DataFrame, name: str, *, css: pd.DataFrame | None = None) -> str:
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


def kv_table(rows: Sequence[tuple[str, Any]]) -> str:
    """A two-column key/value table."""
    body = "".join(f"<tr><td>{esc(k)}</td><td class='txt'>{esc(v)}</td></tr>" for k, v in rows)
    return f'<table class="kv">{body}</table>'


def guard(fn: Callable[..., str], *args: Any) -> str:
    """Run one section builder; a failure becomes a visible note instead of a lost report."""
    try:
        return fn(*args)
    except Exception as exc:
        log.warning("report: %s could not be drawn", fn.__name__, exc_info=True)
        return f'<p class="warn">This part could not be drawn ({esc(type(exc).__name__)}: {esc(exc)}).</p>'
