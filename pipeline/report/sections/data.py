"""The data: facts of train and test from data_summary.json (or train.parquet), and the quirks found."""

from __future__ import annotations

from typing import Any

import pandas as pd

from pipeline.report.artifacts import Artifacts, is_demo
from pipeline.report.html import fmt_int, kv_table, not_available, note, pct, table

__all__ = ["data_section"]


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


def data_section(art: Artifacts, explore: pd.DataFrame | None) -> str:
    """Train/test facts, class balance and the quirks table of data_summary.json."""
    summary = art.data_summary
    s = summary if isinstance(summary, dict) else {}
    demo = is_demo(art)
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
            fmt_int,
        ),
        ("users", _coalesce(_first(train, "users", "n_users"), full.get("users")), _first(test, "users"), fmt_int),
        (
            "listened share (is_listened = 1)",
            _coalesce(_first(train, "is_listened_mean", "listen_rate", "positive_rate"), full.get("is_listened")),
            None,
            pct,
        ),
        (
            "Flow share (listen_type = 1)",
            _coalesce(_first(train, "flow_share"), full.get("flow")),
            test.get("flow_share"),
            pct,
        ),
        ("users unseen in train", None, test.get("users_unseen_in_train"), fmt_int),
        ("rows whose track is unseen in train", None, test.get("media_unseen_in_train_rows"), fmt_int),
    ]
    facts = pd.DataFrame(
        [
            {"": name, "train": show(tr) if tr is not None else "–", "test": show(te) if te is not None else "–"}
            for name, tr, te, show in rows
            if tr is not None or te is not None
        ]
    )
    if train.get("is_listened_1") is not None and train.get("is_listened_0") is not None:
        facts.loc[len(facts)] = [
            "class balance (1 / 0)",
            f"{fmt_int(train['is_listened_1'])} / {fmt_int(train['is_listened_0'])}",
            "no labels",
        ]
    facts.loc[len(facts)] = ["demo data", "yes" if demo else "no", ""]
    if summary is None:
        parts.append(not_available("The data summary (data/interim/data_summary.json)", "data"))
        if explore is not None:
            parts.append("<p>The train figures below are computed from data/interim/train.parquet instead.</p>")
    parts.append(table(facts, "datafacts"))

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
                q[c] = [fmt_int(v) if v is not None and not pd.isna(v) else "–" for v in q[c]]
            elif c.endswith("share"):
                q[c] = [pct(v, 3) if isinstance(v, int | float) and not pd.isna(v) else "–" for v in q[c]]
            else:
                q[c] = ["" if v is None or (isinstance(v, float) and pd.isna(v)) else str(v) for v in q[c]]
        q.columns = [c.replace("_", " ") for c in q.columns]
        parts.append("<h3>Quirks found in the data and how they were handled</h3>")
        parts.append(table(q, "quirks"))
        parts.append(
            "<p>None of these quirks is an error: every row is kept, and the features treat the odd values as "
            "missing where they would otherwise mislead (see <i>handling</i>).</p>"
        )
    elif summary is not None:
        parts.append(note("data_summary.json lists no quirks."))

    known = {"train", "test", "quirks", "demo"}
    rest = _flatten({k: v for k, v in s.items() if k not in known})
    if rest:
        parts.append(
            f"<details><summary>Other entries of data_summary.json ({len(rest)})</summary>"
            + kv_table(rest)
            + "</details>"
        )
    return "\n".join(parts)
