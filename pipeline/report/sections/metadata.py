"""Run metadata (ids, versions, parameters, time per stage) and the last runs side by side."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from pipeline.report import plots
from pipeline.report.artifacts import Artifacts, is_demo, run_date
from pipeline.report.html import esc, fmt, fmt_int, kv_table, not_available, note, table

__all__ = ["metadata_section", "runs_section"]


def metadata_section(art: Artifacts) -> str:
    """Run id, fingerprint, seed, versions, parameters and time per stage."""
    p = art.params or {}
    parts: list[str] = []
    if art.params is None:
        parts.append(not_available("runs/<id>/params.json", "train"))
    rows = [
        ("run id", art.run_id),
        ("data fingerprint", p.get("data_fingerprint", "–")),
        ("seed", p.get("seed", "–")),
        ("demo data", "yes" if is_demo(art) else "no"),
        (
            "training examples / validation users",
            f"{fmt_int(art.metrics.get('n_train'))} / {fmt_int(art.metrics.get('n_valid'))}",
        ),
    ]
    versions = p.get("versions") or {}
    rows += [(f"version: {k}", v) for k, v in sorted(versions.items())]
    parts.append(kv_table(rows))
    for key, title in (("feature_params", "Feature parameters"), ("model_params", "Model parameters")):
        if p.get(key):
            parts.append(
                f"<details><summary>{title}</summary><pre class='mono'>"
                f"{esc(json.dumps(p[key], indent=2, sort_keys=True, default=str))}</pre></details>"
            )
    timings = art.timings if isinstance(art.timings, dict) else art.metrics.get("timings")
    if timings:
        t = pd.Series({str(k): float(v) for k, v in timings.items() if isinstance(v, int | float)}).sort_index()
        total = t.get("total", t.sum())
        parts.append(f"<h3>Time per stage (total {total:,.1f} s)</h3>")
        stages = t.drop("total", errors="ignore")
        if len(stages):
            fig, ax = plots.figure(9, 0.35 * len(stages) + 1.2)
            order = stages.sort_values(ascending=False)
            ax.barh(np.arange(len(order)), order.to_numpy(), color="#4a5568")
            ax.set_yticks(np.arange(len(order)), order.index)
            ax.invert_yaxis()
            ax.set_xlabel("seconds")
            for i, v in enumerate(order.to_numpy()):
                ax.text(v, i, f" {v:,.1f}", va="center", fontsize=8)
            ax.set_title("Wall-clock seconds per training stage")
            parts.append(plots.img(fig, "time per stage", "Where this run's time went, from timings.json."))
    else:
        parts.append(not_available("Stage timings (timings.json)", "train"))
    return "\n".join(parts)


def runs_section(art: Artifacts) -> str:
    """The last runs side by side, this report's run in bold."""
    if not art.runs:
        return note("No earlier run found.")
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
                "date": run_date(r["run_id"]),
                "winner": str(m.get("winner", "–")),
                "validation AUC": fmt(m.get("validation_auc")),
                "trials (run / study)": f"{opt.get('n_trials_this_run', '–')} / {opt.get('n_trials_total', '–')}",
                "seconds": fmt(secs, ",.0f") if timings else "–",
                "features": fmt_int((p.get("selection") or {}).get("n_selected")),
                "demo": "yes" if p.get("demo") or m.get("demo") else "no",
                "data fingerprint": str(p.get("data_fingerprint", "–"))[:12],
            }
        )
    df = pd.DataFrame(rows)
    css = pd.DataFrame("", index=df.index, columns=df.columns)
    css.loc[[i for i, r in enumerate(art.runs) if r["run_id"] == art.run_id], :] = "font-weight:700"
    return table(df, "runs", css=css) + (
        "<p>Newest first. Runs on different data fingerprints are not comparable; on the same data, a change in "
        "AUC smaller than the confidence interval is noise.</p>"
    )
