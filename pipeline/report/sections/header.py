"""The page header: title, demo banner, headline cards and how validation works."""

from __future__ import annotations

from pipeline.report.artifacts import Artifacts, is_demo, run_date, winner_row
from pipeline.report.html import esc, fmt, fmt_int, pct

__all__ = ["header_section"]


def header_section(art: Artifacts, generated: str) -> str:
    """Title, demo banner, headline cards (winner, AUC, sizes) and how validation works."""
    m = art.metrics
    win = winner_row(art)
    auc = m.get("validation_auc", win.get("auc"))
    ci = ""
    if win.get("auc_lo") is not None and win.get("auc_hi") is not None:
        ci = f"round 1: {fmt(win.get('auc'))}, 95% CI {fmt(win['auc_lo'])}–{fmt(win['auc_hi'])}"
    folds = m.get("validation_folds") or []
    if len(folds) > 1:
        ci = (
            f"rolling-origin mean over rounds {', '.join(str(f['round']) for f in folds)} "
            f"({fmt_int(sum(f['rows'] for f in folds))} rows: " + ", ".join(fmt(f["auc"]) for f in folds) + "); " + ci
        )
    parts = [
        "<h1>DSG17 cold start: model ranking</h1>",
        f'<p class="sub">Run <code>{esc(art.run_id)}</code> · trained {esc(run_date(art.run_id))} · '
        f"report generated {esc(generated)}</p>",
    ]
    if is_demo(art):
        parts.append(
            '<div class="banner" id="demo-banner">DEMO DATA: these numbers come from the generated demo data set, '
            "not from Deezer's DSG17 files. They show that the pipeline works; they say nothing about real "
            "listening behaviour or the leaderboard.</div>"
        )
    cards = [
        ("winner", esc(m.get("winner", "–")), esc(win.get("note") or "")),
        ("validation ROC AUC", fmt(auc), esc(ci)),
        ("validation users", fmt_int(m.get("n_valid")), f"listen rate {pct(m.get('valid_positive_rate'))}"),
        ("training examples", fmt_int(m.get("n_train")), "rounds 2..K (+ extra rows)"),
    ]
    parts.append(
        '<div class="cards">'
        + "".join(
            f'<div class="card"><div class="k">{k}</div><div class="v">{v}</div><div class="s">{s}</div></div>'
            for k, v, s in cards
        )
        + "</div>"
    )
    covered, everything = m.get("models_covered"), m.get("models_all")
    skipped = m.get("models_skipped") or {}
    if covered and everything and len(covered) + len(skipped) < len(everything):
        parts.append(
            f'<p class="warn" id="models-covered"><b>This run covered {len(covered)} of the {len(everything)} '
            f"models</b> ({esc(', '.join(covered))}; MODELS=...): the winner is chosen among these. Run "
            "<code>make train</code> without MODELS for the whole bake-off.</p>"
        )
    elif covered:
        parts.append(f'<p class="sub" id="models-covered">Models covered: {esc(", ".join(covered))}.</p>')
    for name, why in skipped.items():
        parts.append(
            f'<p class="sub" id="models-skipped-{esc(name)}">Not in this run: <b>{esc(name)}</b> ({esc(why)}).</p>'
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
